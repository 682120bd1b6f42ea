# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Iterator, List, Optional

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler, Sampler


@DATA_SAMPLERS.register_module()
class IBRBatchSampler(BatchSampler):
    """Image-bank re-sampling (IBR, paper §"Image Bank Re-sampling", reference §4).

    A bank holds one slot per foreground class: the index of the most recent
    image containing that class, in the order batches are drawn. For every
    batch of ``batch_size`` indices from ``sampler``:

    1. the batch is visited in a random order, and each image is written into
       every slot of its classes (later images overwrite earlier ones, so a
       slot may hold an image of the current batch);
    2. ``num_resampled`` (``N_IBR``) slots are drawn uniformly, with
       replacement, among the **filled** slots, and their images are appended.

    The batch therefore holds ``batch_size + num_resampled`` indices (fewer
    only while no slot is filled, i.e. before any foreground label was seen).

    Why a batch sampler: the bank depends on the order in which batches are
    seen, which only the sampler knows. The batch sampler runs in the main
    process, so the bank is exact with any ``num_workers``; under DDP each
    rank has its own sampler stream and hence its own bank, as the authors'
    single-process bank would see on each GPU. Only indices and image-level
    labels (``dataset.get_cat_ids``) are used, never images.

    Deviations from the authors' code, by design:

    - the bank stores indices, and a re-sampled image is **re-loaded and
      re-augmented** by the dataset pipeline (a new random crop), instead of
      storing the crop tensor (which costs ~500 MB for VOC and ~6.8 GB for
      COCO and is copied to the GPU every step);
    - empty slots are never drawn (the authors draw them as all-grey images
      with an all-zero label at the start of training).

    Determinism: the permutations and draws come from a generator seeded by
    ``(seed, rank)``; the same seed gives the same batches with or without
    workers. On ``--resume`` mmengine's ``IterBasedTrainLoop`` replays the
    already-trained batches through this sampler, so the bank and the
    remaining schedule are those of an uninterrupted run.

    Args:
        sampler (Sampler): Sampler of dataset indices, e.g. ``InfiniteSampler``;
            its ``dataset`` must provide ``get_cat_ids(idx)`` (class indices
            ``1..K``) and ``metainfo['classes']`` (background first).
        batch_size (int): Images drawn from ``sampler`` per batch (16 in the
            reference).
        num_resampled (int): ``N_IBR``, images appended per batch. Defaults to 4.
        drop_last (bool): Drop the last incomplete batch of a finite sampler.
            Defaults to True, as the reference's loader.
        seed (int, optional): Random seed; None syncs one across ranks.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 num_resampled: int = 4,
                 drop_last: bool = True,
                 seed: Optional[int] = None) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size}')
        if num_resampled < 0:
            raise ValueError(f'num_resampled must be >= 0, got {num_resampled}')
        dataset = getattr(sampler, 'dataset', None)
        if dataset is None or not hasattr(dataset, 'get_cat_ids'):
            raise TypeError('IBRBatchSampler needs a sampler whose dataset has get_cat_ids(), '
                            f'got {type(sampler).__name__}')
        self.sampler = sampler
        self.batch_size = batch_size
        self.num_resampled = num_resampled
        self.drop_last = drop_last
        self.num_slots = len(dataset.metainfo['classes']) - 1
        self._cat_ids = [dataset.get_cat_ids(i) for i in range(len(dataset))]
        rank, _ = get_dist_info()
        self.seed = sync_random_seed() if seed is None else seed
        self._rng = np.random.default_rng([self.seed, rank])
        # bank[c] = index of the latest image with class c + 1, or -1 when empty
        self._bank = np.full(self.num_slots, -1, dtype=np.int64)

    def resample(self, batch: List[int]) -> List[int]:
        """Update the bank with ``batch`` and draw the indices to append."""
        for idx in self._rng.permutation(batch):
            for cat in self._cat_ids[idx]:
                self._bank[cat - 1] = idx
        filled = np.flatnonzero(self._bank >= 0)
        if filled.size == 0 or self.num_resampled == 0:
            return []
        slots = self._rng.choice(filled, size=self.num_resampled, replace=True)
        return self._bank[slots].tolist()

    def __iter__(self) -> Iterator[List[int]]:
        batch: List[int] = []
        for idx in self.sampler:
            batch.append(int(idx))
            if len(batch) == self.batch_size:
                yield batch + self.resample(batch)
                batch = []
        if batch and not self.drop_last:
            yield batch + self.resample(batch)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
