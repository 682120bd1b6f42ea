# Copyright (c) mmsfc contributors. All rights reserved.
from types import SimpleNamespace
from unittest.mock import MagicMock, patch

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler, RepeatDataset
from torch.utils.data import BatchSampler

from mmsfc.datasets import IBRBatchSampler, SFCVOCDataset
from mmsfc.engine.hooks import DistributionCoefficientHook
from mmsfc.models.losses import distribution_coefficients
from mmsfc.testing import TOY_CLASSES


def toy_runner(toy_voc, model, batch_size=4, num_resampled=2):
    """A runner stand-in whose train loader is built as mmengine builds it."""
    from torch.utils.data import DataLoader

    from mmsfc.datasets.samplers import IBRBatchSampler
    dataset = SFCVOCDataset(
        data_root=toy_voc, ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'), metainfo=dict(classes=TOY_CLASSES),
        cls_label_file='cls_labels.npy')
    wrapped = RepeatDataset(dataset, times=2)
    batch_sampler = None
    if num_resampled is not None:
        # the loader holds the wrapper; the hook must count the images of the inner dataset
        batch_sampler = IBRBatchSampler(DefaultSampler(dataset, shuffle=False), batch_size,
                                        num_resampled=num_resampled, seed=0)
        loader = DataLoader(wrapped, batch_sampler=batch_sampler)
    else:
        loader = DataLoader(wrapped, batch_size=batch_size)
    return SimpleNamespace(train_dataloader=loader, model=model, logger=MagicMock()), dataset


def logged(runner):
    return runner.logger.info.call_args[0][0] % runner.logger.info.call_args[0][1:]


def test_hook_sets_dc_from_wrapped_training_set(toy_voc, tiny_model_cfg):
    from mmseg.registry import MODELS
    tiny_model_cfg['loss_msdw'] = dict(type='MSDWLoss')
    model = MODELS.build(tiny_model_cfg)
    assert torch.isnan(model.loss_msdw.dc).all()
    runner, dataset = toy_runner(toy_voc, model)
    DistributionCoefficientHook().before_train(runner)
    # N_IBR from the sampler (not the authors' 4), N_iter = 24 training images // 4 per
    # step (not the 48 of the RepeatDataset wrapper)
    assert (model.loss_msdw.n_ibr, model.loss_msdw.n_iter) == (2, 6)
    counts = dataset.get_class_image_counts().tolist()
    expected = distribution_coefficients(counts, n_ibr=2, n_iter=6)
    torch.testing.assert_close(model.loss_msdw.dc, expected.float())
    assert 'aeroplane=' in logged(runner) and 'N_IBR=2' in logged(runner)
    assert not torch.allclose(expected, distribution_coefficients(counts, n_ibr=4, n_iter=6))


def test_without_ibr_n_ibr_is_zero_unless_the_hook_overrides_it(toy_voc, tiny_model_cfg):
    from mmseg.registry import MODELS
    tiny_model_cfg['loss_msdw'] = dict(type='MSDWLoss')
    model = MODELS.build(tiny_model_cfg)
    runner, _ = toy_runner(toy_voc, model, num_resampled=0)
    DistributionCoefficientHook().before_train(runner)
    assert (model.loss_msdw.n_ibr, model.loss_msdw.n_iter) == (0, 6)
    model = runner.model = MODELS.build(tiny_model_cfg)
    DistributionCoefficientHook(n_ibr=4).before_train(runner)
    assert (model.loss_msdw.n_ibr, model.loss_msdw.n_iter) == (4, 6)
    # a plain batch sampler on one process: nothing re-sampled either
    model = runner.model = MODELS.build(tiny_model_cfg)
    runner.train_dataloader = SimpleNamespace(
        dataset=runner.train_dataloader.dataset,
        batch_sampler=BatchSampler(range(24), 3, drop_last=True))
    DistributionCoefficientHook().before_train(runner)
    assert (model.loss_msdw.n_ibr, model.loss_msdw.n_iter) == (0, 8)


@pytest.mark.parametrize('batch_size, num_resampled', [(3, 5), (8, 1)])
def test_run_settings_follow_the_single_loader_values(toy_voc, tiny_model_cfg, batch_size,
                                                      num_resampled):
    from mmseg.registry import MODELS
    tiny_model_cfg['loss_msdw'] = dict(type='MSDWLoss')
    model = MODELS.build(tiny_model_cfg)
    runner, dataset = toy_runner(toy_voc, model, batch_size, num_resampled)
    DistributionCoefficientHook().before_train(runner)
    assert (model.loss_msdw.n_ibr, model.loss_msdw.n_iter) == (num_resampled, 24 // batch_size)
    expected = distribution_coefficients(dataset.get_class_image_counts().tolist(),
                                         n_ibr=num_resampled, n_iter=24 // batch_size)
    torch.testing.assert_close(model.loss_msdw.dc, expected.float())


def test_run_settings_are_totals_over_processes(toy_voc, tiny_model_cfg):
    """On 2 processes the batch 4 + 2 is the step's total: N_IBR = 2, N_iter = 24 // 4."""
    from mmseg.registry import MODELS
    tiny_model_cfg['loss_msdw'] = dict(type='MSDWLoss')
    model = MODELS.build(tiny_model_cfg)
    runner, dataset = toy_runner(toy_voc, model)
    with patch('mmsfc.datasets.samplers.ibr_batch_sampler.get_dist_info',
               return_value=(1, 2)):
        sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), 4, num_resampled=2, seed=0)
    assert (sampler.batch_size, sampler.num_resampled) == (2, 1)  # this process's share
    runner.train_dataloader = SimpleNamespace(dataset=runner.train_dataloader.dataset,
                                              batch_sampler=sampler)
    with patch('mmsfc.engine.hooks.distribution_coefficient_hook.get_world_size',
               return_value=2):
        DistributionCoefficientHook().before_train(runner)
    assert (model.loss_msdw.n_ibr, model.loss_msdw.n_iter) == (2, 6)


def test_hook_refuses_a_per_process_batch_with_several_processes(tiny_model):
    counts = SimpleNamespace(get_class_image_counts=lambda: np.ones(4), metainfo={})
    runner = SimpleNamespace(
        train_dataloader=SimpleNamespace(
            dataset=counts, batch_sampler=BatchSampler(range(4), 2, drop_last=True)),
        model=tiny_model, logger=MagicMock())
    with patch('mmsfc.engine.hooks.distribution_coefficient_hook.get_world_size',
               return_value=2), pytest.raises(ValueError, match='2 processes.*IBRBatchSampler'):
        DistributionCoefficientHook().before_train(runner)


def test_explicit_loss_values(toy_voc, tiny_model_cfg):
    from mmseg.registry import MODELS
    tiny_model_cfg['loss_msdw'] = dict(type='MSDWLoss', n_iter=660)
    model = MODELS.build(tiny_model_cfg)
    runner, _ = toy_runner(toy_voc, model)
    DistributionCoefficientHook().before_train(runner)
    assert (model.loss_msdw.n_ibr, model.loss_msdw.n_iter) == (2, 660)  # explicit n_iter wins
    tiny_model_cfg['loss_msdw'] = dict(type='MSDWLoss', n_ibr=4)
    runner.model = MODELS.build(tiny_model_cfg)
    with pytest.raises(ValueError, match='n_ibr=4 contradicts the 2 images re-sampled'):
        DistributionCoefficientHook().before_train(runner)
    runner, _ = toy_runner(toy_voc, MODELS.build(tiny_model_cfg), num_resampled=None)
    with pytest.raises(ValueError, match='n_ibr=4 contradicts the 0 images re-sampled'):
        DistributionCoefficientHook().before_train(runner)
    DistributionCoefficientHook(n_ibr=4).before_train(runner)  # the deliberate override
    assert (runner.model.loss_msdw.n_ibr, runner.model.loss_msdw.n_iter) == (4, 6)


def test_class_without_images_is_named(tiny_model_cfg):
    from mmseg.registry import MODELS
    tiny_model_cfg['loss_msdw'] = dict(type='MSDWLoss', n_iter=10)
    class Counts:
        metainfo = dict(classes=TOY_CLASSES)

        def get_class_image_counts(self):
            return np.array([3, 0, 2, 1])

        def __len__(self):
            return 4

    counts = Counts()
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=counts),
                             model=MODELS.build(tiny_model_cfg), logger=MagicMock())
    with pytest.warns(UserWarning, match="'bicycle': no training image"):
        DistributionCoefficientHook(n_ibr=4).before_train(runner)


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
