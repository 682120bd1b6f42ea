# Copyright (c) mmsfc contributors. All rights reserved.
"""The mmpretrain backbone configs (configs/sfc/sfc_{mmpretrain-r50,convnext-t,deit-s}_voc.py)
build offline, train and predict on CPU, and freeze what they say they freeze."""
import copy
import glob
import os.path as osp

import mmpretrain
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.utils import import_modules_from_strings
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT

NUM_FG = 20


def load_config(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/sfc', name))
    import_modules_from_strings(**cfg.custom_imports)
    return cfg


def build_offline(cfg, seed=0):
    """The config's model without its pretrained weights (no download)."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.loss_msdw.dc = torch.linspace(0.5, 1.5, NUM_FG)  # normally the DC hook's job
    return model


def samples(labels, size=64):
    metas = [dict(cls_label=[int(c in label) for c in range(NUM_FG)],
                  img_shape=(size, size), ori_shape=(size, size)) for label in labels]
    metas[0]['valid_box'] = (0, size, 8, size - 4)
    return [SegDataSample(metainfo=meta) for meta in metas]


def metafile_weights():
    """Every checkpoint URL named in the installed mmpretrain's model index."""
    root = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs')
    urls = set()
    for path in glob.glob(osp.join(root, '*', 'metafile.yml')):
        with open(path) as f:
            urls.update(line.split('Weights:', 1)[1].strip() for line in f
                        if line.strip().startswith('Weights:'))
    return urls


# config, backbone class, parameter prefixes frozen by the config, trainable
# parameters that only feed the detached side features (hence no gradient)
CASES = [
    ('sfc_mmpretrain-r50_1xb16-3966it_voc12aug-512x512.py', 'ResNet',
     ('backbone.conv1.', 'backbone.bn1.', 'backbone.layer1.', 'backbone.layer2.'), ()),
    ('sfc_convnext-t_1xb16-3966it_voc12aug-512x512.py', 'ConvNeXt',
     ('backbone.downsample_layers.0.', 'backbone.downsample_layers.1.', 'backbone.stages.0.',
      'backbone.stages.1.'),
     ('backbone.norm0.', 'backbone.norm1.')),
    ('sfc_deit-s_1xb16-3966it_voc12aug-512x512.py', 'VisionTransformer', (), ()),
]


@pytest.mark.parametrize('name,backbone_type,frozen,side_only', CASES)
def test_config_trains_and_predicts_offline(name, backbone_type, frozen, side_only):
    cfg = load_config(name)
    assert cfg.model.backbone.type == f'mmpretrain.{backbone_type}'
    model = build_offline(cfg)
    assert type(model.backbone).__module__.startswith('mmpretrain.models')
    assert type(model.backbone).__name__ == backbone_type

    model.train()
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 64, 64)
    losses = model.loss(inputs, samples([(2, 7), (14,)]))
    assert set(losses) == {'loss_cls', 'loss_dw_p', 'loss_dw_w'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for param_name, param in model.named_parameters():
        if param_name.startswith(frozen):
            assert not param.requires_grad and param.grad is None, param_name
        elif param_name.startswith(side_only):
            assert param.requires_grad and param.grad is None, param_name
        else:
            assert param.requires_grad, param_name
            assert param.grad is not None and param.grad.abs().sum() > 0, param_name
    assert any(n.startswith(frozen) for n, _ in model.named_parameters()) == bool(frozen)
    # the prototype branch's inputs are detached from the backbone
    model.zero_grad()
    feats = model.extract_feat(inputs)
    model.prototype_head.side_features(feats, feats[-1].shape[2:]).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())

    model.eval()
    with torch.no_grad():
        logits, cam_w, cam_p = model(inputs, mode='tensor')
        assert logits.shape == (2, NUM_FG)
        assert cam_w.shape == cam_p.shape == (2, NUM_FG + 1, 4, 4)  # CAM stride 16
        model.test_cfg['scales'] = (1.0, 0.5)
        result = model.predict(inputs[:1], samples([(2, 7)]))[0]
    assert result.seg_logits.data.shape == (NUM_FG + 1, 64, 64)
    assert torch.isfinite(result.seg_logits.data).all()
    assert set(result.pred_sem_seg.data.unique().tolist()) <= {0, 3, 8}


@pytest.mark.parametrize('name', ['sfc_convnext-t_1xb16-3966it_voc12aug-512x512.py',
                                  'sfc_deit-s_1xb16-3966it_voc12aug-512x512.py'])
def test_configs_name_mmpretrain_weights_and_their_optimiser(name):
    cfg = load_config(name)
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.prefix == 'backbone.'
    assert init_cfg.checkpoint in metafile_weights()
    model = build_offline(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(optim_wrapper.optimizer).__name__ == 'AdamW'
    base_lr = cfg.optim_wrapper.optimizer.lr
    lr_decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            lr_decay[names[id(param)]] = (group['lr'], group['weight_decay'])
    decay = cfg.optim_wrapper.optimizer.weight_decay
    assert lr_decay['classifier.weight'] == (10 * base_lr, decay)
    assert lr_decay['pcm.proj.weight'] == (10 * base_lr, decay)
    assert lr_decay['prototype_head.side_convs.0.weight'] == (10 * base_lr, decay)
    norm = 'backbone.norm2.weight' if 'convnext' in name else 'backbone.ln1.weight'
    assert lr_decay[norm] == (base_lr, 0.0)
    if 'deit' in name:
        assert lr_decay['backbone.pos_embed'] == (base_lr, 0.0)
        assert lr_decay['backbone.layers.5.attn.qkv.weight'] == (base_lr, decay)


def test_mmpretrain_resnet50_equals_mmseg_resnet50():
    """Same weights (strict state-dict load): equal losses, gradients and CAMs."""
    ours = build_offline(load_config('sfc_r50_1xb16-3966it_voc12aug-512x512.py'))
    swapped = build_offline(load_config('sfc_mmpretrain-r50_1xb16-3966it_voc12aug-512x512.py'),
                            seed=1)
    assert type(ours.backbone).__module__.startswith('mmseg.')
    swapped.load_state_dict(ours.state_dict(), strict=True)
    assert ([n for n, p in ours.named_parameters() if not p.requires_grad] ==
            [n for n, p in swapped.named_parameters() if not p.requires_grad])

    torch.manual_seed(2)
    inputs = torch.randn(2, 3, 64, 64)
    grads = []
    for model in (ours, swapped):
        model.train()
        assert not any(m.training for m in model.backbone.modules()
                       if isinstance(m, torch.nn.BatchNorm2d))
        losses = model.loss(inputs, samples([(2, 7), (14,)]))
        sum(losses.values()).backward()
        grads.append((losses, {n: p.grad for n, p in model.named_parameters()
                               if p.grad is not None}))
    (losses_a, grads_a), (losses_b, grads_b) = grads
    for key in losses_a:
        assert torch.equal(losses_a[key], losses_b[key]), key
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    for key in grads_a:
        assert torch.equal(grads_a[key], grads_b[key]), key

    results = []
    for model in (ours, swapped):
        model.eval()
        model.test_cfg['scales'] = (1.0, 0.5)
        with torch.no_grad():
            results.append(model.predict(inputs[:1], samples([(2, 7)]))[0])
    for field in ('cam_w', 'cam_p', 'seg_logits'):
        assert torch.equal(results[0].get(field).data, results[1].get(field).data), field


@pytest.mark.parametrize('name,arch', [
    ('sfc_convnext-t_1xb16-3966it_voc12aug-512x512.py', dict(arch='tiny')),
    ('sfc_deit-s_1xb16-3966it_voc12aug-512x512.py', dict(img_size=224))])
def test_init_cfg_loads_an_mmpretrain_classifier_checkpoint(tmp_path, name, arch):
    """A checkpoint laid out as the named one (an ImageNet classifier's state dict,
    ``backbone.`` prefix, the ImageNet arch) loads into the config's backbone:
    ConvNeXt-T's first three stages, DeiT-S with its position embedding resized."""
    cfg = load_config(name)
    imagenet_cfg = dict(cfg.model.backbone, init_cfg=None, **arch)
    if 'convnext' in name:
        imagenet_cfg.update(out_indices=(3,), gap_before_final_norm=True)
    torch.manual_seed(3)
    imagenet = MODELS.build(imagenet_cfg)
    state = {f'backbone.{k}': v.half() for k, v in imagenet.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(1000, 8).half()
    torch.save(dict(state_dict=state, meta=dict()), tmp_path / 'ckpt.pth')

    backbone_cfg = dict(cfg.model.backbone)
    backbone_cfg['init_cfg'] = dict(cfg.model.backbone.init_cfg,
                                    checkpoint=str(tmp_path / 'ckpt.pth'))
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    loaded = backbone.state_dict()
    source = imagenet.state_dict()
    shared = [k for k in loaded if k in source and loaded[k].shape == source[k].shape]
    assert len(shared) > 100
    for key in shared:
        torch.testing.assert_close(loaded[key], source[key].half().float(), msg=key)
    if 'convnext' in name:
        assert not any(k.startswith(('stages.3', 'downsample_layers.3')) for k in loaded)
        assert set(loaded) - set(shared) == {f'norm{i}.{p}' for i in range(3)
                                            for p in ('weight', 'bias')}
    else:
        assert set(loaded) - set(shared) == {'pos_embed'}
        assert loaded['pos_embed'].shape == (1, 1 + 32 * 32, 384)
        torch.testing.assert_close(loaded['pos_embed'][:, 0],
                                   source['pos_embed'][:, 0].half().float())
