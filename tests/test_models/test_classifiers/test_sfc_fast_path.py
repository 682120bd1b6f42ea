# Copyright (c) mmsfc contributors. All rights reserved.
"""The inference switches (folded BatchNorms, channels_last, CPU grouping, symmetric PCM,
sparse side features) against the plain path, on the tiny model."""
import copy
import pickle

import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch.overrides import TorchFunctionMode


def randomize_batch_norms(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, nn.modules.batchnorm._BatchNorm):
                n = bn.num_features
                bn.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
                bn.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.2)
                bn.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                bn.bias.copy_(torch.randn(n, generator=gen) * 0.2)


def samples(labels, shape):
    return [SegDataSample(metainfo=dict(cls_label=label, img_shape=shape, ori_shape=shape))
            for label in labels]


def predict(model, images, labels, **test_cfg):
    model.test_cfg.update(test_cfg)
    with torch.no_grad():
        results = model.predict(images, samples(labels, images.shape[2:]))
    return [{key: r.get(key).data for key in ('cam_w', 'cam_p', 'seg_logits', 'pred_sem_seg')}
            for r in results]


@pytest.mark.parametrize('channels_last', [False, True])
def test_fast_path_equals_plain_path(tiny_model, channels_last):
    randomize_batch_norms(tiny_model)
    tiny_model.eval()
    tiny_model.test_cfg.update(scales=(1.0, 0.5, 1.5))
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    torch.manual_seed(0)
    images = torch.randn(2, 3, 44, 60)
    labels = [[1, 0, 0, 1], [0, 1, 1, 1]]
    plain = predict(tiny_model, images, labels, **tiny_model.PLAIN_TEST_CFG)
    side_inputs = []
    handle = tiny_model.prototype_head.side_convs[0].register_forward_pre_hook(
        lambda module, args: side_inputs.append(args[0].shape))
    try:
        fast = predict(tiny_model, images, labels, fuse_bn=True, channels_last=channels_last,
                       cpu_backbone_pixels=1, pcm_symmetric_blocks=3,
                       sparse_side_features=True)
    finally:
        handle.remove()
    # the other fast paths ran: the backbone one image at a time, the stride-4
    # side projection on the pixels its resize reads (fewer than half)
    assert {shape[0] for shape in side_inputs} == {1}
    assert side_inputs[0][2] * side_inputs[0][3] < 11 * 15 / 2
    # the fold ran: a copy without BatchNorms exists, no forward patched on any module
    folded = tiny_model._folded_backbone._module
    assert folded is not None and folded is not tiny_model.backbone
    assert not any('forward' in m.__dict__ for m in (*folded.modules(), *tiny_model.modules()))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    for one_plain, one_fast in zip(plain, fast):
        for key in ('cam_w', 'cam_p', 'seg_logits'):
            torch.testing.assert_close(one_fast[key], one_plain[key], atol=1e-5, rtol=0)
        assert one_plain['cam_w'].amax() > 0.5 and one_plain['cam_p'].amax() > 0.5
    # weights, statistics and checkpoints untouched
    assert tiny_model.state_dict().keys() == state.keys()
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for m in tiny_model.backbone.modules())
    # the cached copy is transient: the model still deep-copies and pickles
    assert copy.deepcopy(tiny_model)._folded_backbone._module is None
    assert pickle.loads(pickle.dumps(tiny_model))._folded_backbone._module is None
    # a training step frees the inference copy (stale after the update)
    tiny_model.train()
    tiny_model.loss(images[:1, :, :32, :32], [SegDataSample(metainfo=dict(cls_label=[1, 0, 0, 1]))])
    assert '_folded_backbone' not in tiny_model.__dict__


def test_cpu_backbone_pixels_groups_images_within_the_budget(tiny_model):
    """As few backbone calls as the pixel budget allows, balanced; same maps."""
    randomize_batch_norms(tiny_model)
    tiny_model.eval()
    tiny_model.test_cfg.update(scales=(1.0, 0.5))
    torch.manual_seed(2)
    images = torch.randn(3, 3, 40, 40)  # 6 backbone inputs a scale with the flips
    labels = [[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1]]
    plain = predict(tiny_model, images, labels, **tiny_model.PLAIN_TEST_CFG)
    batch_sizes = []
    handle = tiny_model.prototype_head.side_convs[0].register_forward_pre_hook(
        lambda module, args: batch_sizes.append(args[0].shape[0]))
    try:
        # 1600 pixels an input at scale 1 (4000 a call: ceil(9600 / 4000) = 3
        # calls of 2), 400 at scale 0.5 (all 6 in one call)
        fast = predict(tiny_model, images, labels, fuse_bn=False, cpu_backbone_pixels=4000)
        assert batch_sizes == [2, 2, 2, 6]
        batch_sizes.clear()
        predict(tiny_model, images, labels, fuse_bn=False, cpu_backbone_pixels=5000)
        assert batch_sizes == [3, 3, 6]  # 2 calls, balanced (not 3 + 3 of a 5-image cap)
        batch_sizes.clear()
        predict(tiny_model, images, labels, fuse_bn=False, cpu_backbone_pixels=None)
        assert batch_sizes == [6, 6]
    finally:
        handle.remove()
    for one_plain, one_fast in zip(plain, fast):
        for key in ('cam_w', 'cam_p', 'seg_logits'):
            torch.testing.assert_close(one_fast[key], one_plain[key], atol=1e-5, rtol=0)


def test_bad_cpu_backbone_pixels_and_the_old_chunk_are_refused(tiny_model_cfg):
    tiny_model_cfg['test_cfg'] = dict(cpu_backbone_chunk=1)
    with pytest.raises(ValueError, match='cpu_backbone_pixels'):
        MODELS.build(tiny_model_cfg)
    for bad in (0, -5, float('nan'), float('inf'), True, '400000'):
        tiny_model_cfg['test_cfg'] = dict(cpu_backbone_pixels=bad)
        with pytest.raises(ValueError, match=f'got {bad!r}'):
            MODELS.build(tiny_model_cfg)


def test_fast_path_follows_new_weights_and_skips_training_bn(tiny_model):
    tiny_model.eval()
    images = torch.randn(1, 3, 40, 40)
    labels = [[1, 1, 0, 0]]
    predict(tiny_model, images, labels, fuse_bn=True)  # builds the folded copy
    with torch.no_grad():
        assert tiny_model._inference_backbone(images) is tiny_model._folded_backbone._module
    assert tiny_model._inference_backbone(images) is tiny_model.backbone  # with gradients
    randomize_batch_norms(tiny_model, seed=3)  # e.g. load_state_dict of new weights
    fast = predict(tiny_model, images, labels, fuse_bn=True)
    plain = predict(tiny_model, images, labels, fuse_bn=False)
    torch.testing.assert_close(fast[0]['cam_w'], plain[0]['cam_w'], atol=1e-5, rtol=0)
    torch.testing.assert_close(fast[0]['cam_p'], plain[0]['cam_p'], atol=1e-5, rtol=0)

    # BatchNorms normalising with batch statistics: folding would be wrong,
    # the backbone itself runs
    for bn in tiny_model.backbone.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            bn.train()
    tiny_model.test_cfg['fuse_bn'] = True
    with torch.no_grad():
        assert tiny_model._inference_backbone(images) is tiny_model.backbone


def test_backbone_autocast_option(tiny_model):
    """bfloat16 backbone (a GPU option): close to float32, heads in float32."""
    tiny_model.eval()
    torch.manual_seed(1)
    images = torch.randn(1, 3, 48, 48)
    labels = [[1, 1, 1, 1]]
    full = predict(tiny_model, images, labels, backbone_autocast=None)
    dtypes = []
    handle = tiny_model.backbone.layer4.register_forward_hook(
        lambda module, args, output: dtypes.append(output.dtype))
    try:
        half = predict(tiny_model, images, labels, backbone_autocast='bfloat16', fuse_bn=False)
    finally:
        handle.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}
    for key in ('cam_w', 'cam_p'):
        assert half[0][key].dtype == torch.float32
        assert (half[0][key] - full[0][key]).abs().max() < 0.1


def test_backbone_without_batch_norms_runs_as_it_is():
    """A ViT (no BatchNorm): nothing is folded, the maps are the plain ones."""
    import mmpretrain.models  # noqa: F401  (registration)
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='SFCClassifier', in_channels=32, num_classes=5,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='mmpretrain.VisionTransformer', img_size=32, patch_size=8,
                      arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                feedforward_channels=64),
                      out_indices=(0, 1), out_type='featmap'),
        pcm=dict(type='SFCPCM', in_channels=3 + 32, channels=32),
        prototype_head=dict(type='SFCPrototypeHead', in_channels=(32, 32), channels=(8, 8)),
        loss_msdw=dict(type='MSDWLoss', class_counts=[10, 6, 3, 1], n_ibr=4, n_iter=660)))
    model.eval()
    images = torch.randn(2, 3, 40, 48)
    labels = [[1, 0, 0, 1], [0, 1, 1, 1]]
    plain = predict(model, images, labels, fuse_bn=False, scales=(1.0, 0.5, 1.5))
    fast = predict(model, images, labels, fuse_bn=True)
    assert model._folded_backbone._module is None
    for one_plain, one_fast in zip(plain, fast):
        for key in ('cam_w', 'cam_p', 'seg_logits', 'pred_sem_seg'):
            assert torch.equal(one_fast[key], one_plain[key]), key


@pytest.mark.parametrize('cfg, match', [
    (dict(train_cfg=dict(fuse_bn=True)), 'train_cfg.fuse_bn .* is removed'),
    (dict(train_cfg=dict(freeze_frozen_stages=True)), 'freeze_frozen_stages'),
    (dict(test_cfg=dict(freeze_backbone=True)), 'freeze_backbone'),
    (dict(train_cfg=dict(sparse_side_feature=True)), "no key 'sparse_side_feature'"),
    (dict(test_cfg=dict(scale=(1.0, ))), "test_cfg has no key 'scale'"),
])
def test_removed_and_unknown_switches_are_refused(tiny_model_cfg, cfg, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(tiny_model_cfg, **cfg))


class HostCopies(TorchFunctionMode):
    """Appends 'cpu' to ``events`` at each ``Tensor.cpu()`` (on a GPU, a copy
    that waits for the work queued there)."""

    def __init__(self, events):
        super().__init__()
        self.events = events

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.cpu:
            self.events.append('cpu')
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('resize, copies', [('pil', ['cpu']), ('torch', [])])
def test_inference_waits_for_the_device_at_most_once_before_the_scales(
        tiny_model, resize, copies):
    """No device read; with PIL resizes, one copy of the pixels to the host,
    made before any scale runs, so a GPU never waits for them between scales."""
    from conftest import DeviceReads
    tiny_model.eval()
    tiny_model.test_cfg.update(scales=(1.0, 0.5, 1.5), resize=resize)
    images = torch.randn(2, 3, 44, 60)
    batch = samples([[1, 0, 0, 1], [0, 1, 1, 0]], images.shape[2:])
    with torch.no_grad():
        expected = tiny_model.predict(images, copy.deepcopy(batch))  # builds the folded copy
    events = []
    tiny_model.classifier.register_forward_pre_hook(lambda *args: events.append('scale'))
    with torch.no_grad(), DeviceReads() as reads, HostCopies(events):
        results = tiny_model.predict(images, batch)
    assert reads.calls == []
    # the first scale (1.0) runs before any resize: the copy comes first all the same
    assert events[:len(copies)] == copies and events.count('scale') >= 3
    assert set(events[len(copies):]) == {'scale'}
    for result, reference in zip(results, expected):
        torch.testing.assert_close(result.seg_logits.data, reference.seg_logits.data)
