# Copyright (c) mmsfc contributors. All rights reserved.
"""Training-step time and peak memory of a CAM or segmentation model, fast paths on and off.

Runs full optimisation steps (forward, backward, gradient clipping if the
config clips, the update through the config's optim_wrapper) on generated
images (see :func:`random_batch`: coloured blocks, a task the model can
learn); no weights are downloaded. A CAM model (``SFCClassifier``, stage 1)
trains at both scales on their image-level labels; a segmentor (e.g. the
DeepLabV2 of stage 4) on their label maps with a quarter of the pixels
ignored (255), as pseudo labels have; IRN (``SFCIRN``, stage 3) on the same
maps taken at its stride-4 grid. Each variant runs in its own process
(so each has its own peak memory), ``--rounds`` times alternately:

- ``fast``: the model's ``train_cfg`` fast paths (frozen BatchNorms folded;
  CAM model: on CPUs the frozen stages as frozen copies; IRN: its frozen
  backbone as one, TorchScript-frozen on CPUs; channels_last
  inputs with ``--channels-last``) and the config's optimiser (fused);
- ``plain``: every fast path off (the model's ``PLAIN_TRAIN_CFG``, and the
  optimiser without ``fused``);
- ``amp`` (optional): ``fast`` with the forward under autocast in
  ``--amp-dtype`` (bfloat16 by default); on a GPU through the
  ``AmpOptimWrapper`` that ``tools/train.py --amp-dtype`` builds (float16
  with a dynamic loss scale, bfloat16 without one).

Reported per variant: step time (min and median over all timed steps),
images/s at the median, and peak memory: on CUDA the peak allocated by
tensors, on CPU the peak resident memory of the process and its rise over
the resident memory before the first step. Every variant sees the same
batches, so with ``amp`` the loss curves of the two precisions are compared
step by step (``--iters 300`` for a few hundred steps; read after the timing,
so no step waits for them). The batches are generated before the steps, as
many distinct ones as ``--pool-gib`` holds (all of them for small batches;
16 of the reference 20 x 512^2), and the steps cycle through them; each is
copied to the device before its step's timer starts.

How close a step comes to the hardware: after the timing (so neither the
times nor the peak memory include it), each process counts the arithmetic of
its variant's step, forward and backward (at both scales for a CAM model), with
``torch.utils.flop_counter.FlopCounterMode`` (on one image, times the batch:
the count is linear in it; the CPU-only TorchScript copies of the frozen
stages are left out for the count, as the counter cannot see into them), and
times a lone 3 x 3 convolution, forward and backward, in the variant's
precision: the rate this device reaches on the work that dominates the step.
Reported: FLOP per step, the rate achieved at the median step time, its
fraction of the lone convolution's rate and, with ``--peak-tflops
DTYPE=P`` (the device's peak for a precision, e.g. from its data sheet;
float32 for ``fast`` / ``plain``, ``--amp-dtype`` for ``amp``), the floor
``FLOP / P`` and the fraction of it reached, ``floor / step time``.

Examples::

    python tools/benchmark.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        --batch-size 20 --crop 512
    python tools/benchmark.py configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \
        --batch-size 20 --crop 512 --variants fast amp --channels-last --iters 300 \
        --peak-tflops bfloat16=989
    python tools/benchmark.py \
        configs/deeplabv2/deeplabv2_r101-d8_1xb10-20k_voc12aug-321x321_pseudo.py \
        --batch-size 10 --crop 321 --variants fast plain amp --channels-last
    python tools/benchmark.py configs/irn/irn_r50_1xb32-3ep_voc12aug-512x512.py \
        --batch-size 32 --crop 512
"""
import argparse
import json
import subprocess
import sys
import time
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


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
    parser.add_argument('--channels-last', action='store_true',
                        help='the fast variant also feeds channels_last inputs')
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
    model's own ``train_cfg``, except an ``SFCClassifier``'s
    ``freeze_frozen_stages`` and an ``SFCIRN``'s ``fuse_bn``: their
    TorchScript copies (CPU only) call operators the counter cannot see, and
    run the same convolutions as the modules. The parameters' ``.grad`` are
    put back as they were after the count.

    Args:
        model (BaseModel): ``SFCClassifier`` or a segmentor, in training mode.
        inputs (Tensor): A batch ``(N, 3, H, W)`` on the model's device.
        samples (list[SegDataSample]): Their samples with labels.
        autocast_dtype (torch.dtype, optional): Run the forward under
            autocast in this dtype (the backward outside it, as in training).

    Returns:
        int: The FLOP count.
    """
    train_cfg = model.train_cfg
    # switches whose TorchScript copies hide their convolutions from the counter
    hidden = ['fuse_bn'] if hasattr(model, 'edge_head') else ['freeze_frozen_stages']
    saved = {key: train_cfg[key] for key in hidden if key in train_cfg}
    train_cfg.update({key: False for key in saved})
    grads = {param: param.grad for param in model.parameters()}
    try:
        model.zero_grad(set_to_none=True)
        with FlopCounterMode(display=False) as counter:
            with torch.autocast(inputs.device.type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                loss, _ = model.parse_losses(model.loss(inputs, samples))
            loss.backward()  # (autograd.grad clashes with the counter's module hooks)
    finally:
        train_cfg.update(saved)
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
    if args.channels_last and 'channels_last' not in model.PLAIN_TRAIN_CFG:
        raise SystemExit(f'--channels-last: {type(model).__name__} ({args.config}) has no '
                         'channels_last switch; run it without')
    model.train_cfg.update(dict(channels_last=args.channels_last) if fast
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


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.run_variant:
        print(json.dumps(run_variant(args)))
        return
    argv = list(sys.argv[1:] if argv is None else argv)
    results = {variant: [] for variant in args.variants}
    for _ in range(args.rounds):
        for variant in args.variants:
            run = subprocess.run([sys.executable, __file__, *argv, '--run-variant', variant],
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


if __name__ == '__main__':
    main()
