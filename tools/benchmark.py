# Copyright (c) mmsfc contributors. All rights reserved.
"""Benchmarks of mmsfc's stages, each fast path against the plain computation.

Three subcommands (``step`` is the default when the first argument is a
config):

- ``step CONFIG``: training-step time, peak memory and arithmetic of a CAM
  model (stage 1), IRN (stage 3) or a segmentor (stage 4); see :func:`run_variant`;
- ``pseudo-labels CONFIG``: the pseudo-label stage (stage 2): multi-scale CAM
  inference, the dense CRF at several process counts and the whole stage;
  see :func:`pseudo_labels`;
- ``loader CONFIG``: the training dataloader alone; see :func:`loader`.

The variants: ``plain`` is every switch off (the model's
``PLAIN_TRAIN_CFG`` / ``PLAIN_TEST_CFG``, and the optimiser without
``fused``); ``fast`` turns on the model's exact switches (``FAST_TRAIN_CFG``
/ ``FAST_TEST_CFG`` where it has them), ``--channels-last`` and any
``--fast-cfg KEY=VALUE``, with the config's optimiser (fused); ``amp``
(step only) is ``fast`` under autocast in ``--amp-dtype`` (on a GPU through
the ``AmpOptimWrapper`` that ``tools/train.py --amp-dtype`` builds).

``step`` runs full optimisation steps (forward, backward, gradient clipping if
the config clips, the update) on generated images (:func:`random_batch`: coloured
blocks, a task the model can learn); no weights are downloaded. Each variant
runs in its own process (its own peak memory), ``--rounds`` times alternately.
Reported per variant: step time (min and median), images/s, peak memory (on
CUDA the peak allocated by tensors, on CPU the peak resident memory and its
rise over the resident memory before the first step), the FLOP of a step
(``torch.utils.flop_counter``) and the rate it reaches against a lone 3 x 3
convolution on this device and, with ``--peak-tflops DTYPE=P``, against the
device's peak. With ``amp`` the loss curves of the two precisions are
compared step by step.

Examples::

    python tools/benchmark.py step configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        --batch-size 20 --crop 512
    python tools/benchmark.py step configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        --batch-size 20 --crop 512 --variants fast amp --channels-last --iters 300 \
        --peak-tflops bfloat16=989
    python tools/benchmark.py step configs/irn/irn_r50_1xb32-3ep_voc12aug-512x512.py \
        --batch-size 32 --crop 512 --fast-cfg fuse_bn=True
    python tools/benchmark.py pseudo-labels \
        configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py --images 16
    python tools/benchmark.py loader configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        --num-workers 8 --batches 50
"""
import argparse
import ast
import json
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def fast_cfg_option(text: str):
    """``KEY=VALUE`` of ``--fast-cfg``: the value as a Python literal (or a string)."""
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'--fast-cfg takes KEY=VALUE, got {text!r}')
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def add_fast_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--channels-last', action='store_true',
                        help='the fast variant also feeds channels_last inputs')
    parser.add_argument('--fast-cfg', nargs='+', default=[], type=fast_cfg_option,
                        metavar='KEY=VALUE',
                        help='further train_cfg (step) / test_cfg (pseudo-labels) entries of '
                        'the fast variant, e.g. fuse_bn=True')


def fast_switches(model, kind: str, args) -> dict:
    """The ``kind`` ('TRAIN' or 'TEST') cfg of the fast variant: plain + exact switches +
    the command line's."""
    cfg = dict(getattr(model, f'PLAIN_{kind}_CFG'))
    cfg.update(getattr(model, f'FAST_{kind}_CFG', {}))
    if args.channels_last:
        if 'channels_last' not in cfg:
            raise SystemExit(f'--channels-last: {type(model).__name__} ({args.config}) has no '
                             'channels_last switch; run it without')
        cfg['channels_last'] = True
    cfg.update(dict(args.fast_cfg))
    return cfg


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark training steps')
    parser.add_argument('config', help='config file')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='images per step (the references: 16 + 4 IBR = 20 for SFC, '
                        '10 for DeepLabV2)')
    parser.add_argument('--crop', type=int, default=512, help='square input side')
    parser.add_argument('--iters', type=int, default=5, help='timed steps per process')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    parser.add_argument('--rounds', type=int, default=1,
                        help='processes per variant, run alternately')
    parser.add_argument('--variants', nargs='+', default=['fast', 'plain'],
                        choices=['fast', 'plain', 'amp'])
    add_fast_arguments(parser)
    parser.add_argument('--amp-dtype', default='bfloat16', choices=['bfloat16', 'float16'],
                        help='autocast dtype of the amp variant')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--pool-gib', type=float, default=1.0,
                        help='generated input images held at most, in GiB (on the device '
                        'that trains): the steps cycle through the batches that fit, '
                        'at least one (20 x 512^2: 16 batches a GiB)')
    parser.add_argument('--peak-tflops', nargs='+', default=[], metavar='DTYPE=TFLOPS',
                        help="the device's peak TFLOP/s per precision (its data sheet), e.g. "
                        'bfloat16=989 float32=67: the floor FLOP / peak of the variants in '
                        'that precision and the fraction of it reached')
    parser.add_argument('--run-variant', choices=['fast', 'plain', 'amp'],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    peaks = {}
    for item in args.peak_tflops:
        dtype, _, text = item.partition('=')
        try:
            value = float(text)
        except ValueError:
            value = float('nan')
        if dtype not in ('float32', 'bfloat16', 'float16') or not value > 0:
            parser.error(f'--peak-tflops takes DTYPE=TFLOPS with DTYPE float32, bfloat16 or '
                         f'float16 and TFLOPS > 0, got {item!r}')
        peaks[dtype] = value
    args.peak_tflops = peaks
    if not args.pool_gib > 0:
        parser.error(f'--pool-gib takes a size in GiB > 0, got {args.pool_gib}')
    return args


def random_batch(num_fg: int, batch_size: int, crop: int, rng: np.random.Generator,
                 label_maps: bool = False):
    """Normalised images ``(B, 3, crop, crop)`` and samples, a learnable task.

    Each image is a grid of square blocks (a side of ``crop // 8``, at least
    4 px), each block of one class: the background (0) or one of the image's
    1 to 3 foreground classes (each in at least one block). A block is its
    class's colour plus Gaussian noise; the colours are fixed (the same in
    every batch and run), so the losses can fall, and the precisions' loss
    curves say something. The samples carry image-level
    labels ``cls_label`` over the ``num_fg`` foreground classes or, with
    ``label_maps``, the block labels as ``gt_sem_seg`` ``(1, crop, crop)``
    with the top quarter ignored (255), as pseudo labels leave pixels.
    """
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    palette = np.random.default_rng(0).standard_normal((num_fg + 1, 3)).astype(np.float32)
    block = max(crop // 8, 4)
    grid = -(-crop // block)
    inputs = np.empty((batch_size, 3, crop, crop), dtype=np.float32)
    samples = []
    for i in range(batch_size):
        classes = rng.choice(num_fg, size=min(int(rng.integers(1, 4)), num_fg),
                             replace=False) + 1
        blocks = rng.choice(np.concatenate([[0], classes]), size=grid * grid)
        blocks[rng.choice(grid * grid, size=len(classes), replace=False)] = classes
        label = np.kron(blocks.reshape(grid, grid),
                        np.ones((block, block), dtype=np.int64))[:crop, :crop]
        inputs[i] = palette[label].transpose(2, 0, 1) + 0.5 * rng.standard_normal(
            (3, crop, crop), dtype=np.float32)
        if label_maps:
            label[:crop // 4] = 255
            shape = (crop, crop)
            samples.append(SegDataSample(
                gt_sem_seg=PixelData(data=torch.from_numpy(label[None])),
                metainfo=dict(img_shape=shape, pad_shape=shape, ori_shape=shape)))
        else:
            cls_label = np.zeros(num_fg, dtype=np.float32)
            cls_label[classes - 1] = 1
            samples.append(SegDataSample(metainfo=dict(cls_label=cls_label)))
    return torch.from_numpy(inputs), samples


def batch_pool(num_fg: int, batch_size: int, crop: int, steps: int, max_gib: float,
               rng: np.random.Generator, label_maps: bool = False) -> list:
    """The distinct batches of a run of ``steps`` steps; step ``i`` takes batch ``i % len``.

    One :func:`random_batch` per step, in order, as long as their images
    ``(B, 3, crop, crop)`` in float32 fit in ``max_gib``; beyond, as many
    as fit (at least one), cycled. A reference SFC batch (20 x 512^2) is
    63 MB and takes about half a second to generate on one core, so a few
    hundred distinct ones would take minutes and tens of GB; small batches
    (4 x 128^2: 0.8 MB) stay distinct over thousands of steps.
    """
    per_batch = batch_size * 3 * crop * crop * 4
    count = max(1, min(steps, int(max_gib * 2**30 // per_batch)))
    return [random_batch(num_fg, batch_size, crop, rng, label_maps=label_maps)
            for _ in range(count)]


def resident_gib():
    """Current and peak resident memory of this process in GiB (Linux)."""
    fields = {}
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(('VmRSS', 'VmHWM')):
                key, value = line.split(':')
                fields[key] = int(value.split()[0]) / 2**20
    return fields['VmRSS'], fields['VmHWM']


def step_flops(model, inputs: torch.Tensor, samples: list,
               autocast_dtype: Optional[torch.dtype] = None) -> int:
    """FLOP of one training step's forward and backward, the model's state untouched.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions,
    matrix products and their backward; 2 FLOP per multiply-add) on the
    model's own ``train_cfg``. The parameters' ``.grad`` are put back as they
    were after the count.

    Args:
        model (BaseModel): ``SFCClassifier`` or a segmentor, in training mode.
        inputs (Tensor): A batch ``(N, 3, H, W)`` on the model's device.
        samples (list[SegDataSample]): Their samples with labels.
        autocast_dtype (torch.dtype, optional): Run the forward under
            autocast in this dtype (the backward outside it, as in training).

    Returns:
        int: The FLOP count.
    """
    grads = {param: param.grad for param in model.parameters()}
    try:
        model.zero_grad(set_to_none=True)
        with FlopCounterMode(display=False) as counter:
            with torch.autocast(inputs.device.type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                loss, _ = model.parse_losses(model.loss(inputs, samples))
            loss.backward()  # (autograd.grad clashes with the counter's module hooks)
    finally:
        for param, grad in grads.items():
            param.grad = grad
    return counter.get_total_flops()


def conv_tflops(device: torch.device, dtype: torch.dtype, channels_last: bool = False,
                iters: int = 5, repeats: int = 3) -> float:
    """TFLOP/s of a lone 3 x 3 convolution's forward and backward.

    256 to 256 channels at 64 x 64, a batch of 2 on CPUs and 32 elsewhere,
    weights and inputs in ``dtype``; the gradients of the input and the
    weight, as a trainable convolution inside the network has. ``repeats``
    times, ``iters`` calls are timed together (one device sync at the end),
    after one untimed call that counts the FLOP; returns the median rate.
    """
    batch = 2 if device.type == 'cpu' else 32
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    weight, x = (torch.randn(*shape, device=device, dtype=dtype).contiguous(
        memory_format=memory_format).requires_grad_()
        for shape in ((256, 256, 3, 3), (batch, 256, 64, 64)))
    grad = torch.randn_like(x)

    def call():
        torch.autograd.grad(F.conv2d(x, weight, padding=1), (x, weight), grad)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    with FlopCounterMode(display=False) as counter:
        call()
    rates = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            call()
        sync()
        rates.append(counter.get_total_flops() * iters / (time.perf_counter() - start))
    return float(np.median(rates)) / 1e12


def run_variant(args) -> dict:
    """Build the model, time the steps of one variant; returns the figures."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS

    from mmsfc.engine import enable_amp

    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.backbone.init_cfg = None  # no weight download
    fast = args.run_variant in ('fast', 'amp')
    amp = args.run_variant == 'amp'
    device = torch.device(args.device)
    # as the Runner sets up training (mmseg's default runtime turns it on): on a GPU, cuDNN
    # picks each convolution's fastest algorithm in the warm-up steps
    torch.backends.cudnn.benchmark = bool(cfg.get('env_cfg', {}).get('cudnn_benchmark', False))
    model = MODELS.build(cfg.model).to(device)
    model.train_cfg.update(fast_switches(model, 'TRAIN', args) if fast
                           else model.PLAIN_TRAIN_CFG)
    irn = hasattr(model, 'edge_head')  # stage 3: labels on its stride-4 grid
    segmentor = irn or hasattr(model, 'decode_head')  # else a CAM model (SFCClassifier)
    if irn:
        num_fg = 20  # any: IRN learns which neighbours share a label
    elif segmentor:
        num_fg = model.decode_head.num_classes - 1
    else:
        num_fg = model.num_classes - 1
        # generated data: equal class counts give DC = 1 for any N_IBR / N_iter (which the
        # DistributionCoefficientHook would take from the training loader)
        loss = model.loss_msdw
        loss.n_ibr = 1 if loss.n_ibr is None else loss.n_ibr
        loss.n_iter = 1 if loss.n_iter is None else loss.n_iter
        loss.set_class_counts([1] * num_fg)
    model.train()
    if not fast:
        cfg.optim_wrapper.optimizer.pop('fused', None)
    # on a GPU, amp trains as tools/train.py --amp-dtype does (mmengine's AmpOptimWrapper,
    # which refuses CPUs; there, torch.autocast with the plain wrapper: the same update)
    amp_wrapper = amp and device.type == 'cuda'
    if amp_wrapper:
        enable_amp(cfg.optim_wrapper, args.amp_dtype)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    rng = np.random.default_rng(args.seed)
    pool = batch_pool(num_fg, args.batch_size, args.crop, args.warmup + args.iters,
                      args.pool_gib, rng, label_maps=segmentor)
    if irn:  # as SFCDownscaleSegMap packs them (nearest, x 1/4)
        for _, samples in pool:
            for sample in samples:
                sample.gt_sem_seg = PixelData(data=sample.gt_sem_seg.data[:, ::4, ::4])
    batches = [pool[i % len(pool)] for i in range(args.warmup + args.iters)]
    dtype = getattr(torch, args.amp_dtype)
    loss_values = []

    def on_device(inputs, samples):
        """A batch on the training device: copied before its step's timer starts, one
        batch at a time (a step's time is the model's, its memory one batch's)."""
        batch = inputs.to(device), [sample.to(device) for sample in samples]
        if device.type == 'cuda':
            torch.cuda.synchronize()
        return batch

    def step(inputs, samples):
        with (optim_wrapper.optim_context(model) if amp_wrapper else
              torch.autocast(device.type, dtype=dtype, enabled=amp)):
            losses = model.loss(inputs, samples)
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)
        loss_values.append(loss.detach())

    rss_before, _ = resident_gib()
    for batch in batches[:args.warmup]:
        step(*on_device(*batch))
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for batch in batches[args.warmup:]:
        batch = on_device(*batch)
        start = time.perf_counter()
        step(*batch)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    result = dict(times=times, losses=[float(loss) for loss in loss_values])
    if device.type == 'cuda':
        result['peak_gib'] = torch.cuda.max_memory_allocated() / 2**30
        result['device'] = torch.cuda.get_device_name()
    else:
        _, peak = resident_gib()
        result.update(peak_gib=peak, rise_gib=peak - rss_before, device='CPU')
    # after the figures above: the arithmetic of a step and the device's convolution rate
    # (one image, times the batch: linear in it, and the least extra memory)
    inputs, samples = on_device(batches[0][0][:1], batches[0][1][:1])
    result['flop'] = args.batch_size * step_flops(model, inputs, samples,
                                                  dtype if amp else None)
    result['dtype'] = args.amp_dtype if amp else 'float32'
    result['conv_tflops'] = conv_tflops(device, dtype if amp else torch.float32,
                                        channels_last=fast and args.channels_last)
    return result


def hardware_line(runs: list, median: float, peak_tflops: Optional[float] = None) -> str:
    """A variant's FLOP per step, its rate, and how near the device's rates it comes.

    Args:
        runs (list[dict]): The variant's process results (``flop``,
            ``conv_tflops``, ``dtype``).
        median (float): Its median step time, seconds.
        peak_tflops (float, optional): The device's peak in the variant's
            precision, for the floor.
    """
    flop = runs[0]['flop']
    achieved = flop / median / 1e12
    conv = float(np.median([run['conv_tflops'] for run in runs]))
    line = (f'{flop / 1e9:.1f} GFLOP a step: {achieved:.3f} TFLOP/s, {achieved / conv:.0%} of '
            f'a lone 3x3 convolution here ({conv:.3f} TFLOP/s, {runs[0]["dtype"]})')
    if peak_tflops:
        floor = flop / (peak_tflops * 1e12)
        line += (f'; floor at the {peak_tflops:g} TFLOP/s peak given for {runs[0]["dtype"]} '
                 f'{floor * 1e3:.1f} ms, {floor / median:.1%} of it reached')
    return line


def step(argv: List[str]) -> None:
    """The ``step`` subcommand: each variant in its own process."""
    args = parse_args(argv)
    if args.run_variant:
        print(json.dumps(run_variant(args)))
        return
    results = {variant: [] for variant in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            run = subprocess.run([sys.executable, __file__, 'step', *argv,
                                  '--run-variant', variant],
                                 stdout=subprocess.PIPE, text=True)
            if run.returncode:  # its own error is on stderr already
                raise SystemExit(f'benchmark.py: the {variant} variant failed (exit code '
                                 f'{run.returncode})')
            results[variant].append(json.loads(run.stdout.strip().splitlines()[-1]))
    first = next(iter(results.values()))[0]
    print(f'device: {first["device"]} ({torch.get_num_threads()} threads), batch '
          f'{args.batch_size}, crop {args.crop}, '
          f'{args.rounds} process(es) x {args.iters} timed steps per variant')
    medians = {}
    for variant, runs in results.items():
        times = [t for run in runs for t in run['times']]
        medians[variant] = float(np.median(times))
        peak = max(run['peak_gib'] for run in runs)
        memory = (f'peak {peak:.2f} GiB allocated' if 'rise_gib' not in runs[0] else
                  f'peak RSS {peak:.2f} GiB (process), '
                  f'+{max(run["rise_gib"] for run in runs):.2f} GiB over the RSS before '
                  'the first step')
        name = f'amp ({args.amp_dtype})' if variant == 'amp' else variant
        print(f'{name:>5}: step {min(times):.3f} s min, {medians[variant]:.3f} s median; '
              f'{args.batch_size / medians[variant]:.2f} images/s; {memory}')
        peak_tflops = args.peak_tflops.get(runs[0]['dtype'])
        print(f'       {hardware_line(runs, medians[variant], peak_tflops)}')
    for variant in ('plain', 'amp'):
        if 'fast' in medians and variant in medians:
            print(f'fast / {variant} step time (medians): '
                  f'{medians["fast"] / medians[variant]:.2f}')
    if 'amp' in results and 'fast' in results:
        full = np.array(results['fast'][0]['losses'])
        low = np.array(results['amp'][0]['losses'])
        tail = max(len(full) // 10, 1)
        print(f'loss curve, {args.amp_dtype} against float32 over {len(full)} steps (warm-up '
              f'included): max |difference| {np.abs(low - full).max():.4f}, mean of the last '
              f'{tail} steps {low[-tail:].mean():.4f} vs {full[-tail:].mean():.4f}')
        for i in np.linspace(0, len(full) - 1, min(len(full), 10)).astype(int):
            print(f'  step {i + 1}: float32 {full[i]:.4f}, {args.amp_dtype} {low[i]:.4f}')



# ------------------------------------------------------------- pseudo labels
def crf_process_counts(requested: Optional[List[int]], images: int, cores: int) -> List[int]:
    """The CRF process counts to time: 1 and ``requested``, by default 2 and
    ``cores``, none of these above ``images`` (a pool's start-up would
    dominate its row) or ``cores``."""
    default = {min(count, cores, images) for count in (2, cores)}
    return sorted({1, *(requested or default)})


def processes(count: int) -> str:
    return f'{count} process' + ('es' if count > 1 else '')


def pseudo_labels(argv: List[str]) -> None:
    """The ``pseudo-labels`` subcommand: images/s of stage 2 on generated VOC-sized images.

    - multi-scale + flip CAM inference (a randomly initialised model of CONFIG
      on ``--device``), each of ``--variants``, alternately ``--rounds`` times,
      with the peak memory of the whole run (CUDA: allocated by tensors);
    - with ``--crf``, the two-pass dense CRF with 1 process and each
      ``--nproc`` count (by default 2 and all usable cores, at most
      ``--images``), and the whole stage (inference, CRF, files; no scoring)
      with the CRF overlapped with inference and without.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmsfc.engine import PseudoLabelGenerator
    from mmsfc.engine.stage_files import usable_cores
    from mmsfc.testing import TOY_CLASSES, generate_toy_voc

    parser = argparse.ArgumentParser(prog='benchmark.py pseudo-labels',
                                     description=pseudo_labels.__doc__.split('\n')[0])
    parser.add_argument('config', help='CAM model config (random weights are used)')
    parser.add_argument('--images', type=int, default=8, help='images to process')
    parser.add_argument('--size', type=int, nargs=2, default=(375, 500),
                        help='range of image sides (VOC images are up to 500 px)')
    parser.add_argument('--variants', nargs='+', default=['fast', 'plain'],
                        choices=['fast', 'plain'])
    parser.add_argument('--rounds', type=int, default=1,
                        help='timed inference passes per variant, alternately')
    parser.add_argument('--crf', action='store_true', help='also time the CRF and the stage')
    parser.add_argument('--nproc', type=int, nargs='+',
                        help='CRF process counts to time (1 is always timed)')
    add_fast_arguments(parser)
    parser.add_argument('--backbone-autocast', choices=['bfloat16', 'float16'],
                        help='the fast variant runs the backbone under autocast (changes '
                        'the maps slightly)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.nproc or ()):
        parser.error(f'--nproc takes counts of 1 or more, got {args.nproc}')
    counts = crf_process_counts(args.nproc, args.images, usable_cores())

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.backbone.init_cfg = None
    cfg.model.num_classes = len(TOY_CLASSES)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device)
    cuda = args.device.startswith('cuda')
    variant_cfgs = dict(plain=model.PLAIN_TEST_CFG, fast=fast_switches(model, 'TEST', args))
    if args.backbone_autocast:
        variant_cfgs['fast']['backbone_autocast'] = args.backbone_autocast
    timings = {variant: [] for variant in args.variants}
    with tempfile.TemporaryDirectory() as root:
        generate_toy_voc(root, dict(train_aug=args.images, train=0, val=0),
                         size_range=tuple(args.size))
        pipeline = [dict(type='LoadImageFromFile'),
                    dict(type='PackSegInputs', meta_keys=('img_path', 'ori_shape', 'img_shape',
                                                           'cls_label'))]
        dataloader = dict(num_workers=0, dataset=dict(
            type='SFCVOCDataset', data_root=root, metainfo=dict(classes=TOY_CLASSES),
            ann_file='ImageSets/Segmentation/train_aug.txt', cls_label_file='cls_labels.npy',
            data_prefix=dict(img_path='JPEGImages'), pipeline=pipeline))
        generator = PseudoLabelGenerator(osp.join(root, 'out'), dataloader, evaluate=False)
        generator.overlap_crf = False
        dataset = generator._build_dataset()
        generator._take_rule_from(model)  # bg_offset / fg_scale of the model's test_cfg
        palette = dataset.metainfo['palette']
        todo = list(range(len(dataset)))
        model.test_cfg.update(variant_cfgs[args.variants[0]])
        generator._infer(model, dataset, todo[:1], palette)  # warm-up
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        for _ in range(args.rounds):
            for variant in args.variants:
                model.test_cfg.update(variant_cfgs[variant])
                start = time.perf_counter()
                generator._infer(model, dataset, todo, palette)
                if cuda:
                    torch.cuda.synchronize()
                timings[variant].append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else resident_gib()[1]
        if args.crf:
            ids = [osp.splitext(osp.basename(dataset.get_data_info(i)['img_path']))[0]
                   for i in todo]
            for nproc in counts:
                generator.nproc = nproc
                generator.label_dir = osp.join(root, f'labels{nproc}')
                start = time.perf_counter()
                generator._run_crf(dataset, ids, palette)
                timings[f'crf{nproc}'] = time.perf_counter() - start
            for overlap in (True, False):
                whole = PseudoLabelGenerator(osp.join(root, f'whole{overlap}'), dataloader,
                                             evaluate=False, nproc=counts[-1])
                whole.overlap_crf = overlap
                start = time.perf_counter()
                whole.run(model)
                timings[f'whole{overlap}'] = time.perf_counter() - start
    n = args.images
    device = torch.cuda.get_device_name() if cuda else 'CPU'
    print(f'device: {device} ({torch.get_num_threads()} threads); {n} images, sides '
          f'{args.size[0]}-{args.size[1]} px; scales {model.test_cfg["scales"]} + flip')
    for variant in args.variants:
        times = timings[variant]
        print(f'CAM inference, {variant} path: {n / np.median(times):.3f} images/s (median of '
              f'{len(times)}; best {n / min(times):.3f})')
    print(f'peak memory of the inference: {peak:.2f} GiB '
          f'({"allocated" if cuda else "resident, process"})')
    if len(args.variants) == 2:
        print(f'fast / plain inference time: '
              f'{np.median(timings["fast"]) / np.median(timings["plain"]):.2f}')
    if args.crf:
        for nproc in counts:
            crf = timings[f'crf{nproc}']
            speed_up = f' ({timings["crf1"] / crf:.2f}x 1 process)' if nproc > 1 else ''
            print(f'CRF, {processes(nproc)}: {n / crf:.2f} images/s{speed_up}')
        print(f'whole stage ({processes(counts[-1])} for the CRF): '
              f'{n / timings["wholeTrue"]:.2f} images/s '
              f'with the CRF overlapped, {n / timings["wholeFalse"]:.2f} images/s after inference')


# --------------------------------------------------------------------- loader
def loader(argv: List[str]) -> None:
    """The ``loader`` subcommand: images/s of a CAM config's training dataloader alone.

    Builds the config's ``train_dataloader`` (sampler, ``IBRBatchSampler``,
    pipeline, workers) on generated VOC-sized images; the loader keeps up with
    training when it is faster than the step's images/s. The image bank
    re-decodes its images, so each batch costs ``batch_size + num_resampled``
    decodes.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmsfc  # noqa: F401  (registration)
    from mmsfc.testing import TOY_CLASSES, generate_toy_voc

    parser = argparse.ArgumentParser(prog='benchmark.py loader',
                                     description=loader.__doc__.split('\n')[0])
    parser.add_argument('config', help='CAM config whose train_dataloader is timed')
    parser.add_argument('--images', type=int, default=64, help='generated images')
    parser.add_argument('--size', type=int, nargs=2, default=(375, 500),
                        help='range of image sides (VOC images are up to 500 px)')
    parser.add_argument('--batches', type=int, default=20, help='timed batches')
    parser.add_argument('--warmup', type=int, default=3, help='untimed batches first')
    parser.add_argument('--num-workers', type=int, help="override the config's num_workers")
    args = parser.parse_args(argv)

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    loader_cfg = cfg.train_dataloader
    with tempfile.TemporaryDirectory() as root:
        generate_toy_voc(root, dict(train_aug=args.images, train=0, val=0),
                         size_range=tuple(args.size))
        loader_cfg.dataset.update(data_root=root, metainfo=dict(classes=TOY_CLASSES),
                                  ann_file='ImageSets/Segmentation/train_aug.txt',
                                  cls_label_file='cls_labels.npy')
        if args.num_workers is not None:
            loader_cfg.num_workers = args.num_workers
            loader_cfg.persistent_workers = args.num_workers > 0
        batches = iter(Runner.build_dataloader(loader_cfg, seed=0))
        for _ in range(args.warmup):
            next(batches)
        images = 0
        start = time.perf_counter()
        for _ in range(args.batches):
            images += len(next(batches)['inputs'])
        elapsed = time.perf_counter() - start
    print(f'train dataloader of {args.config}: {loader_cfg.num_workers} workers, '
          f'{images / args.batches:.0f} images per batch, sides {args.size[0]}-{args.size[1]} '
          f'px: {images / elapsed:.1f} images/s ({elapsed / args.batches:.3f} s per batch)')


SUBCOMMANDS = dict(step=step, loader=loader)
SUBCOMMANDS['pseudo-labels'] = pseudo_labels


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        SUBCOMMANDS[argv[0]](argv[1:])
    elif argv and argv[0] in ('-h', '--help'):
        print(__doc__)
    else:  # a config first: the step benchmark
        step(argv)


if __name__ == '__main__':
    main()
