# Copyright (c) mmsfc contributors. All rights reserved.
import pytest
import torch

from mmsfc.evaluation import SFCClassBalanceMetric

CLASSES = ('background', 'head', 'mid', 'tail')


def sample(gt, winner):
    """A prediction whose every map puts ``winner[y, x]`` first."""
    cam = torch.zeros(len(CLASSES), *gt.shape)
    cam.scatter_(0, winner[None], 1.0)
    cam[0] = 0.2 * (winner == 0)  # background: 0.2 + 0.4 offset < 2 * 1
    return dict(cam_w=dict(data=cam), cam_p=dict(data=cam.clone()),
                gt_sem_seg=dict(data=gt[None]), img_path='x.jpg',
                pred_sem_seg=dict(data=winner[None]),
                cam_rule=dict(alpha=1.0, bg_offset=0.4, fg_scale=2.0))


def test_per_class_iou_and_head_claims_of_tail_pixels():
    metric = SFCClassBalanceMetric(maps=('w', 'p'), head_classes=('head', ),
                                   tail_classes=('tail', ))
    metric.dataset_meta = dict(classes=CLASSES, palette=[[0, 0, 0]] * 4)
    gt = torch.tensor([[0, 1, 1, 3], [0, 3, 3, 3], [2, 2, 0, 0]])
    # tail has 4 pixels: one goes to head, one to mid, two stay tail
    pred = torch.tensor([[0, 1, 1, 1], [0, 2, 3, 3], [2, 2, 0, 0]])
    metric.process({}, [sample(gt, pred)])
    result = metric.compute_metrics(metric.results)
    assert result['head_claim_w'] == pytest.approx(25.0)
    assert result['head_claim_p'] == pytest.approx(25.0)
    # 3 pixels predicted as head, 2 of them are head
    assert result['head_precision_w'] == pytest.approx(66.67, abs=0.01)
    # IoU: head 2 / 3, mid 2 / 3, tail 2 / 4, background 4 / 4
    assert result['IoU_w.head'] == pytest.approx(66.67, abs=0.01)
    assert result['IoU_w.mid'] == pytest.approx(66.67, abs=0.01)
    assert result['IoU_w.tail'] == pytest.approx(50.0)
    assert result['IoU_w.background'] == pytest.approx(100.0)
    assert result['mIoU_w'] == pytest.approx((100 + 66.67 * 2 + 50) / 4, abs=0.01)


def test_unknown_class_names_are_refused():
    metric = SFCClassBalanceMetric(maps=('w', ), head_classes=('nope', ), tail_classes=())
    metric.dataset_meta = dict(classes=CLASSES, palette=[[0, 0, 0]] * 4)
    gt = torch.zeros(2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="'nope'"):
        metric.process({}, [sample(gt, gt)])
