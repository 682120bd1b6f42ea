# Copyright (c) mmsfc contributors. All rights reserved.
"""Training-step time and peak memory of a CAM model on the current device.

Runs full optimisation steps (forward at both scales, backward, gradient
clipping, SGD update through the config's optim_wrapper) on random images
with random image-level labels; no weights are downloaded.

Example::

    python tools/benchmark.py configs/sfc/sfc_r50_voc.py --batch-size 20 --crop 512
"""
import argparse
import resource
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark SFCClassifier training steps')
    parser.add_argument('config', help='config file')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='images per step (the reference uses 16 + 4 IBR = 20)')
    parser.add_argument('--crop', type=int, default=512, help='square input side')
    parser.add_argument('--iters', type=int, default=5, help='timed steps')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    parser.add_argument('--amp', action='store_true', help='autocast (CUDA only)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def random_batch(num_fg: int, batch_size: int, crop: int, rng: np.random.Generator):
    """Normalised images ``(B, 3, crop, crop)`` and samples with random labels."""
    inputs = torch.from_numpy(rng.standard_normal((batch_size, 3, crop, crop),
                                                  dtype=np.float32))
    samples = []
    for _ in range(batch_size):
        label = (rng.random(num_fg) < 2 / num_fg).astype(np.float32)
        label[rng.integers(num_fg)] = 1
        samples.append(SegDataSample(metainfo=dict(cls_label=label)))
    return inputs, samples


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.backbone.init_cfg = None  # no weight download
    device = torch.device(args.device)
    model = MODELS.build(cfg.model).to(device)
    model.train()
    num_fg = model.num_classes - 1
    # random data: equal class counts give DC = 1 for any N_IBR / N_iter (which the
    # DistributionCoefficientHook would take from the training loader)
    loss = model.loss_msdw
    loss.n_ibr = 1 if loss.n_ibr is None else loss.n_ibr
    loss.n_iter = 1 if loss.n_iter is None else loss.n_iter
    loss.set_class_counts([1] * num_fg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    rng = np.random.default_rng(args.seed)

    def step():
        inputs, samples = random_batch(num_fg, args.batch_size, args.crop, rng)
        with torch.autocast(device.type, enabled=args.amp):
            losses = model.loss(inputs.to(device), samples)
        optim_wrapper.update_params(sum(losses.values()))

    for _ in range(args.warmup):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device.type == 'cuda':
        peak = f'{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (CUDA, allocated)'
    else:
        peak = f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (process RSS)'
    name = torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'
    print(f'device: {name} ({torch.get_num_threads()} threads), batch {args.batch_size}, '
          f'crop {args.crop}, amp {args.amp}')
    print(f'step time: {np.mean(times):.3f} s mean, {np.min(times):.3f} s min over '
          f'{args.iters} steps; {args.batch_size / np.mean(times):.2f} images/s')
    print(f'peak memory: {peak}')


if __name__ == '__main__':
    main()
