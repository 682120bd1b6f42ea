# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Optional

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from mmsfc.datasets import IBRBatchSampler
from mmsfc.models.losses import MSDWLoss


def _find_counting_dataset(dataset):
    """Unwrap dataset wrappers down to one with ``get_class_image_counts``."""
    while not hasattr(dataset, 'get_class_image_counts'):
        if not hasattr(dataset, 'dataset'):
            raise TypeError(f'{type(dataset).__name__} has no get_class_image_counts() '
                            'and wraps no dataset that has it')
        dataset = dataset.dataset
    return dataset


def resampled_per_step(dataloader) -> int:
    """Re-sampled (IBR) images per optimisation step over all processes.

    Raises:
        ValueError: With several processes and a batch sampler other than
            :class:`IBRBatchSampler`, whose ``batch_size`` would silently be
            per process.
    """
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if isinstance(batch_sampler, IBRBatchSampler):
        return batch_sampler.total_resampled
    world_size = get_world_size()
    if world_size > 1:
        raise ValueError(
            f'SFC training with {world_size} processes needs '
            "train_dataloader.batch_sampler=dict(type='IBRBatchSampler') (num_resampled=0 "
            'without IBR), whose batch_size is the total over processes; '
            f'{type(batch_sampler).__name__} would give {world_size} x batch_size images '
            'per step')
    return 0


@HOOKS.register_module()
class DistributionCoefficientHook(Hook):
    """Give every :class:`MSDWLoss` of the model the training set's class counts.

    Before training, reads ``n_c`` (images per foreground class) from the
    training dataset (through any wrapper), sets each loss's ``N_IBR`` to the
    images the training batch sampler really re-samples per step over all
    processes (:attr:`IBRBatchSampler.total_resampled`; 0 without IBR),
    computes the distribution coefficients (paper Eq. 6) and logs them. Only
    labels are read, never images. With several processes the batch sampler
    must be an :class:`IBRBatchSampler` (see :func:`resampled_per_step`).

    Args:
        n_ibr (int, optional): ``N_IBR`` for DC instead of the sampler's, e.g.
            ``custom_hooks.0.n_ibr=4`` to keep the default ``N`` without IBR.
            Defaults to None (the sampler's).
    """

    priority = 'NORMAL'

    def __init__(self, n_ibr: Optional[int] = None) -> None:
        self.n_ibr = n_ibr

    def before_train(self, runner) -> None:
        dataset = _find_counting_dataset(runner.train_dataloader.dataset)
        counts = dataset.get_class_image_counts()
        real = resampled_per_step(runner.train_dataloader)
        n_ibr = real if self.n_ibr is None else self.n_ibr
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        losses = [m for m in model.modules() if isinstance(m, MSDWLoss)]
        if not losses:
            raise RuntimeError('DistributionCoefficientHook found no MSDWLoss in the model')
        for loss in losses:
            loss.n_ibr = n_ibr
            loss.set_class_counts(counts.tolist())
        runner.logger.info(
            'distribution coefficients from %d training images, N_IBR = %d (%d re-sampled '
            'images per step): %s', len(dataset), n_ibr, real,
            ', '.join(f'{name}={dc:.4f}' for name, dc in
                      zip(dataset.metainfo['classes'][1:], losses[0].dc.tolist())))
