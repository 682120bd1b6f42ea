# Copyright (c) mmsfc contributors. All rights reserved.
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from PIL import Image

from conftest import REPO_ROOT

from ..test_classifiers.test_sfc_train_fast_path import losses_and_grads

TOY_DEEPLAB = osp.join(REPO_ROOT, 'tests/data/configs',
                       'deeplabv2_r18-d8_1xb4-40it_toyvoc-64x64_pseudo.py')


def toy_cfg(root, **model):
    cfg = Config.fromfile(TOY_DEEPLAB)
    for loader in ('train_dataloader', 'val_dataloader'):
        cfg[loader].dataset.data_root = root
    cfg.model.update(model)
    return cfg


def test_training_on_pseudo_masks_reduces_the_loss(toy_voc, tmp_path):
    # "pseudo labels": a copy of the masks with uncertain (255) borders
    cfg = toy_cfg(toy_voc, msc_scales=(1.0, 0.75, 0.5))
    pseudo = tmp_path / 'pseudo'
    pseudo.mkdir()
    for i in range(24):
        name = f'2000_{i:06d}.png'
        mask = np.array(Image.open(osp.join(toy_voc, 'SegmentationClassAug', name)))
        mask[::8] = 255  # uncertain rows, present in every crop
        Image.fromarray(mask).save(pseudo / name)
    cfg.train_dataloader.dataset.data_prefix.seg_map_path = str(pseudo)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = model.data_preprocessor(next(iter(loader)), training=True)
    assert (batch['data_samples'][0].gt_sem_seg.data == 255).any()
    totals = []
    for _ in range(15):
        losses = model.loss(**batch)
        assert {'scale1.loss_ce', 'scale0.75.loss_ce', 'scale0.5.loss_ce',
                'max.loss_ce'} <= set(losses)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optim.update_params(total)
        totals.append(total.item())
    assert totals[-1] < 0.7 * totals[0]
    model.eval()
    with torch.no_grad():
        out = model.test_step(next(iter(Runner.build_dataloader(cfg.val_dataloader))))
    assert out[0].pred_sem_seg.data.shape[1:] == out[0].gt_sem_seg.data.shape[1:]


def test_test_time_crf_changes_predictions_only_near_edges(toy_voc, tmp_path):
    cfg = toy_cfg(toy_voc)
    cfg.model.test_cfg = dict(mode='whole', crf=dict(
        iterations=10, gaussian_sxy=1, gaussian_compat=3, bilateral_sxy=20,
        bilateral_srgb=10, bilateral_compat=6))
    model = MODELS.build(cfg.model)
    # an image with one vertical edge at x = 40
    image = np.zeros((48, 80, 3), np.uint8)
    image[:, 40:] = 220
    path = str(tmp_path / 'edge.png')
    Image.fromarray(image).save(path)
    logits = torch.zeros(1, 5, 48, 80)
    logits[0, 1, :, 34:] = 1.0  # class 1 predicted from x = 34: 6 px off the edge
    logits[0, 0, :, :34] = 1.0
    sample = SegDataSample(metainfo=dict(img_path=path, ori_shape=(48, 80),
                                         img_shape=(48, 80), padding_size=[0, 0, 0, 0]))
    without = logits[0].argmax(0)
    pred = model.postprocess_result(logits.clone(), [sample])[0].pred_sem_seg.data[0]
    changed = (pred != without).any(dim=0).nonzero().flatten()
    assert len(changed) > 0, 'the CRF changed nothing'
    assert changed.min() >= 34 and changed.max() < 40  # only between the CAM and the edge
    assert (pred[:, 40:] == 1).all() and (pred[:, :34] == 0).all()


def random_seg_batch(num_classes, size=64, seed=0):
    from mmengine.structures import PixelData
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(2, 3, size, size, generator=gen)
    samples = []
    for _ in range(2):
        label = torch.randint(0, num_classes, (1, size, size), generator=gen)
        label[:, : size // 4] = 255  # uncertain pixels of pseudo labels
        meta = dict(img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size))
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=label), metainfo=meta))
    return inputs, samples


@pytest.mark.parametrize('msc_scales', [None, (1.0, 0.5)])
def test_channels_last_gives_the_same_losses_grads_and_logits(toy_voc, msc_scales):
    cfg = toy_cfg(toy_voc, msc_scales=msc_scales)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    inputs, samples = random_seg_batch(cfg.model.decode_head.num_classes)
    layouts = []
    model.backbone.conv1.register_forward_pre_hook(lambda mod, args: layouts.append(
        args[0].is_contiguous(memory_format=torch.channels_last)))

    def run(channels_last):
        model.test_cfg.channels_last = channels_last
        model.train()
        losses, grads = losses_and_grads(model, inputs, samples, channels_last=channels_last)
        model.eval()
        with torch.no_grad():
            logits = model.encode_decode(inputs, [s.metainfo for s in samples])
        return losses, grads, logits

    plain = run(False)
    assert not any(layouts)
    layouts.clear()
    fast = run(True)
    assert layouts and all(layouts)
    for name in plain[0]:
        torch.testing.assert_close(fast[0][name], plain[0][name], rtol=1e-5, atol=1e-5)
    assert fast[1].keys() == plain[1].keys() and len(plain[1]) > 10
    for name in plain[1]:
        torch.testing.assert_close(fast[1][name], plain[1][name], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast[2], plain[2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('msc_scales', [None, (1.0, 0.75, 0.5)])
def test_training_step_reads_nothing_back_from_the_device(toy_voc, msc_scales):
    """Forward, losses and backward queue on a GPU without waiting for it."""
    from conftest import DeviceReads
    cfg = toy_cfg(toy_voc, msc_scales=msc_scales)
    model = MODELS.build(cfg.model)
    model.train()
    inputs, samples = random_seg_batch(cfg.model.decode_head.num_classes)
    model.loss(inputs, samples)  # first step: set-up
    with DeviceReads() as record:
        losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        loss.backward()
    assert record.calls == []
    assert any(name.endswith('acc_seg') for name in losses)


def test_inference_runs_a_folded_copy_with_the_same_logits(toy_voc):
    from ..test_classifiers.test_sfc_fast_path import randomize_batch_norms
    cfg = toy_cfg(toy_voc, msc_scales=(1.0, 0.75))
    model = MODELS.build(cfg.model)
    randomize_batch_norms(model, seed=4)
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    inputs, samples = random_seg_batch(cfg.model.decode_head.num_classes, size=48)
    metas = [s.metainfo for s in samples]
    bn_calls = []
    for bn in model.backbone.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.register_forward_hook(lambda *args: bn_calls.append(1))
    with torch.no_grad():
        model.test_cfg.update(model.PLAIN_TEST_CFG)
        plain = model.encode_decode(inputs, metas)
        assert bn_calls  # the model's own backbone ran
        model.test_cfg.update(fuse_bn=True)
        model.encode_decode(inputs, metas)  # builds the folded copy
        bn_calls.clear()
        fast = model.encode_decode(inputs, metas)
    assert not bn_calls  # the copy ran, without BatchNorms
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert '_folded_backbone' in model.__dict__
    model.train()
    model.loss(inputs, samples)
    assert '_folded_backbone' not in model.__dict__  # freed: training changes the weights


def test_fast_path_switches_come_from_the_config(toy_voc):
    """The defaults are the plain computation; config values override them (as
    --cfg-options model.train_cfg.X=... does); the removed training fold is refused."""
    cfg = toy_cfg(toy_voc)
    model = MODELS.build(cfg.model)
    assert model.train_cfg == model.PLAIN_TRAIN_CFG
    assert {k: model.test_cfg[k] for k in model.PLAIN_TEST_CFG} == model.PLAIN_TEST_CFG
    cfg.model.train_cfg = dict(channels_last=True)
    cfg.model.test_cfg = dict(mode='whole', channels_last=True, fuse_bn=True)
    model = MODELS.build(cfg.model)
    assert model.train_cfg == dict(channels_last=True)
    assert model.test_cfg['fuse_bn'] is True and model.test_cfg['channels_last'] is True
    cfg.model.train_cfg = dict(fuse_bn=True)
    with pytest.raises(ValueError, match='train_cfg.fuse_bn'):
        MODELS.build(cfg.model)
