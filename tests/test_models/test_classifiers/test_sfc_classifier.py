# Copyright (c) mmsfc contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def make_samples(labels, valid_boxes=None, shape=(64, 64)):
    samples = []
    for i, label in enumerate(labels):
        meta = dict(cls_label=label, img_shape=shape, ori_shape=shape)
        if valid_boxes is not None:
            meta['valid_box'] = valid_boxes[i]
        samples.append(SegDataSample(metainfo=meta))
    return samples


def grads_by_group(model, loss):
    model.zero_grad()
    loss.backward(retain_graph=True)
    groups = {'stem_layer1_layer2': [], 'layer3_layer4': [], 'classifier': [], 'pcm': [],
              'side': []}
    for name, param in model.named_parameters():
        has_grad = param.grad is not None and param.grad.abs().sum().item() > 0
        if name.startswith('backbone.layer3') or name.startswith('backbone.layer4'):
            groups['layer3_layer4'].append(has_grad)
        elif name.startswith('backbone.'):
            groups['stem_layer1_layer2'].append(has_grad)
        elif name.startswith('classifier'):
            groups['classifier'].append(has_grad)
        elif name.startswith('pcm'):
            groups['pcm'].append(has_grad)
        else:
            groups['side'].append(has_grad)
    return {group: any(flags) for group, flags in groups.items()}


def test_gradient_flow_matches_reference_table(tiny_model):
    """Which parameters each loss trains (docs/method_notes.md §5-§6)."""
    tiny_model.train()
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 64, 64)
    samples = make_samples([[1, 0, 1, 0], [0, 1, 0, 0]], [(0, 64, 0, 48), (8, 56, 0, 64)])
    losses = tiny_model.loss(inputs, samples)
    assert set(losses) == {'loss_cls', 'loss_dw_p', 'loss_dw_w'}
    expected = {
        'loss_cls': dict(classifier=True, layer3_layer4=True, pcm=False, side=False),
        'loss_dw_p': dict(classifier=True, layer3_layer4=True, pcm=True, side=True),
        'loss_dw_w': dict(classifier=True, layer3_layer4=True, pcm=True, side=False),
    }
    for name, table in expected.items():
        got = grads_by_group(tiny_model, losses[name])
        assert not got['stem_layer1_layer2'], name
        for group, flows in table.items():
            assert got[group] == flows, (name, group)
    frozen = [p.requires_grad for n, p in tiny_model.named_parameters()
              if n.startswith(('backbone.conv1', 'backbone.bn1', 'backbone.layer1',
                               'backbone.layer2'))]
    assert frozen and not any(frozen)


def test_bn_statistics_stay_frozen_in_training(tiny_model):
    tiny_model.train()
    bn = tiny_model.backbone.layer4[0].bn1
    assert not bn.training
    before = bn.running_mean.clone()
    tiny_model.loss(torch.randn(2, 3, 64, 64) * 5, make_samples([[1, 0, 0, 0]] * 2))
    torch.testing.assert_close(bn.running_mean, before)


def test_losses_finite_with_background_only_and_absent_classes(tiny_model):
    tiny_model.train()
    inputs = torch.randn(3, 3, 64, 64)
    # an image without foreground (an empty IBR slot), one with a tiny valid
    # region, one with every class.
    samples = make_samples([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]],
                           [(0, 64, 0, 64), (0, 16, 0, 16), (0, 64, 0, 64)])
    losses = tiny_model.loss(inputs, samples)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name, param in tiny_model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


def test_all_background_seeds_give_zero_prototype_maps(tiny_model):
    tiny_model.eval()
    with torch.no_grad():
        # label mask keeps only the background: every foreground prototype is empty
        cam_w, cam_p = tiny_model._predict_scale(torch.randn(1, 3, 64, 64),
                                                 torch.tensor([1., 0, 0, 0, 0]).view(1, 5, 1, 1))
    assert torch.isfinite(cam_w).all() and torch.isfinite(cam_p).all()
    assert cam_p[0, 1:].abs().sum() == 0


def test_predict_outputs(tiny_model):
    tiny_model.eval()
    samples = make_samples([[0, 1, 0, 1]], shape=(50, 70))
    with torch.no_grad():
        result = tiny_model.predict(torch.randn(1, 3, 50, 70), samples)[0]
    for field in ('seg_logits', 'cam_w', 'cam_p'):
        data = result.get(field).data
        assert data.shape == (5, 50, 70) and torch.isfinite(data).all()
        # absent classes are zero
        assert data[[1, 3]].abs().sum() == 0
    assert result.cam_w.data.amax() <= 1
    pred = result.pred_sem_seg.data
    assert pred.shape == (1, 50, 70)
    assert set(pred.unique().tolist()) <= {0, 2, 4}
    # tensor mode returns the single-scale maps
    logits, cam_w, cam_p = tiny_model(torch.randn(2, 3, 64, 64), mode='tensor')
    assert logits.shape == (2, 4) and cam_w.shape == cam_p.shape == (2, 5, 4, 4)


def test_predict_scored_by_iou_metric(tiny_model, monkeypatch):
    """A constructed CAM: class 1 on the top 4 of 8 rows, the GT on the top 6."""
    tiny_model.test_cfg.update(scales=(1.0,), inference_map='final', alpha=1.0)

    def constructed_maps(image, label_mask):
        cam_w = torch.zeros(1, 5, 8, 8)
        cam_w[:, 0] = 0.2
        cam_w[:, 1, :4] = 1.0
        return cam_w, torch.zeros(1, 5, 8, 8)

    monkeypatch.setattr(tiny_model, '_predict_scale', constructed_maps)
    sample = make_samples([[1, 0, 0, 0]], shape=(8, 8))[0]
    gt = torch.zeros(1, 8, 8, dtype=torch.long)
    gt[:, :6] = 1
    sample.gt_sem_seg = PixelData(data=gt)
    result = tiny_model.predict(torch.zeros(1, 3, 8, 8), [sample])[0]
    assert (result.pred_sem_seg.data[0, :4] == 1).all()
    assert (result.pred_sem_seg.data[0, 4:] == 0).all()

    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=('background', 'aeroplane', 'bicycle', 'bird', 'boat'))
    metric.process({}, [result.to_dict()])
    scores = metric.compute_metrics(metric.results)
    # foreground IoU 4/6, background IoU 2/4; the absent classes are NaN
    assert scores['mIoU'] == pytest.approx(100 * (4 / 6 + 2 / 4) / 2, abs=0.01)

    # M_P alone predicts background everywhere
    tiny_model.test_cfg.update(inference_map='p')
    result = tiny_model.predict(torch.zeros(1, 3, 8, 8), [sample])[0]
    assert (result.pred_sem_seg.data == 0).all()


def test_bad_labels_and_config_rejected(tiny_model, tiny_model_cfg):
    with pytest.raises(KeyError, match='cls_label'):
        tiny_model.loss(torch.randn(1, 3, 64, 64), [SegDataSample()])
    with pytest.raises(ValueError, match='expected 4'):
        tiny_model.loss(torch.randn(1, 3, 64, 64), make_samples([[1, 0]]))
    tiny_model_cfg['test_cfg'] = dict(inference_map='mean')
    with pytest.raises(ValueError, match='inference_map'):
        MODELS.build(tiny_model_cfg)


def test_pil_rescale_reproduces_the_authors_resize(tiny_model):
    """Test scales: PIL bicubic on uint8, then normalisation (docs/method_notes.md §12)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    normalised = ((torch.from_numpy(rgb).permute(2, 0, 1).float() - mean) / std)[None]
    for scale in (0.5, 1.5, 2.0):
        size = (round(37 * scale), round(53 * scale))
        pil = np.asarray(Image.fromarray(rgb).resize(size[::-1], Image.BICUBIC))
        expected = ((torch.from_numpy(pil).permute(2, 0, 1).float() - mean) / std)[None]
        torch.testing.assert_close(tiny_model._rescale(normalised, size), expected)
    tiny_model.test_cfg['resize'] = 'torch'
    approx = tiny_model._rescale(normalised, (74, 106))
    assert approx.shape == (1, 3, 74, 106) and (approx - expected).abs().mean() < 0.05


def test_batched_prediction_equals_one_by_one(tiny_model):
    tiny_model.eval()
    torch.manual_seed(5)
    images = torch.randn(3, 3, 40, 56)
    labels = [[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 1, 1]]
    with torch.no_grad():
        batched = tiny_model.predict(images, make_samples(labels, shape=(40, 56)))
        for i in range(3):
            single = tiny_model.predict(images[i:i + 1], make_samples([labels[i]],
                                                                      shape=(40, 56)))[0]
            for field in ('cam_w', 'cam_p', 'seg_logits'):
                torch.testing.assert_close(batched[i].get(field).data, single.get(field).data,
                                           atol=1e-5, rtol=1e-4)
            assert torch.equal(batched[i].pred_sem_seg.data, single.pred_sem_seg.data)


def test_multi_scale_maps_are_summed_then_max_normalised_once(tiny_model, monkeypatch):
    """Scale 1 returns a spatial pattern at image size, the other scales constants
    (exact under any resize): the result must be (P + a + b) / (max + 1e-5), masked."""
    height, width = 6, 10
    torch.manual_seed(3)
    pattern_w, pattern_p = torch.rand(1, 5, height, width), torch.rand(1, 5, height, width)
    constants = {(3, 5): (0.5, 0.25), (12, 20): (2.0, 0.75)}  # scale 0.5, scale 2.0
    sizes = []

    def fake_predict_scale(images, label_mask):
        size = tuple(images.shape[2:])
        sizes.append(size)
        if size == (height, width):
            return pattern_w.clone(), pattern_p.clone()
        a_w, a_p = constants[size]
        return torch.full((1, 5, *size), a_w), torch.full((1, 5, *size), a_p)

    monkeypatch.setattr(tiny_model, '_predict_scale', fake_predict_scale)
    tiny_model.test_cfg.update(scales=(1.0, 0.5, 2.0))
    sample = make_samples([[1, 0, 1, 0]], shape=(height, width))[0]
    result = tiny_model.predict(torch.zeros(1, 3, height, width), [sample])[0]
    assert sorted(sizes) == sorted([(6, 10), (3, 5), (12, 20)])
    present = torch.tensor([1., 1., 0., 1., 0.]).view(5, 1, 1)
    for got, pattern, add in ((result.cam_w.data, pattern_w, 0.5 + 2.0),
                              (result.cam_p.data, pattern_p, 0.25 + 0.75)):
        total = pattern[0] + add
        expected = total / (total.amax(dim=(1, 2), keepdim=True) + 1e-5) * present
        torch.testing.assert_close(got, expected)
        # not the mean of per-scale normalised maps
        per_scale = (pattern[0] / pattern[0].amax(dim=(1, 2), keepdim=True) + 2) / 3 * present
        assert not torch.allclose(got, per_scale, atol=1e-3)
