# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Optional

from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

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
def ibr_images_per_step(train_dataloader) -> Optional[int]:
    """``N_IBR``: images the IBR batch sampler appends per step; None without IBR."""
    return getattr(getattr(train_dataloader, 'batch_sampler', None), 'num_resampled', None)


def iterations_per_epoch(train_dataloader, num_images: int) -> int:
    """``N_iter``: ``num_images // (loader images per step × world size)``.

    The images per step are the batch sampler's ``batch_size`` (for
    ``IBRBatchSampler`` the loader images, without the re-sampled ones), else
    the loader's. VOC train_aug with batch 16 on one process gives
    10582 // 16 = 661; the authors typed 660 (set ``model.loss_msdw.n_iter=660``
    to reproduce their DC exactly; the difference is below 0.001 per class).
    """
    batch_sampler = getattr(train_dataloader, 'batch_sampler', None)
    batch_size = getattr(batch_sampler, 'batch_size', None) or train_dataloader.batch_size
    _, world_size = get_dist_info()
    return max(num_images // (batch_size * world_size), 1)


@HOOKS.register_module()
class DistributionCoefficientHook(Hook):
    """Give every :class:`MSDWLoss` of the model the training set's class counts.

    Before training, reads ``n_c`` (images per foreground class) from the
    training dataset (through any wrapper, e.g. ``RepeatDataset``), computes
    the distribution coefficients (paper Eq. 6) and logs them with the class
    names. Only labels are read, never images.

    ``N_IBR`` and ``N_iter`` of DC are taken from the training loader unless
    the loss sets them (:func:`ibr_images_per_step`,
    :func:`iterations_per_epoch`), so the sampler's ``num_resampled`` and the
    batch size are the only places they are set. A loss ``n_ibr`` that
    contradicts the IBR sampler is an error; without an IBR sampler (the
    no-IBR ablation) the loss must give ``n_ibr``. A loss whose terms do not
    use DC (all DC switches or weights off) is left alone.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        dataset = _find_counting_dataset(loader.dataset)
        counts = dataset.get_class_image_counts()
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        losses = [m for m in model.modules() if isinstance(m, MSDWLoss)]
        if not losses:
            raise RuntimeError('DistributionCoefficientHook found no MSDWLoss in the model')
        names = list(dataset.metainfo['classes'][1:])
        for loss in losses:
            if not loss.needs_dc:
                runner.logger.info('distribution coefficients: not used by the loss')
                continue
            self._fill_run_settings(loss, loader, len(dataset))
            loss.set_class_counts(counts.tolist(), names)
            runner.logger.info(
                'distribution coefficients from %d training images (N_IBR=%d, C_IBR=%g, '
                'N_iter=%d): %s', len(dataset), loss.n_ibr, loss.c_ibr, loss.n_iter,
                ', '.join(f'{name}={dc:.4f}' for name, dc in zip(names, loss.dc.tolist())))

    @staticmethod
    def _fill_run_settings(loss: MSDWLoss, loader, num_images: int) -> None:
        sampler_n_ibr = ibr_images_per_step(loader)
        if loss.n_ibr is None:
            if sampler_n_ibr is None:
                raise ValueError('the training loader has no IBRBatchSampler to take N_IBR '
                                 'from: set model.loss_msdw.n_ibr')
            loss.n_ibr = sampler_n_ibr
        elif sampler_n_ibr is not None and loss.n_ibr != sampler_n_ibr:
            raise ValueError(f'model.loss_msdw.n_ibr={loss.n_ibr} contradicts the IBR sampler '
                             f'(num_resampled={sampler_n_ibr}); leave n_ibr unset to use the '
                             "sampler's value")
        if loss.n_iter is None:
            loss.n_iter = iterations_per_epoch(loader, num_images)
