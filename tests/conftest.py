# Copyright (c) mmsfc contributors. All rights reserved.
"""Shared fixtures: mmseg scope, a generated toy VOC and a tiny SFC model."""
import copy
import importlib.util
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope
from torch.utils._python_dispatch import TorchDispatchMode

import mmsfc  # noqa: F401  (registration)
from mmsfc.testing import TOY_CLASSES, generate_toy_voc

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(REPO_ROOT, 'tests/data/configs/sfc_r18_1xb4-20it_toyvoc-64x64.py')


def load_tool(name):
    """The module of ``tools/<name>.py`` (the tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f'mmsfc_tool_{name.replace("/", "_")}',
                                                  osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

class DeviceReads(TorchDispatchMode):
    """Records the dispatched ops that read a value back from the device.

    ``.item()`` / ``float()`` / ``bool()`` (``_local_scalar_dense``,
    ``is_nonzero``, ``equal``) and data-dependent shapes (``nonzero``,
    ``unique``, ``masked_select``, indexing with a boolean mask): on a GPU
    each waits for the queued work.
    ``calls`` lists their names in order.
    """

    OPS = ('_local_scalar_dense', 'nonzero', 'unique', 'masked_select', 'is_nonzero', 'equal')
    #: ops whose boolean-mask indices are turned into positions (``nonzero``)
    #: inside their kernel, below this mode: ``x[mask]``, ``x[mask] = v``
    INDEX_OPS = ('index', 'index_put', 'index_put_', '_index_put_impl_')

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if any(name.startswith(op) or op in name for op in self.OPS):
            self.calls.append(name)
        elif name in self.INDEX_OPS and len(args) > 1 and any(
                isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8)
                for index in args[1]):
            self.calls.append(f'{name}[mask]')
        return func(*args, **(kwargs or {}))


#: A ResNet-18 SFC network for 64x64 inputs (5 classes with background).
TINY_MODEL = dict(
    type='SFCClassifier',
    in_channels=512,
    num_classes=len(TOY_CLASSES),
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size=(64, 64)),
    backbone=dict(
        type='ResNet', depth=18, out_indices=(0, 1, 2, 3), strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 1), norm_eval=True, frozen_stages=2,
        contract_dilation=False),
    pcm=dict(type='SFCPCM', in_channels=3 + 512, channels=512),
    prototype_head=dict(type='SFCPrototypeHead', in_channels=(64, 128, 256, 512),
                        channels=(16, 16, 32, 32)),
    loss_msdw=dict(type='MSDWLoss', class_counts=[10, 6, 3, 1], n_ibr=4, n_iter=660),
    test_cfg=dict(scales=(1.0, 0.5)))


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture
def tiny_model_cfg():
    return copy.deepcopy(TINY_MODEL)


@pytest.fixture
def tiny_model(tiny_model_cfg):
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(tiny_model_cfg)


@pytest.fixture(scope='session')
def toy_voc(tmp_path_factory):
    """Root of a toy dataset in the VOC layout (24 train_aug, 8 train, 8 val)."""
    root = str(tmp_path_factory.mktemp('toy_voc'))
    generate_toy_voc(root, seed=0)
    return root
