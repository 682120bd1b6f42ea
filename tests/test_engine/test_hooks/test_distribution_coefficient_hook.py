# Copyright (c) mmsfc contributors. All rights reserved.
from types import SimpleNamespace
from unittest.mock import MagicMock, patch

import numpy as np
import pytest
import torch
from mmengine.dataset import InfiniteSampler, RepeatDataset
from torch.utils.data import BatchSampler

from mmsfc.datasets import IBRBatchSampler, SFCVOCDataset
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
    wrapped = RepeatDataset(dataset, times=2)
    batch_sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=4,
                                    num_resampled=2, seed=0)
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(dataset=wrapped, batch_sampler=batch_sampler),
        model=model, logger=MagicMock())
    DistributionCoefficientHook().before_train(runner)
    counts = dataset.get_class_image_counts().tolist()
    # N_IBR is what the sampler re-samples per step, not the loss's default 4
    assert model.loss_msdw.n_ibr == 2
    expected = distribution_coefficients(counts, n_ibr=2)
    torch.testing.assert_close(model.loss_msdw.dc, expected.float())
    message = runner.logger.info.call_args[0][0] % runner.logger.info.call_args[0][1:]
    assert 'aeroplane=' in message and 'N_IBR = 2' in message
    assert not torch.allclose(expected, distribution_coefficients(counts, n_ibr=4))
    # without IBR N_IBR is 0, unless the hook is told otherwise
    runner.train_dataloader.batch_sampler = BatchSampler(range(4), 2, drop_last=True)
    DistributionCoefficientHook().before_train(runner)
    assert model.loss_msdw.n_ibr == 0
    DistributionCoefficientHook(n_ibr=4).before_train(runner)
    assert model.loss_msdw.n_ibr == 4


def test_hook_refuses_a_per_process_batch_with_several_processes(tiny_model):
    counts = SimpleNamespace(get_class_image_counts=lambda: np.ones(4), metainfo={})
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(
            dataset=counts, batch_sampler=BatchSampler(range(4), 2, drop_last=True)),
        model=tiny_model, logger=MagicMock())
    with patch('mmsfc.engine.hooks.distribution_coefficient_hook.get_world_size',
               return_value=2), pytest.raises(ValueError, match='2 processes.*IBRBatchSampler'):
        DistributionCoefficientHook().before_train(runner)


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
