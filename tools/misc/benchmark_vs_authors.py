# Copyright (c) mmsfc contributors. All rights reserved.
"""Time mmsfc against the authors' SFC code on the same random weights and inputs.

The authors' code is not part of mmsfc: clone https://github.com/Barrett-python/SFC
and pass its directory with ``--authors-repo``. Their ``network/resnet50_SFC.py``
(``Net`` for training, ``CAM`` for inference) is imported from there, with
three shims that change no computation: their missing ``tool`` package is
stubbed (``torchutils`` is imported but unused by the network), the ImageNet
download is skipped (random weights), and on a machine without CUDA their one
``.cuda()`` call is a no-op. Their weights are copied into mmsfc's model with
``tools/model_converters/sfc_to_mmsfc.py``'s key mapping.

One process runs one implementation (``--impl ours`` / ``authors``), so a
whole-process timer (e.g. ``/usr/bin/time -v``) sees each one's peak memory;
alternate the two for a fair comparison on a busy machine, or time them with
``--impl both``: one process runs the two step by step in turn on the same
inputs and prints the ratio of each step's times, which a machine whose speed
drifts (shared cores) moves far less than the ratio of separate runs. Each
run prints its own step times and the peak resident memory of the process, in
total and above the resident memory before the first step (what the steps
themselves need: activations, gradients, optimiser state). A process of ours
holds the imports of mmengine / mmcv / mmseg; an authors' run imports torch
and their network only (``--authors-imports network``, the default), or also
the third-party modules their training script (``train_resnet50_SFC.py`` and
its ``data`` module) or ``make_cam.py`` imports (``--authors-imports
scripts``: those installed; the run lists any that are missing, which makes
its peak a lower bound).

- ``--mode train``: full training steps, i.e. both scales, the losses,
  backward, gradient clipping at 1 and SGD. The authors' loss is computed in
  their train script's loop (not importable); here it is written out from its
  definition (multi-label soft margin at both scales, DC-weighted L1 terms with
  the weights 1.6 and 0.8), which costs little next to the network.
- ``--mode infer``: CAMs of one image at the scales (1.0, 0.5, 1.5, 2.0) with
  flips, as their ``make_cam.py``: PIL bicubic resize of the uint8 image,
  the network per scale, bilinear resize to the image, sum and max
  normalisation of both maps. mmsfc runs ``SFCClassifier.predict``.
- ``--mode check``: both implementations on one small batch: the training
  losses and the inference maps must agree (a sanity check that the timings
  compare the same computation); prints the largest differences.

Examples::

    python tools/misc/benchmark_vs_authors.py --authors-repo ../SFC --impl authors \\
        --mode train --batch-size 2 --crop 256
    python tools/misc/benchmark_vs_authors.py --authors-repo ../SFC --impl ours \\
        --mode infer --size 375 500
    python tools/misc/benchmark_vs_authors.py --authors-repo ../SFC --impl both \\
        --mode train --iters 10 --keep-freed-memory
    python tools/misc/benchmark_vs_authors.py --authors-repo ../SFC --mode check
"""
import argparse
import gc
import importlib
import os.path as osp
import sys
import time
import types
from contextlib import contextmanager
from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# mmsfc and its stack are imported only where our model is built, so that a
# process timing the authors' code holds torch and their network alone.

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
CONFIG = osp.join(ROOT, 'configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py')
SCALES = (1.0, 0.5, 1.5, 2.0)
MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def peak_rss_gib() -> Tuple[float, float]:
    """Current and peak resident memory of this process, GiB (Linux)."""
    fields = {}
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(('VmRSS', 'VmHWM')):
                key, value = line.split(':')
                fields[key] = int(value.split()[0]) / 2**20
    return fields['VmRSS'], fields['VmHWM']


#: Third-party modules the authors' scripts import, besides torch and numpy
#: (training: train_resnet50_SFC.py with data/data_voc.py; inference: make_cam.py).
AUTHORS_SCRIPT_IMPORTS = {
    'train': ('tensorboardX', 'chainercv', 'PIL.Image', 'scipy.misc', 'imageio', 'torchvision',
              'cv2'),
    'infer': ('PIL.Image', 'matplotlib.pyplot', 'imageio', 'scipy.misc', 'torchvision', 'cv2'),
}


def import_authors_script_modules(mode: str) -> None:
    """Import what the authors' ``mode`` script imports; print what is missing."""
    missing = []
    for name in AUTHORS_SCRIPT_IMPORTS[mode]:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        print(f'authors\' script imports not installed (not counted): {", ".join(missing)}')


def load_authors(repo: str):
    """The authors' ``network.resnet50_SFC`` module, imported from ``repo``."""
    if not osp.isfile(osp.join(repo, 'network', 'resnet50_SFC.py')):
        raise FileNotFoundError(f"--authors-repo {repo}: no network/resnet50_SFC.py there "
                                '(clone https://github.com/Barrett-python/SFC)')
    sys.path.insert(0, osp.abspath(repo))
    if 'tool' not in sys.modules:  # their repository lacks the tool package
        tool = types.ModuleType('tool')
        tool.torchutils = types.ModuleType('tool.torchutils')
        sys.modules['tool'] = tool
        sys.modules['tool.torchutils'] = tool.torchutils
    resnet = importlib.import_module('network.resnet50')
    build = resnet.resnet50
    resnet.resnet50 = lambda pretrained=True, **kwargs: build(pretrained=False, **kwargs)
    return importlib.import_module('network.resnet50_SFC')


@contextmanager
def cuda_calls_as_noop():
    """Their prototype calls ``.cuda()``; a no-op where there is no CUDA."""
    if torch.cuda.is_available():
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def build_authors(repo: str, cls: str = 'Net', num_classes: int = 21,
                  randomize_bn: bool = False):
    """The authors' ``Net`` or ``CAM`` with the random weights of seed 0."""
    sfc = load_authors(repo)
    torch.manual_seed(0)
    net = getattr(sfc, cls)(num_cls=num_classes)
    if randomize_bn:
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for bn in net.modules():
                if isinstance(bn, torch.nn.BatchNorm2d):
                    bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen) * 0.1)
                    bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
    return net


def build_ours(repo: str, randomize_bn: bool = False):
    """mmsfc's model with the weights of :func:`build_authors`, and its config."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmsfc  # noqa: F401  (registration)
    sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))
    from sfc_to_mmsfc import convert
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmseg')
    cfg.model.backbone.init_cfg = None
    ours = MODELS.build(cfg.model)
    converted, _ = convert(build_authors(repo, randomize_bn=randomize_bn).state_dict())
    ours.load_state_dict(converted, strict=True)
    del converted
    gc.collect()  # the authors' copy, built here only for its weights
    return ours, cfg


def set_class_counts(ours) -> None:
    """Fixed class counts (any: DC as computed), N_IBR and N_iter of VOC."""
    ours.loss_msdw.n_ibr, ours.loss_msdw.n_iter = 4, 661
    ours.loss_msdw.set_class_counts([float(n) for n in range(100, 2100, 100)])


def random_batch(batch_size: int, crop: int, rng: np.random.Generator):
    images = torch.from_numpy(rng.standard_normal((batch_size, 3, crop, crop),
                                                  dtype=np.float32))
    labels = (rng.random((batch_size, 20)) < 0.15).astype(np.float32)
    labels[np.arange(batch_size), rng.integers(20, size=batch_size)] = 1
    return images, torch.from_numpy(labels)


def authors_losses(net, images: torch.Tensor, labels: torch.Tensor,
                   dc: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Their training losses on a batch with every pixel valid (their loop, restated)."""
    n, _, h, w = images.shape
    label = labels[:, :, None, None]
    half = F.interpolate(images, scale_factor=0.5, mode='bilinear', align_corners=True)
    valid = torch.ones(n, 21, h, w)
    valid[:, 1:] = valid[:, 1:] * label
    out1 = net(images, F.interpolate(valid, size=(h // 16, w // 16), mode='nearest'), labels)
    out2 = net(half, F.interpolate(valid, size=(h // 32, w // 32), mode='nearest'), labels)
    loss_cls = (F.multilabel_soft_margin_loss(out1['score'], label) +
                F.multilabel_soft_margin_loss(out2['score'], label)) / 2
    cam_p = out1['cam2'] / (F.adaptive_max_pool2d(out1['cam2'], (1, 1)) + 1e-5)
    weights = torch.cat([torch.ones(1), dc]).view(1, -1, 1, 1)
    loss_p = 1.6 * torch.mean((out1['cam1'] - cam_p).abs() * weights)
    down = F.interpolate(out1['cam1'], scale_factor=0.5, mode='bilinear', align_corners=True)
    diff = (down[:, 1:] * label - out2['cam1'][:, 1:] * label).abs()
    loss_w = 0.8 * torch.mean(diff * dc.view(1, -1, 1, 1))
    return dict(loss_cls=loss_cls, loss_dw_p=loss_p, loss_dw_w=loss_w)


def our_samples(labels: torch.Tensor, shape=None) -> list:
    from mmseg.structures import SegDataSample
    samples = []
    for label in labels.numpy():
        meta = dict(cls_label=label)
        if shape is not None:
            meta.update(img_shape=shape, ori_shape=shape)
        samples.append(SegDataSample(metainfo=meta))
    return samples


def authors_cams(cam_net, rgb: np.ndarray, label: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """M_W and M_P of one uint8 image as their make_cam.py (before the background rule)."""
    height, width = rgb.shape[:2]
    label21 = F.pad(label, (1, 0), value=1.0)[:, None, None]
    outputs = []
    for scale in SCALES:
        size = (round(width * scale), round(height * scale))
        scaled = rgb if scale == 1.0 else np.asarray(
            Image.fromarray(rgb).resize(size, Image.BICUBIC))
        img = torch.from_numpy(((scaled - MEAN) / STD).astype(np.float32)).permute(2, 0, 1)
        pair = torch.stack([img, img.flip(-1)])
        outputs.append(cam_net(pair, label21))
    maps = []
    for index in (0, 1):  # cam1 (M_W), cam2 (M_P)
        total = sum(F.interpolate(out[index][:, None], (height, width), mode='bilinear',
                                  align_corners=False)[:, 0] for out in outputs)
        total = total / (F.adaptive_max_pool2d(total, (1, 1)) + 1e-5)
        maps.append(total * label21)
    return tuple(maps)


def our_cams(model, rgb: np.ndarray, label: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    inputs = torch.from_numpy(((rgb - MEAN) / STD).astype(np.float32)).permute(2, 0, 1)[None]
    sample = model.predict(inputs, our_samples(label[None], rgb.shape[:2]))[0]
    return sample.cam_w.data, sample.cam_p.data


def run_check(args) -> int:
    net = build_authors(args.authors_repo, randomize_bn=True)
    cam_net = build_authors(args.authors_repo, 'CAM', randomize_bn=True)
    ours, _ = build_ours(args.authors_repo, randomize_bn=True)
    set_class_counts(ours)
    dc = ours.loss_msdw.dc.clone()
    rng = np.random.default_rng(args.seed)
    images, labels = random_batch(2, 64, rng)
    ours.train()
    with cuda_calls_as_noop():
        theirs = authors_losses(net, images, labels, dc)
    mine = ours.loss(images, our_samples(labels))
    worst = 0.0
    for name, value in mine.items():
        error = abs(value.item() - theirs[name].item())
        worst = max(worst, error / max(abs(theirs[name].item()), 1e-8))
        print(f'{name}: authors {theirs[name].item():.6f}, ours {value.item():.6f}')
    rgb = rng.integers(0, 256, (75, 100, 3), dtype=np.uint8)
    ours.eval()
    every_class = torch.ones(20)  # random weights: seeds of absent classes would be empty
    with torch.no_grad(), cuda_calls_as_noop():
        ref_w, ref_p = authors_cams(cam_net, rgb, every_class)
        cam_w, cam_p = our_cams(ours, rgb, every_class)
    err_w = (cam_w - ref_w).abs().max().item()
    err_p = (cam_p - ref_p).abs().max().item()
    print(f'max relative loss difference {worst:.2e}; CAM max |diff| M_W {err_w:.2e}, '
          f'M_P {err_p:.2e} (maps peak at {ref_w.amax():.3f}, {ref_p.amax():.3f})')
    ok = (worst < 1e-4 and err_w < 1e-4 and err_p < 1e-3
          and min(ref_w.amax(), ref_p.amax()) > 0.5)
    print('check:', 'agree' if ok else 'DISAGREE')
    return 0 if ok else 1


def train_step(args, impl: str):
    """One full training step of ``impl`` ('authors' or 'ours'), as a function."""
    if impl == 'authors':
        net = build_authors(args.authors_repo)
        dc = torch.ones(20)  # the values do not change the work
        backbone, new = net.trainable_parameters()
        optimizer = torch.optim.SGD([dict(params=backbone, lr=0.1), dict(params=new, lr=1.0)],
                                    lr=0.1, momentum=1e-4, weight_decay=1e-4)
        net.train()

        def step(images, labels):
            with cuda_calls_as_noop():
                losses = authors_losses(net, images, labels, dc)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=1)
            optimizer.step()
        return step

    from mmengine.optim import build_optim_wrapper
    ours, cfg = build_ours(args.authors_repo)
    if args.plain:
        ours.train_cfg.update(ours.PLAIN_TRAIN_CFG)
        cfg.optim_wrapper.optimizer.pop('fused', None)
    set_class_counts(ours)
    ours.train()
    optim_wrapper = build_optim_wrapper(ours, cfg.optim_wrapper)

    def step(images, labels):
        losses = ours.loss(images, our_samples(labels))
        optim_wrapper.update_params(sum(losses.values()))
    return step


def infer_step(args, impl: str):
    """CAMs of one image by ``impl`` ('authors' or 'ours'), as a function."""
    if impl == 'authors':
        cam_net = build_authors(args.authors_repo, 'CAM')

        def step(rgb, label):
            with torch.no_grad(), cuda_calls_as_noop():
                authors_cams(cam_net, rgb, label)
        return step

    ours, _ = build_ours(args.authors_repo)
    if args.plain:
        ours.test_cfg.update(ours.PLAIN_TEST_CFG)
    ours.eval()

    def step(rgb, label):
        with torch.no_grad():
            our_cams(ours, rgb, label)
    return step


def run(args) -> None:
    rng = np.random.default_rng(args.seed)
    if args.mode == 'train':
        batches = [random_batch(args.batch_size, args.crop, rng)
                   for _ in range(args.warmup + args.iters)]
        make_step, images_per_step = train_step, args.batch_size
    else:
        batches = [(rng.integers(0, 256, (*args.size, 3), dtype=np.uint8),
                    random_batch(1, 8, rng)[1][0]) for _ in range(args.warmup + args.iters)]
        make_step, images_per_step = infer_step, 1
    impls = ('authors', 'ours') if args.impl == 'both' else (args.impl, )
    if 'authors' in impls and args.authors_imports == 'scripts':
        import_authors_script_modules(args.mode)
    steps = {impl: make_step(args, impl) for impl in impls}
    before, _ = peak_rss_gib()  # models built, nothing run yet
    times = {impl: [] for impl in impls}
    for index, batch in enumerate(batches):
        for impl in impls:  # both: step by step in turn, so drift hits both alike
            start = time.perf_counter()
            steps[impl](*batch)
            if index >= args.warmup:
                times[impl].append(time.perf_counter() - start)
    _, peak = peak_rss_gib()
    names = dict(ours='ours' + (' (fast paths off)' if args.plain else ''),
                 authors='authors' + (" (with their scripts' imports)"
                                      if args.authors_imports == 'scripts' else ''))
    for impl in impls:
        print(f'{names[impl]} {args.mode}: {torch.get_num_threads()} threads; step min '
              f'{min(times[impl]):.3f} s, median {np.median(times[impl]):.3f} s over '
              f'{len(times[impl])}; {images_per_step / np.median(times[impl]):.3f} images/s')
    if len(impls) == 1:
        print(f'peak RSS {peak:.2f} GiB (process), {peak - before:+.2f} GiB over the RSS '
              'before the first step')
    else:
        ratios = np.array(times['ours']) / np.array(times['authors'])
        print(f'ours / authors step time, step by step: median {np.median(ratios):.3f} '
              f'(min {ratios.min():.3f}, max {ratios.max():.3f}); memory: one '
              'implementation per process (--impl ours / authors)')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--authors-repo', required=True,
                        help='a clone of https://github.com/Barrett-python/SFC')
    parser.add_argument('--mode', choices=('train', 'infer', 'check'), default='train')
    parser.add_argument('--impl', choices=('ours', 'authors', 'both'), default='ours',
                        help='both: the two in one process, step by step in turn (the time '
                        'ratio of each step; no memory figure)')
    parser.add_argument('--plain', action='store_true',
                        help='ours with the fast paths off (and the optimiser unfused)')
    parser.add_argument('--authors-imports', choices=('network', 'scripts'), default='network',
                        help="an authors' run imports their network only, or also the "
                        "third-party modules their training / make_cam script imports")
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--crop', type=int, default=256)
    parser.add_argument('--size', type=int, nargs=2, default=(375, 500),
                        help='inference image height and width')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.mode == 'check':
        return run_check(args)
    run(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
