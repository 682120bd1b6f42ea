# Copyright (c) mmsfc contributors. All rights reserved.
"""The benchmark tools run end to end on the toy model (their figures are not asserted)."""
import json

import numpy as np

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
        curves[variant] = result['losses']
    assert len(curves['fast']) == 3 and np.isfinite(curves['fast']).all()
    np.testing.assert_allclose(curves['fast'], curves['plain'], rtol=1e-4)


def test_pseudo_label_benchmark_reports_every_figure(capsys):
    load_tool('benchmark_pseudo_labels').main([TOY_CFG, '--images', '2', '--size', '40', '56',
                                               '--nproc', '1'])
    out = capsys.readouterr().out
    for line in ('CAM inference, fast path:', 'CAM inference, plain path:',
                 'CRF, 1 process:', 'with the CRF overlapped'):
        assert line in out, out
