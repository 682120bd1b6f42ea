# Copyright (c) mmsfc contributors. All rights reserved.
import pytest
import torch

from mmsfc.evaluation import SFCCAMMetric

RULE = dict(alpha=1.0, bg_offset=0.4, fg_scale=2.0)


def sample(cam_w, cam_p, gt, cam_rule=RULE):
    return dict(cam_w=dict(data=cam_w), cam_p=dict(data=cam_p), gt_sem_seg=dict(data=gt[None]),
                cam_rule=cam_rule)


def test_maps_and_gt_selected_sweep():
    # 1 x 4 image, class 1 present; GT: [0, 0, 1, 1]
    gt = torch.tensor([[0, 0, 1, 1]])
    cam_w = torch.zeros(3, 1, 4)
    cam_w[0] = 0.5
    cam_w[1] = torch.tensor([0.0, 0.0, 0.3, 1.0])  # M_W: only pixel 3 beats (0.5+0.4)/2
    cam_p = torch.zeros(3, 1, 4)
    cam_p[0] = 0.1
    cam_p[1] = torch.tensor([0.0, 0.9, 1.0, 1.0])  # M_P: pixels 1-3 foreground
    metric = SFCCAMMetric(maps=('final', 'w', 'p'), alpha=1.0, bg_thresholds=(0.1, 0.5))
    metric.dataset_meta = dict(classes=('background', 'a', 'b'))
    metric.process({}, [sample(cam_w, cam_p, gt)])
    scores = metric.compute_metrics(metric.results)
    # w: pred [0,0,0,1] -> bg IoU 2/3, fg 1/2; p: pred [0,1,1,1] -> bg 1/2, fg 2/3
    assert scores['mIoU_w'] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2, abs=0.01)
    assert scores['mIoU_p'] == pytest.approx(100 * (1 / 2 + 2 / 3) / 2, abs=0.01)
    # final: bg 0.9 + 0.5 = 1.4 vs fg 2 (W + P): [0, 1.8, 2.6, 4] -> pred [0, 1, 1, 1]
    assert scores['mIoU_final'] == scores['mIoU'] == scores['mIoU_p']
    # sweep on (W + P) / 2 = [0, .45, .65, 1]: t = 0.5 gives the GT exactly
    assert scores['best_bg_threshold_gt_selected'] == 0.5
    assert scores['mIoU_best_bg_threshold_gt_selected'] == pytest.approx(100)


def test_rejects_unknown_map():
    with pytest.raises(ValueError, match='maps'):
        SFCCAMMetric(maps=('mean', ))


def test_output_dir_writes_palette_pngs(tmp_path):
    metric = SFCCAMMetric(output_dir=str(tmp_path))
    metric.dataset_meta = dict(classes=('background', 'a', 'b'),
                               palette=[(0, 0, 0), (128, 0, 0), (0, 128, 0)])
    pred = torch.tensor([[[0, 2], [1, 1]]])
    data = sample(torch.rand(3, 2, 2), torch.rand(3, 2, 2), torch.zeros(2, 2, dtype=torch.long))
    data.update(img_path='/x/2007_000032.jpg', pred_sem_seg=dict(data=pred))
    metric.process({}, [data])
    from mmsfc.postprocess import load_label_png
    assert load_label_png(str(tmp_path / '2007_000032.png')).tolist() == [[0, 2], [1, 1]]


def predicted_samples(model, inference_map, alpha=1.0):
    """Two random images through the tiny SFC model, as the val loop passes them."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    model.eval()
    model.test_cfg.update(scales=(1.0, ), flip=False, inference_map=inference_map, alpha=alpha)
    torch.manual_seed(1)
    samples = []
    for label in ([1, 0, 1, 0], [0, 1, 0, 0]):
        sample = SegDataSample(metainfo=dict(cls_label=label, img_shape=(32, 32),
                                             ori_shape=(32, 32)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, 32, 32)))
        samples.append(sample)
    with torch.no_grad():
        return [s.to_dict() for s in model.predict(torch.randn(2, 3, 32, 32), samples)]


@pytest.mark.parametrize('inference_map', ['w', 'p', 'final'])
def test_headline_follows_the_models_inference_map(tiny_model, inference_map):
    samples = predicted_samples(tiny_model, inference_map)
    metric = SFCCAMMetric(maps=('final', 'w', 'p'), alpha=1.0)
    metric.dataset_meta = dict(classes=('background', 'a', 'b', 'c', 'd'))
    metric.process({}, samples)
    scores = metric.compute_metrics(metric.results)
    assert scores['mIoU'] == scores[f'mIoU_{inference_map}']
    assert len({scores['mIoU_final'], scores['mIoU_w'], scores['mIoU_p']}) > 1  # distinguishable
    assert scores['mIoU_w_plus_p'] == pytest.approx(scores['mIoU_w'] + scores['mIoU_p'])
    # a headline map outside `maps` is scored as well
    metric = SFCCAMMetric(maps=('final', ), alpha=1.0)
    metric.dataset_meta = dict(classes=('background', 'a', 'b', 'c', 'd'))
    metric.process({}, samples)
    assert metric.compute_metrics(metric.results)['mIoU'] == scores['mIoU']


def test_headline_found_under_the_models_rule_when_the_metric_overrides_it(tiny_model):
    samples = predicted_samples(tiny_model, 'final', alpha=0.5)
    assert all(s['cam_rule']['alpha'] == 0.5 for s in samples)
    metric = SFCCAMMetric(alpha=1.0)  # scores M_final with alpha 1, the model used 0.5
    metric.dataset_meta = dict(classes=('background', 'a', 'b', 'c', 'd'))
    metric.process({}, samples)
    assert {r['headline'] for r in metric.results} == {'final'}
    scores = metric.compute_metrics(metric.results)
    assert scores['mIoU'] == scores['mIoU_final']


def test_seg_logits_matching_no_map_are_an_error(tiny_model):
    samples = predicted_samples(tiny_model, 'final', alpha=0.5)
    for sample in samples:
        del sample['cam_rule']  # not an SFCClassifier prediction: the metric's rule is used
    metric = SFCCAMMetric(alpha=1.0, bg_offset=0.4, fg_scale=2.0)
    metric.dataset_meta = dict(classes=('background', 'a', 'b', 'c', 'd'))
    with pytest.raises(ValueError, match='match none of the maps.*alpha=1.0'):
        metric.process({}, samples)


def test_rule_comes_from_the_model_test_cfg(tiny_model):
    """alpha / bg_offset / fg_scale live in the model's test_cfg: metric and generator follow."""
    from mmseg.structures import SegDataSample

    from mmsfc.engine import PseudoLabelGenerator
    tiny_model.eval()
    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 40) * 255
    gt = torch.randint(0, 3, (40, 40))
    meta = dict(cls_label=[1, 1, 0, 0], img_shape=(40, 40), ori_shape=(40, 40))

    def score(**test_cfg):
        tiny_model.test_cfg.update(test_cfg)
        with torch.no_grad():
            result = tiny_model.predict(image, [SegDataSample(metainfo=meta)])[0].to_dict()
        result['gt_sem_seg'] = dict(data=gt[None])
        metric = SFCCAMMetric(maps=('final', 'w'))
        metric.dataset_meta = dict(classes=('background', 'a', 'b', 'c', 'd'))
        metric.process({}, [result])
        pred = result['pred_sem_seg']['data'][0]
        return metric.compute_metrics(metric.results), pred, result

    default, pred, result = score()
    assert result['cam_rule'] == RULE
    # the metric's M_final argmax is the model's own prediction
    assert default['mIoU_final'] == pytest.approx(
        100 * torch.stack([((pred == c) & (gt == c)).sum() / ((pred == c) | (gt == c)).sum()
                           for c in (0, 1, 2)]).mean().item(), abs=0.01)
    assert (pred > 0).any()
    changed, changed_pred, result = score(bg_offset=5.0)  # every pixel background
    assert result['cam_rule']['bg_offset'] == 5.0
    assert (changed_pred == 0).all() and changed['mIoU_w'] != default['mIoU_w']
    # an explicit metric value overrides the model's
    metric = SFCCAMMetric(maps=('w', ), bg_offset=0.4)
    metric.dataset_meta = dict(classes=('background', 'a', 'b', 'c', 'd'))
    metric.process({}, [result])
    assert metric.compute_metrics(metric.results)['mIoU_w'] == default['mIoU_w']
    # the pseudo-label generator's CRF input rule follows the model too
    generator = PseudoLabelGenerator('unused', dict(dataset=None))
    generator._take_rule_from(tiny_model)
    assert (generator.crf_kwargs['bg_offset'], generator.crf_kwargs['fg_scale']) == (5.0, 2.0)
    assert generator.crf_kwargs['alpha'] == 0.7  # the CRF's own alpha is a separate setting
    generator = PseudoLabelGenerator('unused', dict(dataset=None), bg_offset=0.1)
    generator._take_rule_from(tiny_model)
    assert generator.crf_kwargs['bg_offset'] == 0.1


def test_missing_rule_is_an_error():
    metric = SFCCAMMetric()
    metric.dataset_meta = dict(classes=('background', 'a'))
    data = sample(torch.rand(2, 2, 2), torch.rand(2, 2, 2), torch.zeros(2, 2, dtype=torch.long),
                  cam_rule=None)
    with pytest.raises(ValueError, match='alpha is not set and the prediction'):
        metric.process({}, [data])
