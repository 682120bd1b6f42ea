# Copyright (c) mmsfc contributors. All rights reserved.
from types import SimpleNamespace
from unittest.mock import MagicMock

import numpy as np
import pytest
import torch
from mmengine.dataset import RepeatDataset

from mmsfc.datasets import SFCVOCDataset
from mmsfc.engine.hooks import DistributionCoefficientHook
from mmsfc.models.losses import distribution_coefficients
from mmsfc.testing import TOY_CLASSES


def test_hook_sets_dc_from_wrapped_training_set(toy_voc, tiny_model_cfg):
    from mmseg.registry import MODELS
    tiny_model_cfg['loss_msdw'] = dict(type='MSDWLoss')
    model = MODELS.build(tiny_model_cfg)
    assert torch.isnan(model.loss_msdw.dc).all()
    dataset = SFCVOCDataset(
        data_root=toy_voc, ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'), metainfo=dict(classes=TOY_CLASSES),
        cls_label_file='cls_labels.npy')
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=RepeatDataset(dataset, times=2)),
        model=model, logger=MagicMock())
    DistributionCoefficientHook().before_train(runner)
    expected = distribution_coefficients(dataset.get_class_image_counts().tolist())
    torch.testing.assert_close(model.loss_msdw.dc, expected.float())
    assert 'aeroplane=' in runner.logger.info.call_args[0][0] % runner.logger.info.call_args[0][1:]


def test_hook_rejects_dataset_without_counts(tiny_model):
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=[1, 2]),
                             model=tiny_model, logger=MagicMock())
    with pytest.raises(TypeError, match='get_class_image_counts'):
        DistributionCoefficientHook().before_train(runner)
    counts = SimpleNamespace(get_class_image_counts=lambda: np.ones(4), metainfo={})
    runner.train_dataloader.dataset = counts
    runner.model = torch.nn.Linear(1, 1)
    with pytest.raises(RuntimeError, match='no MSDWLoss'):
        DistributionCoefficientHook().before_train(runner)
