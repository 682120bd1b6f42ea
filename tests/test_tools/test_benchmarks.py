# Copyright (c) mmsfc contributors. All rights reserved.
"""The benchmark tools run end to end on the toy model (their figures are not asserted)."""
import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import REPO_ROOT, load_tool
from conftest import TOY_CONFIG as TOY_CFG

TOY_IRN_CFG = f'{REPO_ROOT}/tests/data/configs/irn_r18_1xb4-3ep_toyvoc-64x64.py'


def test_training_benchmark_variants_follow_the_same_loss_curve(capsys):
    """One process per variant in the tool; here in-process: fast and plain paths
    see the same batches and give the same losses step after step."""
    benchmark = load_tool('benchmark')
    results = {}
    for variant in ('fast', 'plain', 'amp'):
        benchmark.main([TOY_CFG, '--run-variant', variant, '--batch-size', '2', '--crop', '64',
                        '--iters', '2', '--warmup', '1'])
        result = results[variant] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert len(result['times']) == 2 and result['peak_gib'] > 0 and result['conv_tflops'] > 0
    assert len(results['fast']['losses']) == 3 and np.isfinite(results['fast']['losses']).all()
    np.testing.assert_allclose(results['fast']['losses'], results['plain']['losses'], rtol=1e-4)
    # each variant's own arithmetic: the fast path skips most of the side projection,
    # and autocast changes the precision, not the work
    assert results['fast']['flop'] < results['plain']['flop']
    assert results['amp']['flop'] == results['fast']['flop']
    assert [results[v]['dtype'] for v in ('fast', 'plain', 'amp')] == [
        'float32', 'float32', 'bfloat16']


def test_training_benchmark_runs_a_segmentor_on_random_label_maps(capsys):
    """Stage 4's DeepLabV2: channels_last changes the layout, not the losses or the work."""
    config = f'{REPO_ROOT}/tests/data/configs/deeplabv2_r18-d8_1xb4-40it_toyvoc-64x64_pseudo.py'
    benchmark = load_tool('benchmark')
    results = {}
    for variant in ('fast', 'plain', 'amp'):
        benchmark.main([config, '--run-variant', variant, '--batch-size', '2', '--crop', '48',
                        '--iters', '2', '--warmup', '1', '--channels-last'])
        results[variant] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fast, plain, amp = results['fast'], results['plain'], results['amp']
    assert len(fast['losses']) == 3 and np.isfinite(fast['losses']).all()
    np.testing.assert_allclose(fast['losses'], plain['losses'], rtol=1e-5)
    np.testing.assert_allclose(amp['losses'], fast['losses'], rtol=2e-2)
    assert fast['flop'] == plain['flop'] == amp['flop'] > 0
    assert amp['dtype'] == 'bfloat16'


def test_training_benchmark_runs_irn_on_stride4_label_maps(capsys):
    """Stage 3's IRN: its frozen backbone's folded copy (``--fast-cfg fuse_bn=True``)
    keeps the losses to float rounding and the count."""
    benchmark = load_tool('benchmark')
    results = {}
    for variant in ('fast', 'plain'):
        benchmark.main(['step', TOY_IRN_CFG, '--run-variant', variant, '--batch-size', '2',
                        '--crop', '64', '--iters', '2', '--warmup', '1',
                        '--fast-cfg', 'fuse_bn=True'])
        results[variant] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fast, plain = results['fast'], results['plain']
    assert len(fast['losses']) == 3 and np.isfinite(fast['losses']).all()
    np.testing.assert_allclose(fast['losses'], plain['losses'], rtol=1e-5)
    assert fast['flop'] == plain['flop'] > 0
    # IRN has no channels_last switch: the flag is refused, not silently ignored
    with pytest.raises(SystemExit, match='SFCIRN .* no channels_last switch'):
        benchmark.main([TOY_IRN_CFG, '--run-variant', 'fast', '--channels-last'])


@pytest.mark.slow
def test_a_failing_variant_ends_the_benchmark_with_its_own_error(capfd):
    """The variant's process prints why it failed; the tool names the variant, no traceback."""
    with pytest.raises(SystemExit, match='the fast variant failed'):
        load_tool('benchmark').main([TOY_IRN_CFG, '--variants', 'fast', 'plain',
                                     '--channels-last', '--batch-size', '2', '--crop', '64',
                                     '--iters', '1'])
    err = capfd.readouterr().err
    assert 'no channels_last switch' in err and 'CalledProcessError' not in err


@pytest.mark.slow
def test_pseudo_label_benchmark_reports_every_figure(capsys):
    load_tool('benchmark').main(['pseudo-labels', TOY_CFG, '--images', '2', '--size', '40',
                                 '56', '--crf', '--nproc', '2'])
    out = capsys.readouterr().out
    for line in ('CAM inference, fast path:', 'CAM inference, plain path:',
                 'peak memory of the inference:', 'CRF, 1 process:', 'CRF, 2 processes:',
                 'x 1 process)', 'whole stage (2 processes for the CRF)',
                 'with the CRF overlapped'):
        assert line in out, out


def test_pseudo_label_benchmark_runs_one_variant_with_extra_switches(capsys):
    load_tool('benchmark').main(['pseudo-labels', TOY_CFG, '--images', '1', '--size', '40',
                                 '48', '--variants', 'fast', '--fast-cfg', 'fuse_bn=True',
                                 'pcm_symmetric_blocks=2'])
    out = capsys.readouterr().out
    assert 'CAM inference, fast path:' in out and 'plain path' not in out
    with pytest.raises(SystemExit):
        load_tool('benchmark').main(['pseudo-labels', TOY_CFG, '--fast-cfg', 'fuse_bn'])


def test_loader_benchmark_reports_images_per_second(capsys):
    load_tool('benchmark').main(['loader', TOY_CFG, '--images', '8', '--size', '40', '56',
                                 '--batches', '2', '--warmup', '1', '--num-workers', '0'])
    assert 'images/s' in capsys.readouterr().out


def _samples(labels):
    from mmseg.structures import SegDataSample
    return [SegDataSample(metainfo=dict(cls_label=label)) for label in labels]


def test_step_flops_counts_what_the_step_runs_and_leaves_the_model_as_it_was(tiny_model):
    """The count is the step's, grows with the batch, and changes no state of the model."""
    benchmark = load_tool('benchmark')
    model = tiny_model.train()
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 64, 64)
    labels = np.eye(len(model.loss_msdw.dc), dtype=np.float32)[:2]
    fast_cfg = dict(model.train_cfg, **model.FAST_TRAIN_CFG)
    model.train_cfg.update(fast_cfg)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    head = model.classifier.weight
    head.grad = accumulated = torch.ones_like(head)  # e.g. gradient accumulation

    flop = benchmark.step_flops(model, inputs, _samples(labels))
    assert model.train_cfg == fast_cfg
    assert head.grad is accumulated and float(accumulated.sum()) == head.numel()
    head.grad = None
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    # the same step counted directly
    with FlopCounterMode(display=False) as counter:
        sum(model.loss(inputs, _samples(labels)).values()).backward()
    assert flop == counter.get_total_flops()
    # per image: the step's arithmetic is linear in the batch, also under autocast
    half = benchmark.step_flops(model, inputs[:1], _samples(labels[:1]), torch.bfloat16)
    assert flop == 2 * half


def test_hardware_line_reports_the_floor_fraction():
    """4 TFLOP a step in 40 ms against a 400 TFLOP/s peak: a 10 ms floor, 25 % of it."""
    benchmark = load_tool('benchmark')
    runs = [dict(flop=4e12, conv_tflops=200.0, dtype='bfloat16'),
            dict(flop=4e12, conv_tflops=300.0, dtype='bfloat16')]
    line = benchmark.hardware_line(runs, 0.040, peak_tflops=400)
    assert line.startswith('4000.0 GFLOP a step: 100.000 TFLOP/s, 40% of a lone 3x3 '
                           'convolution here (250.000 TFLOP/s, bfloat16)'), line
    assert line.endswith('floor at the 400 TFLOP/s peak given for bfloat16 10.0 ms, 25.0% of '
                         'it reached'), line
    assert 'floor' not in benchmark.hardware_line(runs, 0.040)


def test_peak_tflops_are_per_precision():
    benchmark = load_tool('benchmark')
    args = benchmark.parse_args([TOY_CFG, '--peak-tflops', 'bfloat16=989', 'float32=67.5'])
    assert args.peak_tflops == dict(bfloat16=989.0, float32=67.5)
    for bad in ('989', 'bf16=989', 'bfloat16=fast', 'float32=0'):
        with pytest.raises(SystemExit):
            benchmark.parse_args([TOY_CFG, '--peak-tflops', bad])


def test_batch_pool_holds_one_batch_a_step_until_its_size_cap():
    """Within the cap, the batches a run would draw one per step; beyond it, the
    first ones that fit (at least one), for the steps to cycle through."""
    benchmark = load_tool('benchmark')
    batch_gib = 2 * 3 * 32 * 32 * 4 / 2**30  # 2 x 32^2 in float32

    def pool(steps, max_gib, **kwargs):
        return benchmark.batch_pool(5, 2, 32, steps, max_gib, np.random.default_rng(3),
                                    **kwargs)

    rng = np.random.default_rng(3)
    drawn = [benchmark.random_batch(5, 2, 32, rng) for _ in range(4)]
    for max_gib, count in ((1.0, 4), (2.5 * batch_gib, 2), (0.5 * batch_gib, 1)):
        held = pool(4, max_gib)
        assert len(held) == count
        for (inputs, samples), (ref_inputs, ref_samples) in zip(held, drawn):
            torch.testing.assert_close(inputs, ref_inputs, rtol=0, atol=0)
            assert [s.cls_label.tolist() for s in samples] == [
                s.cls_label.tolist() for s in ref_samples]
    assert 'gt_sem_seg' in pool(2, 1.0, label_maps=True)[1][1][0]


def test_training_benchmark_cycles_a_capped_pool(capsys, monkeypatch):
    """A pool of one batch: every step trains on it (the first step as in an uncapped
    run, the next ones not), and the variants' losses still agree. cuDNN's autotuning
    follows the config's env_cfg, as under the Runner."""
    benchmark = load_tool('benchmark')
    monkeypatch.setattr(torch.backends.cudnn, 'benchmark', False)  # restored after the test
    losses = {}
    for name, variant, cap in (('fast', 'fast', '1e-6'), ('plain', 'plain', '1e-6'),
                               ('uncapped', 'fast', '1')):
        benchmark.main([TOY_CFG, '--run-variant', variant, '--batch-size', '2', '--crop', '64',
                        '--iters', '2', '--warmup', '1', '--pool-gib', cap])
        losses[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])['losses']
    assert len(losses['fast']) == 3
    np.testing.assert_allclose(losses['fast'], losses['plain'], rtol=1e-4)
    assert losses['fast'][0] == pytest.approx(losses['uncapped'][0], rel=1e-6)
    assert losses['fast'][1] != pytest.approx(losses['uncapped'][1], rel=1e-3)
    assert torch.backends.cudnn.benchmark  # the toy config's env_cfg.cudnn_benchmark
    with pytest.raises(SystemExit):
        benchmark.parse_args([TOY_CFG, '--pool-gib', '0'])
    assert '--pool-gib takes a size in GiB > 0, got 0.0' in capsys.readouterr().err


def test_pseudo_label_benchmark_refuses_a_process_count_below_one(capsys):
    with pytest.raises(SystemExit):
        load_tool('benchmark').main(['pseudo-labels', TOY_CFG, '--nproc', '2', '0'])
    assert "--nproc takes counts of 1 or more, got [2, 0]" in capsys.readouterr().err


def test_crf_process_counts_default_to_two_and_all_cores_within_the_images():
    counts = load_tool('benchmark').crf_process_counts
    assert counts(None, images=8, cores=64) == [1, 2, 8]
    assert counts(None, images=100, cores=16) == [1, 2, 16]
    assert counts(None, images=8, cores=1) == [1]
    assert counts([4, 16], images=8, cores=2) == [1, 4, 16]  # asked for: timed as asked
