# Copyright (c) mmsfc contributors. All rights reserved.
"""The demo's report: numbers over seeds, the tables, the figure."""
import numpy as np
import pytest
from PIL import Image

from mmsfc.evaluation.demo_report import (
    VARIANT_NAMES,
    expectation_checks,
    format_report,
    head_tail_classes,
    mean_std,
    plot_class_iou,
    summarize_runs,
)

META = dict(classes=['background', 'car', 'boat', 'bus', 'bicycle'],
            target_frequencies=[0.6, 0.35, 0.1, 0.02], frequencies=[0.62, 0.33, 0.12, 0.03])


def _scores(map_name, offset):
    """SFCClassBalanceMetric-like results, every number shifted by ``offset``."""
    scores = dict(mIoU=10 + offset, mIoU_w=11 + offset, mIoU_p=12 + offset,
                  mIoU_final=13 + offset)
    scores[f'head_claim_{map_name}'] = 5 + offset
    scores[f'head_precision_{map_name}'] = 50 + offset
    for k, cls in enumerate(META['classes']):
        scores[f'IoU_{map_name}.{cls}'] = 20 + k + offset
    return scores


def _run(variant, seed, offset):
    map_name = 'w' if variant == 'base' else 'final'
    return dict(seed=seed, untrained=dict(mIoU=5.0), trained=_scores(map_name, offset),
                train_time=1.0, bg_offset=0.4 + offset / 10)


def test_head_tail_classes():
    assert head_tail_classes(META) == (['car', 'boat'], ['bicycle'])


def test_mean_std():
    assert mean_std([2.0]) == '2.0'
    assert mean_std([1.0, 3.0]) == '2.0 ± 1.4'


def test_summary_tables_and_figure(tmp_path):
    runs = dict(sfc=[_run('sfc', 0, 0.0), _run('sfc', 1, 2.0)],
                base=[_run('base', 0, 1.0), _run('base', 1, 3.0)])
    summary = summarize_runs(runs, dict(pseudo_label=[30.0, 34.0]), META)
    assert summary['sfc']['map'] == 'final' and summary['base']['map'] == 'w'
    assert summary['sfc']['seeds'] == [0, 1]
    assert summary['sfc']['values']['mIoU'] == [10.0, 12.0]
    assert summary['base']['mean']['mIoU'] == pytest.approx(12.0)
    assert summary['base']['std']['head_precision_w'] == pytest.approx(np.sqrt(2))
    # tail: bicycle (IoU 24 + offset); head: car and boat (21, 22); the variant's own map
    assert summary['sfc']['values']['tail_IoU'] == [24.0, 26.0]
    assert summary['base']['values']['head_IoU'] == [22.5, 24.5]
    assert summary['pipeline']['pseudo_label']['mean'] == pytest.approx(32.0)

    summary['names'] = dict(VARIANT_NAMES)
    table = format_report(summary, META, 'a backbone')
    assert table.startswith('SFC demo, backbone a backbone')
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith('| stage'))
    assert header.index('Base') < header.index('SFC')  # table order, not dict order
    crf = next(line for line in lines if 'pseudo labels, CRF' in line)
    cells = [c.strip() for c in crf.strip('|').split('|')]
    assert cells[2:] == ['', '32.0 ± 2.8']  # in SFC's column only
    bicycle = next(line for line in lines if line.startswith('| bicycle'))
    assert [c.strip() for c in bicycle.strip('|').split('|')] == [
        'bicycle', '3.0', '26.0 ± 1.4', '25.0 ± 1.4']  # share of images, Base, SFC

    path = tmp_path / 'class_iou.png'
    plot_class_iou(summary, META, str(path), 'a backbone')
    with Image.open(path) as image:
        assert min(image.size) > 100


def test_expectation_checks_per_seed():
    runs = dict(sfc=[_run('sfc', 0, 0.0), _run('sfc', 1, 2.0)],
                base=[_run('base', 0, 1.0), _run('base', 1, 1.0)])
    # seed 0: SFC 1 point below Base everywhere; seed 1: 1 point above
    runs['sfc'][1]['trained']['head_claim_final'] = 5.0  # claims: 5 vs Base 6 -> holds
    pipeline = dict(pseudo_label=[30.0, 30.0], mask=[29.0, 30.0],
                    segmentation_crf=[20.0, 20.0], segmentation_mask=[25.0, 19.0])
    summary = summarize_runs(runs, pipeline, META)
    checks = dict(expectation_checks(summary))
    assert checks == {
        'CAM mIoU above Base': [False, True],
        'tail-class IoU above Base': [False, True],
        'head-class precision not below Base': [False, True],
        'tail pixels claimed by head classes not above Base': [True, True],
        'IRN masks not below the CRF labels': [False, True],
        'DeepLabV2 on the masks not below on the CRF labels': [True, False]}
    summary['names'] = dict(VARIANT_NAMES)
    table = format_report(summary, META, 'a backbone')
    row = next(line for line in table.splitlines() if 'CAM mIoU above Base' in line)
    assert [c.strip() for c in row.strip('|').split('|')][1:] == ['no', 'yes', '1 of 2']

    del pipeline['mask']  # stages that did not run are not checked
    checks = dict(expectation_checks(summarize_runs(runs, pipeline, META)))
    assert 'IRN masks not below the CRF labels' not in checks
    runs['base'] = runs['base'][:1]
    with pytest.raises(ValueError, match='seeds'):
        expectation_checks(summarize_runs(runs, pipeline, META))
