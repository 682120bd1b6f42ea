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


# --------------------------------------------------------------------------
# The run settings of DC, read from the training loader (one place each).
# --------------------------------------------------------------------------
def _check_batch_sampler(dataloader) -> Optional[IBRBatchSampler]:
    """The loader's :class:`IBRBatchSampler`, or None on one process.

    Raises:
        ValueError: With several processes and a batch sampler other than
            :class:`IBRBatchSampler`, whose ``batch_size`` would silently be
            per process.
    """
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if isinstance(batch_sampler, IBRBatchSampler):
        return batch_sampler
    world_size = get_world_size()
    if world_size > 1:
        raise ValueError(
            f'SFC training with {world_size} processes needs '
            "train_dataloader.batch_sampler=dict(type='IBRBatchSampler') (num_resampled=0 "
            'without IBR), whose batch_size is the total over processes; '
            f'{type(batch_sampler).__name__} would give {world_size} x batch_size images '
            'per step')
    return None


def resampled_per_step(dataloader) -> int:
    """``N_IBR``: re-sampled (IBR) images per optimisation step over all processes.

    :attr:`IBRBatchSampler.total_resampled`; 0 without an IBR sampler (one
    process only, see :func:`_check_batch_sampler`).
    """
    batch_sampler = _check_batch_sampler(dataloader)
    return 0 if batch_sampler is None else batch_sampler.total_resampled


def iterations_per_epoch(dataloader, num_images: int) -> int:
    """``N_iter``: ``num_images // loader images per step over all processes``.

    The loader images of one step are :attr:`IBRBatchSampler.total_batch_size`
    (the config's ``batch_size``, already a total over processes, without the
    re-sampled images); without an IBR sampler (one process only) the loader's
    ``batch_size``. VOC train_aug with batch 16 gives 10582 // 16 = 661 for any
    number of processes; the authors typed 660 (set
    ``model.loss_msdw.n_iter=660`` to reproduce their DC exactly; the
    difference is below 0.001 per class).
    """
    batch_sampler = _check_batch_sampler(dataloader)
    if batch_sampler is not None:
        batch_size = batch_sampler.total_batch_size
    else:
        batch_size = getattr(getattr(dataloader, 'batch_sampler', None), 'batch_size', None)
        batch_size = batch_size or dataloader.batch_size
    return max(num_images // batch_size, 1)


@HOOKS.register_module()
class DistributionCoefficientHook(Hook):
    """Give every :class:`MSDWLoss` of the model the training set's class counts.

    Before training, reads ``n_c`` (images per foreground class) from the
    training dataset (through any wrapper, e.g. ``RepeatDataset``), fills in
    each loss's run settings, computes the distribution coefficients (paper
    Eq. 6) and logs them with the class names. Only labels are read, never
    images.

    The run settings come from the training loader, so the sampler's
    ``num_resampled`` and ``batch_size`` (both totals over processes) are the
    only places they are set:

    - ``N_IBR`` is the images the batch sampler really re-samples per step
      over all processes (:func:`resampled_per_step`; 0 without IBR). A loss
      ``n_ibr`` that contradicts it is an error; the hook's ``n_ibr`` is the
      one deliberate override.
    - ``N_iter`` is the training images // loader images per step over all
      processes (:func:`iterations_per_epoch`) unless the loss sets
      ``n_iter``.

    With several processes the batch sampler must be an
    :class:`IBRBatchSampler`. A loss whose terms do not use DC (all DC
    switches or weights off) is left alone.

    Args:
        n_ibr (int, optional): ``N_IBR`` for DC instead of the sampler's, e.g.
            ``custom_hooks.0.n_ibr=4`` to keep the default ``N`` without IBR.
            Defaults to None (the sampler's).
    """

    priority = 'NORMAL'

    def __init__(self, n_ibr: Optional[int] = None) -> None:
        self.n_ibr = n_ibr

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        dataset = _find_counting_dataset(loader.dataset)
        counts = dataset.get_class_image_counts()
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        losses = [m for m in model.modules() if isinstance(m, MSDWLoss)]
        if not losses:
            raise RuntimeError('DistributionCoefficientHook found no MSDWLoss in the model')
        real = resampled_per_step(loader)  # checks the sampler before anything else
        names = list(dataset.metainfo['classes'][1:])
        for loss in losses:
            if not loss.needs_dc:
                runner.logger.info('distribution coefficients: not used by the loss')
                continue
            self._fill_run_settings(loss, real, loader, len(dataset))
            loss.set_class_counts(counts.tolist(), names)
            runner.logger.info(
                'distribution coefficients from %d training images, %d re-sampled per step '
                '(N_IBR=%d, C_IBR=%g, N_iter=%d): %s', len(dataset), real,
                loss.n_ibr, loss.c_ibr, loss.n_iter,
                ', '.join(f'{name}={dc:.4f}' for name, dc in zip(names, loss.dc.tolist())))

    def _fill_run_settings(self, loss: MSDWLoss, real: int, loader, num_images: int) -> None:
        """Set ``loss.n_ibr`` (``real``: images re-sampled per step) and ``loss.n_iter``."""
        if self.n_ibr is not None:
            loss.n_ibr = self.n_ibr
        elif loss.n_ibr is None:
            loss.n_ibr = real
        elif loss.n_ibr != real:
            raise ValueError(f'model.loss_msdw.n_ibr={loss.n_ibr} contradicts the '
                             f'{real} images re-sampled per step over all processes (the IBR '
                             "sampler's num_resampled); leave n_ibr unset to use them, or set "
                             'the DistributionCoefficientHook n_ibr to override DC on purpose')
        if loss.n_iter is None:
            loss.n_iter = iterations_per_epoch(loader, num_images)
