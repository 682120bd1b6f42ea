# Copyright (c) mmsfc contributors. All rights reserved.
"""The benchmark tools run end to end on the toy model (their figures are not asserted)."""
import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import TOY_CONFIG as TOY_CFG
from conftest import load_tool


def test_training_benchmark_variants_follow_the_same_loss_curve(capsys):
    """One process per variant in the tool; here in-process: fast and plain paths
    see the same batches and give the same losses step after step."""
    benchmark = load_tool('benchmark')
    curves = {}
    for variant in ('fast', 'plain'):
        benchmark.main([TOY_CFG, '--run-variant', variant, '--batch-size', '2', '--crop', '64',
                        '--iters', '2', '--warmup', '1'])
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert len(result['times']) == 2 and result['peak_gib'] > 0
        assert result['flop'] > 0 and result['conv_tflops'] > 0
        curves[variant] = result['losses']
    assert len(curves['fast']) == 3 and np.isfinite(curves['fast']).all()
    np.testing.assert_allclose(curves['fast'], curves['plain'], rtol=1e-4)


def test_pseudo_label_benchmark_reports_every_figure(capsys):
    load_tool('benchmark_pseudo_labels').main([TOY_CFG, '--images', '2', '--size', '40', '56',
                                               '--nproc', '2'])
    out = capsys.readouterr().out
    for line in ('CAM inference, fast path:', 'CAM inference, plain path:',
                 'CRF, 1 process:', 'CRF, 2 processes:', 'x 1 process)',
                 'whole stage (2 processes for the CRF)', 'with the CRF overlapped'):
        assert line in out, out


def _samples(labels):
    from mmseg.structures import SegDataSample
    return [SegDataSample(metainfo=dict(cls_label=label)) for label in labels]


def test_step_flops_counts_the_plain_arithmetic_of_a_fast_model(tiny_model):
    """The count sees the frozen stages that the fast path runs as TorchScript
    copies, grows with the batch, and leaves the model as it found it."""
    from mmengine.optim import build_optim_wrapper
    benchmark = load_tool('benchmark')
    model = tiny_model.train()
    optim_wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.1)))
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 64, 64)
    labels = np.eye(len(model.loss_msdw.dc), dtype=np.float32)[:2]
    fast_cfg = dict(model.train_cfg)
    assert fast_cfg['fuse_bn'] and fast_cfg['freeze_frozen_stages']
    model.loss(inputs, _samples(labels))  # the fast path's TorchScript copies exist now

    flop = benchmark.step_flops(model, optim_wrapper, inputs, _samples(labels))
    assert model.train_cfg == fast_cfg
    assert all(p.grad is None for p in model.parameters())
    # the same step counted on a model whose fast paths are off from the start
    model.train_cfg.update(model.PLAIN_TRAIN_CFG)
    with FlopCounterMode(display=False) as counter:
        sum(model.loss(inputs, _samples(labels)).values()).backward()
    assert flop == counter.get_total_flops()
    # counted on the fast path instead, the frozen stages' convolutions go unseen
    model.train_cfg.update(fast_cfg)
    model.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as counter:
        sum(model.loss(inputs, _samples(labels)).values()).backward()
    assert counter.get_total_flops() < flop
    # per image: the step's arithmetic is linear in the batch
    half = benchmark.step_flops(model, optim_wrapper, inputs[:1], _samples(labels[:1]))
    assert flop == 2 * half


def test_arithmetic_line_reports_the_floor_fraction():
    """4 TFLOP a step in 40 ms against a 400 TFLOP/s peak: a 10 ms floor, 25 % of it."""
    benchmark = load_tool('benchmark')
    runs = [dict(flop=4e12, conv_tflops=200.0), dict(flop=4e12, conv_tflops=300.0)]
    line = benchmark.arithmetic(runs, 0.040, peak_tflops=400)
    assert line.startswith('4000.0 GFLOP a step: 100.000 TFLOP/s, 40% of a lone 3x3 '
                           'convolution here (250.000 TFLOP/s)'), line
    assert line.endswith('floor at 400 TFLOP/s 10.0 ms, 25.0% of it reached'), line
    assert 'floor' not in benchmark.arithmetic(runs, 0.040)



def test_pseudo_label_benchmark_refuses_a_process_count_below_one(capsys):
    with pytest.raises(SystemExit):
        load_tool('benchmark_pseudo_labels').main([TOY_CFG, '--nproc', '2', '0'])
    assert "--nproc takes counts of 1 or more, got [2, 0]" in capsys.readouterr().err
