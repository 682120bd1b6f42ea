# Copyright (c) mmsfc contributors. All rights reserved.
from typing import Iterator, List, Optional

import numpy as np
from mmengine.dataset import InfiniteSampler
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler, Sampler


@DATA_SAMPLERS.register_module()
class IBRBatchSampler(BatchSampler):
    """Image-bank re-sampling (IBR, paper §"Image Bank Re-sampling").

    A bank holds one slot per foreground class: the index of the most recent
    image containing that class, in the order batches are drawn. For every
    step, with the ``batch_size`` loader images of that step:

    1. the batch is visited in a random order, and each image is written into
       every slot of its classes (later images overwrite earlier ones, so a
       slot may hold an image of the current batch);
    2. ``num_resampled`` (``N_IBR``) slots are drawn uniformly, with
       replacement, among the **filled** slots, and their images are appended.

    **Batch sizes are totals over all processes.** ``batch_size`` (the
    config's ``train_dataloader.batch_size``) and ``num_resampled`` are the
    images of one optimisation step, 16 + 4 for the authors' setting, for any
    number of processes: each of ``W`` processes gets ``batch_size / W`` loader
    images and ``num_resampled / W`` re-sampled ones, and a ``ValueError``
    names both values when ``W`` does not divide them. With ``W > 1`` the
    sampler must be mmengine's ``InfiniteSampler``: every process rebuilds
    the *global* stream of its seed, so all processes keep the same bank and
    draw the same ``num_resampled`` images, and process ``r`` takes elements
    ``r, r + W, ...`` of the step's loader images (exactly the ones its own
    ``InfiniteSampler`` would yield) and of the draws. One step on ``W``
    processes therefore sees the same 16 + 4 images as on one process.
    ``DistributionCoefficientHook`` reads :attr:`total_resampled` for DC's
    ``N_IBR``. Without a filled slot (before any foreground label was seen)
    nothing is appended.

    Why a batch sampler: the bank depends on the order in which batches are
    seen, which only the sampler knows. It runs in the main process, so the
    bank is exact with any ``num_workers``. Only indices and image-level
    labels (``dataset.get_cat_ids``) are used, never images.

    Deviations from the authors' code, by design:

    - the bank stores indices, and a re-sampled image is **re-loaded and
      re-augmented** by the dataset pipeline (a new random crop), instead of
      storing the crop tensor (which costs ~500 MB for VOC and ~6.8 GB for
      COCO and is copied to the GPU every step);
    - empty slots are never drawn (the authors draw them as all-grey images
      with an all-zero label at the start of training).

    Determinism: the permutations and draws come from a generator seeded by
    ``seed`` (the same on every process); the same seed gives the same
    batches with or without workers. On ``--resume`` mmengine's
    ``IterBasedTrainLoop`` replays the already-trained batches through this
    sampler, so the bank and the remaining schedule are those of an
    uninterrupted run.

    Args:
        sampler (Sampler): Sampler of dataset indices, e.g. ``InfiniteSampler``
            (required with several processes); its ``dataset`` must provide
            ``get_cat_ids(idx)`` (class indices ``1..K``) and
            ``metainfo['classes']`` (background first).
        batch_size (int): Loader images per step over all processes (16 in
            the reference).
        num_resampled (int): ``N_IBR``, re-sampled images per step over all
            processes. Defaults to 4. 0 disables IBR.
        drop_last (bool): Drop the last incomplete batch of a finite sampler.
            Defaults to True, as the reference's loader.
        seed (int, optional): Random seed; None syncs one across processes.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 num_resampled: int = 4,
                 drop_last: bool = True,
                 seed: Optional[int] = None) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size}')
        if not isinstance(num_resampled, int) or num_resampled < 0:
            raise ValueError(f'num_resampled must be an integer >= 0, got {num_resampled}')
        dataset = getattr(sampler, 'dataset', None)
        if dataset is None or not hasattr(dataset, 'get_cat_ids'):
            raise TypeError('IBRBatchSampler needs a sampler whose dataset has get_cat_ids(), '
                            f'got {type(sampler).__name__}')
        rank, world_size = get_dist_info()
        if batch_size % world_size or num_resampled % world_size:
            raise ValueError(
                f'IBRBatchSampler: batch_size={batch_size} and num_resampled={num_resampled} '
                f'are totals over all processes and must both be divisible by the number of '
                f'processes, {world_size}; change the number of processes or '
                'train_dataloader.batch_size / train_dataloader.batch_sampler.num_resampled')
        if world_size > 1 and not isinstance(sampler, InfiniteSampler):
            raise TypeError(f'IBRBatchSampler with {world_size} processes needs an '
                            f'InfiniteSampler (to rebuild the global batch), got '
                            f'{type(sampler).__name__}')
        self.sampler = sampler
        self.rank, self.world_size = rank, world_size
        #: images of one step over all processes
        self.total_batch_size = batch_size
        self.total_resampled = num_resampled
        #: images of one step on this process
        self.batch_size = batch_size // world_size
        self.num_resampled = num_resampled // world_size
        self.drop_last = drop_last
        self.num_slots = len(dataset.metainfo['classes']) - 1
        self._cat_ids = [dataset.get_cat_ids(i) for i in range(len(dataset))]
        self.seed = sync_random_seed() if seed is None else seed
        self._rng = np.random.default_rng(self.seed)
        # bank[c] = index of the latest image with class c + 1, or -1 when empty
        self._bank = np.full(self.num_slots, -1, dtype=np.int64)
        # the loader images of all processes, in step order
        self._stream = sampler._infinite_indices() if world_size > 1 else None

    def resample(self, batch: List[int]) -> List[int]:
        """Update the bank with one step's loader images and draw ``N_IBR``.

        Args:
            batch (list[int]): The step's ``total_batch_size`` loader indices
                (all processes).

        Returns:
            list[int]: ``total_resampled`` indices (all processes), or none
            while no slot is filled.
        """
        for idx in self._rng.permutation(batch):
            for cat in self._cat_ids[idx]:
                self._bank[cat - 1] = idx
        filled = np.flatnonzero(self._bank >= 0)
        if filled.size == 0 or self.total_resampled == 0:
            return []
        slots = self._rng.choice(filled, size=self.total_resampled, replace=True)
        return self._bank[slots].tolist()

    def _share(self, batch: List[int]) -> List[int]:
        """This process's part of one step's indices."""
        return batch[self.rank::self.world_size]

    def __iter__(self) -> Iterator[List[int]]:
        stream = self._stream if self._stream is not None else self.sampler
        batch: List[int] = []
        for idx in stream:
            batch.append(int(idx))
            if len(batch) == self.total_batch_size:
                yield self._share(batch) + self._share(self.resample(batch))
                batch = []
        if batch and not self.drop_last:
            yield self._share(batch) + self._share(self.resample(batch))

    def __len__(self) -> int:
        size = len(self.sampler) if self.world_size == 1 else len(self.sampler.dataset)
        if self.drop_last:
            return size // self.total_batch_size
        return (size + self.total_batch_size - 1) // self.total_batch_size
