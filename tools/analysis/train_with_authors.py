# Copyright (c) mmsfc contributors. All rights reserved.
"""Train the authors' SFC network beside ours on the demo's batches: a diagnosis.

One mmengine run trains mmsfc's CAM network on the demo's generated
long-tailed set (``tools/demo.py``). With ``--authors-repo`` it also trains the
authors' network as a twin in lockstep: the authors' ``Net``
(``network/resnet50_SFC.py`` of a checkout of github.com/Barrett-python/SFC:
their ``forward``, ``PCM`` and ``prototype``) with its backbone stages, side
projections, classifier and PCM projection replaced by copies of ours (so
that both start from the same weights on the demo's narrow backbone), and
their training losses restated line by line from their training script. At
every iteration the twin gets the batch our model gets (after our data
pre-processor: the same crops, flips and IBR re-samples), the learning rate
of each of our parameter groups, our gradient clipping and an optimiser of
our optimiser's class and settings. Only the model and the losses are theirs;
everything around one step is ours, so if both networks end the same way,
that is the method's behaviour on this data, not our training loop's.

The authors' forward detaches the output of their ``stage2``: the stem and
the first two stages never learn. The run therefore requires a config whose
backbone freezes them (``model.backbone.frozen_stages=2`` for the demo's
ResNet), so that the two networks train the same parameters.

Every ``--interval`` iterations, from the full-scale forward of the training
step itself (nothing is run twice, so BatchNorm statistics are untouched),
each network's trace records, over the images labelled with a head class:
``head_area_w`` / ``head_area_p``, the share of valid CAM-grid pixels whose
argmax over ``M_W`` / ``M_P`` (background included) is a head class;
``bg_area_w``, the share (all images) won by the background in ``M_W``;
``bg_seed_share``, the share of background seeds of the prototype branch (an
empty background prototype when 0);
``head_bg_cos``, the cosine between the head class's prototype and the
background's (the seeds of ``M_P``, docs/method_notes.md §5). After training
both networks are scored by the demo's metric with mmsfc's inference (the
authors' weights copied back into our model; our inference equals theirs on
the same weights, see ``tools/misc/benchmark_vs_authors.py --mode check``).

Without ``--authors-repo`` only our network trains, with the same trace: the
ablations' traces come from ``--cfg-options`` (e.g.
``model.loss_msdw.loss_weight_p=0``).

Outputs in ``--work-dir``: ``trace.json`` (losses every iteration, the trace,
the final scores) and ``trace.png``.

Examples::

    python tools/analysis/train_with_authors.py --authors-repo ../SFC \\
        --cfg-options model.backbone.frozen_stages=2
    python tools/analysis/train_with_authors.py --backbone lite0 --authors-repo ../SFC
    python tools/analysis/train_with_authors.py --cfg-options model.loss_msdw.loss_weight_p=0
"""
import argparse
import copy
import importlib.util
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import DictAction
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmsfc.evaluation.demo_report import VARIANT_MAP, head_tail_classes
from mmsfc.models.utils.cam_ops import l2_normalize, masked_prototypes, seed_masks

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load_script(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, osp.join(TOOLS, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------- the authors' net
def backbone_stages(backbone: nn.Module) -> List[nn.Module]:
    """The backbone as five sequential pieces: stem, then one per output map.

    The authors' forward runs ``stage0..stage4`` in turn and reads the outputs
    of ``stage1..stage4``; this returns modules of the same role for mmseg's
    ``ResNet`` (4 stages, every stage returned) and for backbones that run a
    ``layers`` list and return the outputs at ``out_indices`` (mmpretrain's
    EfficientNet and mmsfc's ``EfficientNetLite``).

    Raises:
        TypeError: For another backbone.
    """
    if hasattr(backbone, 'res_layers'):
        if tuple(backbone.out_indices) != (0, 1, 2, 3):
            raise TypeError('the ResNet must return its four stages (out_indices=(0, 1, 2, 3))')
        stem = (nn.Sequential(backbone.stem, backbone.maxpool) if backbone.deep_stem else
                nn.Sequential(backbone.conv1, backbone.norm1, backbone.relu, backbone.maxpool))
        return [stem] + [getattr(backbone, name) for name in backbone.res_layers]
    if hasattr(backbone, 'layers') and hasattr(backbone, 'out_indices'):
        ends = sorted(backbone.out_indices)
        if len(ends) != 4:
            raise TypeError(f'the backbone must return four maps, out_indices={ends}')
        layers = list(backbone.layers)
        pieces, start = [nn.Sequential(*layers[:ends[0]])], ends[0]
        for end in ends:
            pieces.append(nn.Sequential(*layers[start:end + 1]))
            start = end + 1
        return pieces
    raise TypeError(f'no stage split for a {type(backbone).__name__} backbone')


def build_twin(sfc_module, ours: nn.Module, memo: dict) -> nn.Module:
    """The authors' ``Net`` holding copies of our modules.

    ``memo`` (the ``copy.deepcopy`` memo) maps ``id`` of each of our
    parameters, buffers and modules to the twin's copy.
    """
    twin = sfc_module.Net(num_cls=ours.num_classes)
    stages = [copy.deepcopy(stage, memo) for stage in backbone_stages(ours.backbone)]
    for index, stage in enumerate(stages):
        setattr(twin, f'stage{index}', stage)
    for index, conv in enumerate(ours.prototype_head.side_convs):
        setattr(twin, f'side{index + 1}', copy.deepcopy(conv, memo))
    twin.classifier = copy.deepcopy(ours.classifier, memo)
    twin.f9 = copy.deepcopy(ours.pcm.proj, memo)
    twin.backbone = nn.ModuleList(stages)
    twin.newly_added = nn.ModuleList([twin.classifier, twin.f9, twin.side1, twin.side2,
                                      twin.side3, twin.side4])
    del twin.resnet50  # their randomly initialised ResNet-50, replaced by the stages above
    return twin


def authors_losses(twin: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   valid: torch.Tensor, dc: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Their training losses (train_resnet50_SFC.py's loop, restated).

    Args:
        images (Tensor): ``(N, 3, H, W)``, the batch as our model gets it.
        labels (Tensor): ``(N, K)`` multi-hot labels.
        valid (Tensor): ``(N, 1, H, W)`` valid regions (1 inside the pasted image).
        dc (Tensor): ``(K,)`` distribution coefficients.

    Returns:
        dict: ``loss_cls``, ``loss_dw_p``, ``loss_dw_w`` and ``outputs1``, the
        full-scale outputs (``cam1`` = M_W, ``cam2`` = M_P).
    """
    n, _, h, w = images.shape
    label = labels[:, :, None, None]
    half = F.interpolate(images, scale_factor=0.5, mode='bilinear', align_corners=True)
    valid_mask = valid.expand(n, labels.shape[1] + 1, h, w).clone()
    valid_mask[:, 1:] = valid_mask[:, 1:] * label
    out1 = twin(images, F.interpolate(valid_mask, size=(h // 16, w // 16), mode='nearest'),
                labels)
    out2 = twin(half, F.interpolate(valid_mask, size=(h // 32, w // 32), mode='nearest'),
                labels)
    loss_cls = (F.multilabel_soft_margin_loss(out1['score'], label) +
                F.multilabel_soft_margin_loss(out2['score'], label)) / 2
    cam_rv1 = out1['cam2'] / (F.adaptive_max_pool2d(out1['cam2'], (1, 1)) + 1e-5)
    lo = torch.abs(out1['cam1'] - cam_rv1)
    lo = torch.cat([lo[:, :1], lo[:, 1:] * dc.view(1, -1, 1, 1)], dim=1)
    loss_p = torch.mean(torch.abs(lo)) * 1.6
    cam1 = F.interpolate(out1['cam1'], scale_factor=0.5, mode='bilinear',
                         align_corners=True)[:, 1:] * label
    cons = torch.abs(cam1 - out2['cam1'][:, 1:] * label) * dc.view(1, -1, 1, 1)
    loss_w = torch.mean(cons) * 0.8
    return dict(loss_cls=loss_cls, loss_dw_p=loss_p, loss_dw_w=loss_w, outputs1=out1)


# ------------------------------------------------------------------ the trace
def cam_statistics(cam_w: torch.Tensor, cam_p: torch.Tensor, phi: torch.Tensor,
                   mask: torch.Tensor, labels: torch.Tensor, head: Sequence[int],
                   bg_seed_scale: float) -> Dict[str, float]:
    """Head-class statistics of one full-scale forward.

    Args:
        cam_w, cam_p (Tensor): ``M_W``, ``M_P`` of shape ``(N, K+1, h, w)``
            (``cam_p`` None where the run computes no ``M_P``).
        phi (Tensor): Side features ``(N, C, h, w)``, or None with ``cam_p``.
        mask (Tensor): ``(N, K+1, h, w)``, the valid region times ``[1, y]``.
        labels (Tensor): ``(N, K)``.
        head (Sequence[int]): Head classes, foreground indices ``0..K-1``.
        bg_seed_scale (float): The seeds' background factor.
    """
    head_channels = torch.as_tensor([c + 1 for c in head])
    valid = mask[:, 0] > 0
    with_head = labels[:, list(head)].sum(1) > 0
    stats = {}
    for name, cam in (('w', cam_w), ('p', cam_p)):
        if cam is None:
            continue
        winner = cam.argmax(1)
        is_head = torch.isin(winner, head_channels) & valid
        rows = with_head.nonzero().flatten()
        stats[f'head_area_{name}'] = float(
            is_head[rows].sum() / valid[rows].sum().clamp(min=1)) if len(rows) else float('nan')
    stats['bg_area_w'] = float(((cam_w.argmax(1) == 0) & valid).sum() / valid.sum().clamp(min=1))
    seeds = seed_masks(cam_w, mask, bg_seed_scale)  # (N, K+1, h, w), one-hot
    stats['bg_seed_share'] = float(seeds[:, 0].sum() / valid.sum().clamp(min=1))
    if phi is None:
        return stats
    protos = masked_prototypes(phi, seeds)  # (N, K+1, C)
    cos = []
    for image in with_head.nonzero().flatten():
        for channel in head_channels:
            if labels[image, channel - 1] > 0:
                cos.append(F.cosine_similarity(protos[image, channel], protos[image, 0], dim=0))
    stats['head_bg_cos'] = float(torch.stack(cos).mean()) if cos else float('nan')
    return stats


def _phi(sides: Sequence[torch.Tensor], size) -> torch.Tensor:
    return torch.cat([F.interpolate(l2_normalize(s), size=size, mode='bilinear',
                                    align_corners=False) for s in sides], dim=1)


class _Capture:
    """Keeps the first output (or inputs) of a module per step."""

    def __init__(self, module: nn.Module, inputs: bool = False):
        self.value, self.inputs = None, inputs
        module.register_forward_hook(self)

    def __call__(self, module, args, output):
        if self.value is None:
            self.value = tuple(a.detach() for a in args) if self.inputs else output.detach()

    def pop(self):
        value, self.value = self.value, None
        return value


class TraceHook(Hook):
    """Records our losses and head-class statistics; optionally trains the authors' twin.

    Args:
        head (Sequence[int]): Head classes (foreground indices).
        interval (int): Iterations between two trace points.
        authors (module, optional): The authors' ``network.resnet50_SFC``.
        noop_cuda: A context manager making ``.cuda()`` a no-op (their
            prototype calls it) on machines without CUDA.
    """

    priority = 'NORMAL'

    def __init__(self, head: Sequence[int], interval: int, authors=None, noop_cuda=None):
        self.head, self.interval, self.authors, self.noop_cuda = list(head), interval, authors, \
            noop_cuda
        self.log: Dict[str, list] = dict(ours=[], authors=[])
        self.twin = None
        self.batch = None  # the prepared batch of the step, when the twin ran

    def _ours(self, runner) -> nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        ours = self._ours(runner)
        self.cam_w = _Capture(ours.pcm)
        self.proto_in = _Capture(ours.prototype_head, inputs=True)
        self.proto_out = _Capture(ours.prototype_head)
        if self.authors is None:
            return
        weights = (ours.loss_msdw.loss_weight_p, ours.loss_msdw.loss_weight_w,
                   ours.loss_msdw.dc_in_p, ours.loss_msdw.dc_in_w)
        if weights != (1.6, 0.8, True, True):
            raise ValueError('the authors\' losses are SFC\'s (weights 1.6 / 0.8, DC in both '
                             f'terms); the config has {weights}: drop --authors-repo for ablations')
        self.memo = {}
        self.twin = build_twin(self.authors, ours, self.memo)
        learning = [name for name, p in ours.backbone.named_parameters() if p.requires_grad]
        frozen_by_them = [p for stage in backbone_stages(ours.backbone)[:3]
                          for p in stage.parameters() if p.requires_grad]
        if frozen_by_them:
            raise ValueError(
                "the authors' forward detaches the output of stage2, so their stem and first "
                'two stages never learn; freeze them in ours too (e.g. --cfg-options '
                f'model.backbone.frozen_stages=2); learning now: {learning[:3]} ...')
        optimizer = runner.optim_wrapper.optimizer
        groups = []
        for group in optimizer.param_groups:
            twin_group = {k: v for k, v in group.items() if k != 'params'}
            twin_group['params'] = [self.memo[id(p)] for p in group['params']]
            groups.append(twin_group)
        defaults = {k: v for k, v in optimizer.defaults.items() if k != 'fused'}
        self.optimizer = type(optimizer)(groups, **defaults)
        self.twin_sides = [_Capture(getattr(self.twin, f'side{i}')) for i in range(1, 5)]

    def _sync_modes(self, ours: nn.Module) -> None:
        for module in ours.modules():
            twin = self.memo.get(id(module))
            if twin is not None:
                twin.training = module.training

    @staticmethod
    def _prepared(ours: nn.Module, data_batch) -> tuple:
        """The batch as the model sees it: inputs ``(N, 3, H, W)``, labels
        ``(N, K)`` and the valid masks ``(N, 1, H, W)``."""
        data = ours.data_preprocessor(copy.copy(data_batch), True)
        inputs, samples = data['inputs'], data['data_samples']
        return inputs, ours._labels(inputs, samples), ours._valid_masks(inputs, samples)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        ours = self._ours(runner)
        for capture in (self.cam_w, self.proto_in, self.proto_out):
            capture.pop()
        self.batch = None
        if self.twin is None:
            return
        inputs, labels, valid = self.batch = self._prepared(ours, data_batch)
        self._sync_modes(ours)
        for mine, theirs in zip(runner.optim_wrapper.optimizer.param_groups,
                                self.optimizer.param_groups):
            theirs['lr'] = mine['lr']
        for capture in self.twin_sides:
            capture.pop()
        with self.noop_cuda():
            losses = authors_losses(self.twin, inputs, labels, valid, ours.loss_msdw.dc)
        out1 = losses.pop('outputs1')
        self.optimizer.zero_grad()
        sum(losses.values()).backward()
        clip = runner.optim_wrapper.clip_grad_kwargs
        if clip:
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g['params']], **clip)
        self.optimizer.step()
        entry = dict(iter=runner.iter, **{k: float(v) for k, v in losses.items()})
        if runner.iter % self.interval == 0 or runner.iter + 1 == runner.max_iters:
            h, w = out1['cam1'].shape[2:]
            mask = F.interpolate(valid, size=(h, w), mode='nearest') * torch.cat(
                [torch.ones_like(labels[:, :1]), labels], 1)[:, :, None, None]
            phi = _phi([c.pop() for c in self.twin_sides], (h, w))
            entry.update(cam_statistics(out1['cam1'].detach(), out1['cam2'].detach(), phi,
                                        mask, labels, self.head,
                                        ours.prototype_head.bg_seed_scale))
        self.log['authors'].append(entry)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        ours = self._ours(runner)
        entry = dict(iter=runner.iter, **{k: float(v) for k, v in (outputs or {}).items()
                                           if k.startswith('loss_')})
        if runner.iter % self.interval == 0 or runner.iter + 1 == runner.max_iters:
            cam_w = self.cam_w.value
            side_feats, cam_p = None, self.proto_out.value
            if cam_p is not None:
                side_feats = self.proto_in.value[0]
            _, labels, valid = self.batch or self._prepared(ours, data_batch)
            valid = F.interpolate(valid, size=cam_w.shape[2:], mode='nearest')
            mask = valid * torch.cat([torch.ones_like(labels[:, :1]), labels],
                                     1)[:, :, None, None]
            entry.update(cam_statistics(cam_w, cam_p, side_feats, mask, labels, self.head,
                                        ours.prototype_head.bg_seed_scale))
            if self.twin is not None:  # both have stepped
                entry['param_distance'] = self.parameter_distance(ours)
        self.log['ours'].append(entry)

    def parameter_distance(self, ours: nn.Module) -> float:
        """``||θ_twin − θ_ours|| / ||θ_ours||`` over the trainable parameters."""
        num, den = 0.0, 0.0
        for p in ours.parameters():
            if p.requires_grad and id(p) in self.memo:
                num += float((self.memo[id(p)].detach() - p.detach()).pow(2).sum())
                den += float(p.detach().pow(2).sum())
        return (num / max(den, 1e-30)) ** 0.5

    def load_twin_into(self, ours: nn.Module) -> None:
        """Copy the twin's weights and buffers into our model."""
        with torch.no_grad():
            for tensor in list(ours.parameters()) + list(ours.buffers()):
                twin = self.memo.get(id(tensor))
                if twin is not None:
                    tensor.copy_(twin)


# ---------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--authors-repo', help='a checkout of github.com/Barrett-python/SFC')
    parser.add_argument('--backbone', default='scratch', help='the demo backbone (see demo.py)')
    parser.add_argument('--variant', default='sfc', help='the demo variant (sfc, ibr, base)')
    parser.add_argument('--work-dir', default='work_dirs/train_with_authors')
    parser.add_argument('--data-root', help='the demo dataset (default: WORK_DIR/data)')
    parser.add_argument('--quick', action='store_true', help="the demo's quick preset")
    parser.add_argument('--iters', type=int, help='training iterations')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--interval', type=int, default=10, help='iterations between traces')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the CAM config')
    return parser.parse_args(argv)


def _plot(log: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    keys = [('loss_cls', 'L_cls'), ('loss_dw_p', 'L_DW^P'), ('loss_dw_w', 'L_DW^W'),
            ('head_area_w', 'head-class area, M_W'), ('head_area_p', 'head-class area, M_P'),
            ('head_bg_cos', 'cos(head prototype, bg prototype)')]
    fig, axes = plt.subplots(2, 3, figsize=(10, 5.2), dpi=100)
    for ax, (key, title) in zip(axes.flat, keys):
        for impl, style in (('ours', '-'), ('authors', '--')):
            points = [(e['iter'], e[key]) for e in log[impl] if key in e]
            if points:
                x, y = zip(*points)
                if key.startswith('loss'):  # smoothed over 10 iterations
                    y = np.convolve(y, np.ones(10) / 10, mode='valid') if len(y) >= 10 else y
                    x = x[len(x) - len(y):]
                ax.plot(x, y, style, label='mmsfc' if impl == 'ours' else 'authors\' code')
        ax.set_title(title, fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    demo = _load_script('demo.py', 'mmsfc_tool_demo')
    preset = dict(demo.PRESETS['quick' if args.quick else 'default'])
    if args.iters:
        preset['cam_iters'] = args.iters
    work_dir = osp.abspath(args.work_dir)
    root = osp.abspath(args.data_root or osp.join(work_dir, 'data'))
    os.makedirs(work_dir, exist_ok=True)
    meta = demo._dataset(root, preset, seed=0)
    cfg = demo._cam_config(args.variant, args.seed, root, work_dir, preset, meta,
                           args.cfg_options, backbone=args.backbone)
    authors = noop = None
    if args.authors_repo:
        bench = _load_script('misc/benchmark_vs_authors.py', 'mmsfc_tool_bench_authors')
        authors, noop = bench.load_authors(args.authors_repo), bench.cuda_calls_as_noop
    head_names, _ = head_tail_classes(meta)
    head = [list(meta['classes']).index(name) - 1 for name in head_names]
    runner = Runner.from_cfg(cfg)
    hook = TraceHook(head, args.interval, authors, noop)
    runner.register_hook(hook)
    runner.train()
    results = dict(ours=runner.test())
    if hook.twin is not None:
        model = hook._ours(runner)
        state = copy.deepcopy(model.state_dict())
        hook.load_twin_into(model)
        results['authors'] = runner.test()
        model.load_state_dict(state)
    summary = dict(settings=dict(vars(args), preset=preset), head=head_names,
                   final=results, log=hook.log)
    with open(osp.join(work_dir, 'trace.json'), 'w') as f:
        json.dump(summary, f, indent=1, default=float)
    _plot(hook.log, osp.join(work_dir, 'trace.png'))
    main_map = VARIANT_MAP[args.variant]
    for impl, scores in results.items():
        print_log(f'{impl}: CAM mIoU M_W {scores["mIoU_w"]:.1f} M_P {scores["mIoU_p"]:.1f} '
                  f'M_final {scores["mIoU_final"]:.1f}; head precision '
                  f'{scores[f"head_precision_{main_map}"]:.1f}, head claims '
                  f'{scores[f"head_claim_{main_map}"]:.1f} %', logger='current')
    return summary


if __name__ == '__main__':
    main()
