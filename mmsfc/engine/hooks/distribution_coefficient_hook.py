# Copyright (c) mmsfc contributors. All rights reserved.
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


@HOOKS.register_module()
class DistributionCoefficientHook(Hook):
    """Give every :class:`MSDWLoss` of the model the training set's class counts.

    Before training, reads ``n_c`` (images per foreground class) from the
    training dataset (through any wrapper, e.g. ``IBRDataset``), computes the
    distribution coefficients (paper Eq. 6) and logs them. Only labels are
    read, never images.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        dataset = _find_counting_dataset(runner.train_dataloader.dataset)
        counts = dataset.get_class_image_counts()
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        losses = [m for m in model.modules() if isinstance(m, MSDWLoss)]
        if not losses:
            raise RuntimeError('DistributionCoefficientHook found no MSDWLoss in the model')
        for loss in losses:
            loss.set_class_counts(counts.tolist())
        runner.logger.info(
            'distribution coefficients from %d training images: %s', len(dataset),
            ', '.join(f'{name}={dc:.4f}' for name, dc in
                      zip(dataset.metainfo['classes'][1:], losses[0].dc.tolist())))
