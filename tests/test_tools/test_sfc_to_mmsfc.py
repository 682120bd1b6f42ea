# Copyright (c) mmsfc contributors. All rights reserved.
"""tools/model_converters/sfc_to_mmsfc.py on a checkpoint shaped like the authors'.

The source checkpoint comes from a restatement of the authors' module tree
(network/resnet50_SFC.py ``Net`` around network/resnet50.py ``ResNet``),
so its keys are the ones ``Net().state_dict()`` produces, aliases included:
``resnet50.*``, ``stage0..4.*``, ``side1..4``, ``classifier``, ``f9``,
``backbone.*`` and ``newly_added.*``. It is saved as their training script
saves it: ``{'net': model.module.state_dict()}``. The converted weights must
then make mmsfc's backbone compute what the authors' trunk computes.
"""
import importlib.util
import os.path as osp

import torch
import torchvision
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from torch import nn

from conftest import REPO_ROOT

R50_CONFIG = osp.join(REPO_ROOT, 'configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py')


def load_converter():
    path = osp.join(REPO_ROOT, 'tools/model_converters/sfc_to_mmsfc.py')
    spec = importlib.util.spec_from_file_location('sfc_to_mmsfc', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AuthorsNet(nn.Module):
    """The authors' ``Net`` module tree (attribute names and order), no forward.

    Their ``ResNet`` has torchvision's layout without ``fc``/``avgpool`` and
    strides (2, 2, 2, 1): layer4 keeps stride 1.
    """

    def __init__(self, num_cls: int = 21) -> None:
        super().__init__()
        resnet = torchvision.models.resnet50(weights=None)
        del resnet.fc, resnet.avgpool
        resnet.layer4[0].conv2.stride = (1, 1)
        resnet.layer4[0].downsample[0].stride = (1, 1)
        self.resnet50 = resnet
        self.stage0 = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.stage1 = nn.Sequential(resnet.layer1)
        self.stage2 = nn.Sequential(resnet.layer2)
        self.stage3 = nn.Sequential(resnet.layer3)
        self.stage4 = nn.Sequential(resnet.layer4)
        self.side1 = nn.Conv2d(256, 128, 1, bias=False)
        self.side2 = nn.Conv2d(512, 128, 1, bias=False)
        self.side3 = nn.Conv2d(1024, 256, 1, bias=False)
        self.side4 = nn.Conv2d(2048, 256, 1, bias=False)
        self.classifier = nn.Conv2d(2048, num_cls - 1, 1, bias=False)
        self.f9 = nn.Conv2d(3 + 2048, 2048, 1, bias=False)
        self.backbone = nn.ModuleList([self.stage0, self.stage1, self.stage2, self.stage3,
                                       self.stage4])
        self.newly_added = nn.ModuleList([self.classifier, self.f9, self.side1, self.side2,
                                          self.side3, self.side4])

    def trunk(self, x):
        feats = [self.stage0(x)]
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4):
            feats.append(stage(feats[-1]))
        return feats[1:]


def authors_net():
    torch.manual_seed(0)
    net = AuthorsNet()
    for module in net.modules():  # non-trivial BN statistics, so swaps show
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


def build_mmsfc_r50():
    cfg = Config.fromfile(R50_CONFIG)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def test_authors_checkpoint_converts_and_computes_the_same(tmp_path):
    net = authors_net()
    state = net.state_dict()
    # the aliases are really in the authors' state dict
    assert 'stage0.0.weight' in state and 'backbone.4.0.2.conv3.weight' in state
    assert 'newly_added.1.weight' in state and 'resnet50.layer3.5.bn2.running_var' in state
    src, dst = tmp_path / 'final.pth', tmp_path / 'converted.pth'
    torch.save({'net': state}, src)
    assert load_converter().main([str(src), str(dst), '--config', R50_CONFIG]) == 0

    model = build_mmsfc_r50()
    load_checkpoint(model, str(dst), strict=True)
    model.eval()
    torch.testing.assert_close(model.classifier.weight, net.classifier.weight)
    torch.testing.assert_close(model.pcm.proj.weight, net.f9.weight)
    for i, side in enumerate((net.side1, net.side2, net.side3, net.side4)):
        torch.testing.assert_close(model.prototype_head.side_convs[i].weight, side.weight)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model.backbone(x), net.trunk(x)
    assert [tuple(f.shape) for f in ours] == [(1, 256, 16, 16), (1, 512, 8, 8),
                                             (1, 1024, 4, 4), (1, 2048, 4, 4)]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_dataparallel_prefix_and_state_dict_wrapper(tmp_path):
    state = {'module.' + k: v for k, v in authors_net().state_dict().items()}
    src, dst = tmp_path / 'dp.pth', tmp_path / 'out.pth'
    torch.save({'state_dict': state}, src)
    assert load_converter().main([str(src), str(dst), '--config', R50_CONFIG]) == 0
    assert dst.exists()


def test_unknown_and_missing_keys_are_named(tmp_path, capsys):
    state = authors_net().state_dict()
    state['extra_head.weight'] = torch.zeros(1)
    del state['side3.weight']
    src, dst = tmp_path / 'bad.pth', tmp_path / 'out.pth'
    torch.save({'net': state}, src)
    assert load_converter().main([str(src), str(dst), '--config', R50_CONFIG]) == 1
    err = capsys.readouterr().err
    assert 'extra_head.weight' in err and 'prototype_head.side_convs.2.weight' in err
    assert not dst.exists()
