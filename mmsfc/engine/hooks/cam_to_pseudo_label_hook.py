# Copyright (c) mmsfc contributors. All rights reserved.
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ..pseudo_labels import PseudoLabelGenerator


def format_metrics(metrics: dict) -> str:
    """One line per metric, for the log."""
    return '\n'.join(f'  {key}: {value}' for key, value in metrics.items())


@HOOKS.register_module()
class CAMToPseudoLabelHook(Hook):
    """After CAM training, make (and score) the pseudo labels of a split.

    A no-op unless ``out_dir`` is set; a relative ``out_dir`` is taken inside
    the work directory. Runs :class:`~mmsfc.engine.PseudoLabelGenerator`, the
    code path of ``tools/make_pseudo_labels.py``, with the trained model.

    Args:
        out_dir (str, optional): Output directory; None disables the hook.
        dataloader (dict, optional): Dataloader config of the split; defaults
            to the config's ``test_dataloader``.
        **kwargs: Other :class:`PseudoLabelGenerator` arguments (``crf``,
            ``crf_alpha``, ``nproc``, ``cam_metric``, ``eval_ann_file``,
            ``show_dir``, ``walk``, ``regions``, ``region_rule``, ...).
            ``regions=dict(type='slic')`` (or ``'felzenszwalb'``, ``'sam'``,
            ``'folder'``) also writes the labels (or masks) snapped to
            class-agnostic regions into their own folder and scores them.
        mode (str): ``'cam'`` (after CAM training: CAMs, CRF labels) or
            ``'irn'`` (after IRN training: stage 3 masks from the CAMs stored
            in ``out_dir`` and the trained IRN, :meth:`PseudoLabelGenerator.refine`).
    """

    priority = 'LOW'

    def __init__(self, out_dir: Optional[str] = None, dataloader: Optional[dict] = None,
                 mode: str = 'cam', **kwargs) -> None:
        if mode not in ('cam', 'irn'):
            raise ValueError(f"mode must be 'cam' or 'irn', got {mode!r}")
        self.mode = mode
        self.out_dir = out_dir
        self.dataloader = dataloader
        self.kwargs = kwargs

    def after_train(self, runner) -> None:
        if self.out_dir is None:
            runner.logger.info('CAMToPseudoLabelHook: out_dir is not set, no pseudo labels made')
            return
        out_dir = self.out_dir if osp.isabs(self.out_dir) else osp.join(runner.work_dir,
                                                                          self.out_dir)
        dataloader = self.dataloader or runner.cfg.test_dataloader
        generator = PseudoLabelGenerator(out_dir, dataloader, **self.kwargs)
        if self.mode == 'irn':
            metrics = generator.refine(runner.model)
        else:
            metrics = generator.run(runner.model)
        runner.logger.info(f'pseudo labels in {out_dir}:\n{format_metrics(metrics)}')
