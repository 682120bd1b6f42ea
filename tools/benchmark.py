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
  ``--amp-dtype`` (bfloat16 by default).

Reported per variant: step time (min and median over all timed steps),
images/s at the median, and peak memory: on CUDA the peak allocated by
tensors, on CPU the peak resident memory of the process and its rise over
the resident memory before the first step. Every variant sees the same
batches, so with ``amp`` the loss curves of the two precisions are compared
step by step (``--iters 300`` for a few hundred steps; read after the timing,
so no step waits for them).

Examples::

    python tools/benchmark.py configs/sfc/sfc_r50_voc.py --batch-size 20 --crop 512
    python tools/benchmark.py configs/sfc/sfc_r50_voc.py --batch-size 20 --crop 512 \
        --variants fast amp --channels-last --iters 300
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


def run_variant(args) -> dict:
    """Build the model, time the steps of one variant; returns the figures."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmsfc  # noqa: F401  (registration)

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
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    rng = np.random.default_rng(args.seed)
    batches = [random_batch(num_fg, args.batch_size, args.crop, rng)
               for _ in range(args.warmup + args.iters)]
    dtype = getattr(torch, args.amp_dtype)
    loss_values = []

    def step(inputs, samples):
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
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
    return result


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
