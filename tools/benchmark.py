# Copyright (c) mmsfc contributors. All rights reserved.
"""Training-step time and peak memory of a CAM model, fast paths on and off.

Runs full optimisation steps (forward at both scales, backward, gradient
clipping, SGD update through the config's optim_wrapper) on random images
with random image-level labels; no weights are downloaded. Each variant runs
in its own process (so each has its own peak memory), ``--rounds`` times
alternately:

- ``fast``: the model's ``train_cfg`` fast paths (frozen BatchNorms folded, on
  CPUs the frozen stages as frozen copies; ``--channels-last`` adds
  channels_last inputs) and the config's optimiser (fused);
- ``plain``: every fast path off (``SFCClassifier.PLAIN_TRAIN_CFG``, and the
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
so no step waits for them).

How close a step comes to the hardware: after the timing (so neither the
times nor the peak memory include it), each process counts the arithmetic of
one step, forward and backward at both scales, with
``torch.utils.flop_counter.FlopCounterMode`` on the plain path (the fast paths
run TorchScript copies whose operators the counter does not see; they do the
same arithmetic or less), and times a lone 3 x 3 convolution in the variant's
precision: the rate this device reaches on the work that dominates the step.
Reported: FLOP per step, the rate achieved at the median step time, its
fraction of the lone convolution's rate and, with ``--peak-tflops P`` (the
device's peak for that precision, e.g. from its data sheet), the floor
``FLOP / P`` and the fraction of it reached, ``floor / step time``.

Examples::

    python tools/benchmark.py configs/sfc/sfc_r50_voc.py --batch-size 20 --crop 512
    python tools/benchmark.py configs/sfc/sfc_r50_voc.py --batch-size 20 --crop 512 \
        --variants fast amp --channels-last --iters 300 --peak-tflops 400
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark SFCClassifier training steps')
    parser.add_argument('config', help='config file')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='images per step (the reference uses 16 + 4 IBR = 20)')
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
    parser.add_argument('--peak-tflops', type=float,
                        help="the device's peak TFLOP/s in the step's precision (its data "
                        'sheet): the floor FLOP / peak and the fraction of it reached')
    parser.add_argument('--run-variant', choices=['fast', 'plain', 'amp'],
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def random_batch(num_fg: int, batch_size: int, crop: int, rng: np.random.Generator):
    """Normalised images ``(B, 3, crop, crop)`` and samples with random labels."""
    from mmseg.structures import SegDataSample
    inputs = torch.from_numpy(rng.standard_normal((batch_size, 3, crop, crop),
                                                  dtype=np.float32))
    samples = []
    for _ in range(batch_size):
        label = (rng.random(num_fg) < 2 / num_fg).astype(np.float32)
        label[rng.integers(num_fg)] = 1
        samples.append(SegDataSample(metainfo=dict(cls_label=label)))
    return inputs, samples


def resident_gib():
    """Current and peak resident memory of this process in GiB (Linux)."""
    fields = {}
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(('VmRSS', 'VmHWM')):
                key, value = line.split(':')
                fields[key] = int(value.split()[0]) / 2**20
    return fields['VmRSS'], fields['VmHWM']


def step_flops(model, optim_wrapper, inputs, samples) -> int:
    """FLOP of one training step's forward and backward, on the plain path.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions,
    matrix products and their backward; 2 FLOP per multiply-add). The fast
    paths are switched off for the count, since their TorchScript copies call
    operators the counter does not know; the gradients are cleared after it.

    Args:
        model (SFCClassifier): In training mode.
        optim_wrapper (OptimWrapper): Its optimiser wrapper (to clear the
            gradients).
        inputs (Tensor): A batch ``(N, 3, H, W)`` on the model's device.
        samples (list[SegDataSample]): Their samples with ``cls_label``.

    Returns:
        int: The FLOP count.
    """
    from torch.utils.flop_counter import FlopCounterMode
    train_cfg = dict(model.train_cfg)
    model.train_cfg.update(model.PLAIN_TRAIN_CFG)
    try:
        with FlopCounterMode(display=False) as counter:
            sum(model.loss(inputs, samples).values()).backward()
    finally:
        model.train_cfg.update(train_cfg)
        optim_wrapper.zero_grad()
    return counter.get_total_flops()


def conv_tflops(device: torch.device, dtype: torch.dtype, channels_last: bool = False,
                iters: int = 10) -> float:
    """TFLOP/s of a lone 3 x 3 convolution, 256 to 256 channels at 64 x 64.

    The batch is 2 on CPUs and 32 elsewhere; the weights and inputs are in
    ``dtype``. Returns the rate at the median of ``iters`` timed calls, after
    two untimed ones (the first counts the FLOP, as :func:`step_flops` does).
    """
    from torch.utils.flop_counter import FlopCounterMode
    batch = 2 if device.type == 'cpu' else 32
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(device, dtype)
    x = torch.randn(batch, 256, 64, 64, device=device, dtype=dtype)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(
            memory_format=torch.channels_last)
    times = []
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            conv(x)
        for i in range(iters + 1):
            start = time.perf_counter()
            conv(x)
            if device.type == 'cuda':
                torch.cuda.synchronize()
            if i >= 1:
                times.append(time.perf_counter() - start)
    return counter.get_total_flops() / float(np.median(times)) / 1e12


def run_variant(args) -> dict:
    """Build the model, time the steps of one variant; returns the figures."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmsfc.engine import enable_amp

    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.backbone.init_cfg = None  # no weight download
    fast = args.run_variant in ('fast', 'amp')
    amp = args.run_variant == 'amp'
    device = torch.device(args.device)
    model = MODELS.build(cfg.model).to(device)
    model.train_cfg.update(dict(channels_last=args.channels_last) if fast
                           else model.PLAIN_TRAIN_CFG)
    model.train()
    num_fg = model.num_classes - 1
    # random data: equal class counts give DC = 1 for any N_IBR / N_iter (which the
    # DistributionCoefficientHook would take from the training loader)
    loss = model.loss_msdw
    loss.n_ibr = 1 if loss.n_ibr is None else loss.n_ibr
    loss.n_iter = 1 if loss.n_iter is None else loss.n_iter
    loss.set_class_counts([1] * num_fg)
    if not fast:
        cfg.optim_wrapper.optimizer.pop('fused', None)
    # on a GPU, amp trains as tools/train.py --amp-dtype does (mmengine's AmpOptimWrapper,
    # which refuses CPUs; there, torch.autocast with the plain wrapper: the same update)
    amp_wrapper = amp and device.type == 'cuda'
    if amp_wrapper:
        enable_amp(cfg.optim_wrapper, args.amp_dtype)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    rng = np.random.default_rng(args.seed)
    batches = [random_batch(num_fg, args.batch_size, args.crop, rng)
               for _ in range(args.warmup + args.iters)]
    dtype = getattr(torch, args.amp_dtype)
    loss_values = []

    def step(inputs, samples):
        with (optim_wrapper.optim_context(model) if amp_wrapper else
              torch.autocast(device.type, dtype=dtype, enabled=amp)):
            losses = model.loss(inputs.to(device, non_blocking=True), samples)
        loss = sum(losses.values())
        optim_wrapper.update_params(loss)
        loss_values.append(loss.detach())

    rss_before, _ = resident_gib()
    for batch in batches[:args.warmup]:
        step(*batch)
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for batch in batches[args.warmup:]:
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
    inputs, samples = batches[0]
    with torch.autocast(device.type, dtype=dtype, enabled=amp):  # the variant's memory
        result['flop'] = step_flops(model, optim_wrapper, inputs.to(device), samples)
    result['conv_tflops'] = conv_tflops(device, dtype if amp else torch.float32,
                                        channels_last=fast and args.channels_last)
    return result


def arithmetic(runs: list, median: float, peak_tflops: float = None) -> str:
    """One line on a variant's FLOP per step, its rate and how near the device it comes."""
    flop = runs[0]['flop']
    achieved = flop / median / 1e12
    conv = float(np.median([run['conv_tflops'] for run in runs]))
    line = (f'{flop / 1e9:.1f} GFLOP a step: {achieved:.3f} TFLOP/s, {achieved / conv:.0%} of '
            f'a lone 3x3 convolution here ({conv:.3f} TFLOP/s)')
    if peak_tflops:
        floor = flop / (peak_tflops * 1e12)
        line += (f'; floor at {peak_tflops:g} TFLOP/s {floor * 1e3:.1f} ms, '
                 f'{floor / median:.1%} of it reached')
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
            out = subprocess.run([sys.executable, __file__, *argv, '--run-variant', variant],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            results[variant].append(json.loads(out.strip().splitlines()[-1]))
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
        print(f'       {arithmetic(runs, medians[variant], args.peak_tflops)}')
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
