# Copyright (c) mmsfc contributors. All rights reserved.
import itertools
import os.path as osp
from unittest.mock import patch

import numpy as np
import pytest
from mmengine.dataset import InfiniteSampler
from mmengine.runner import Runner

from mmsfc.datasets import IBRBatchSampler, SFCVOCDataset
from mmsfc.testing import TOY_CLASSES


def toy_dataset(root):
    return SFCVOCDataset(
        data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'), metainfo=dict(classes=TOY_CLASSES),
        cls_label_file='cls_labels.npy')


def simulate_ibr(index_stream, cat_ids, num_slots, batch_size, n_ibr, seed, rank, num_batches):
    """Reference §4, written out plainly (with empty slots never drawn)."""
    rng = np.random.default_rng([seed, rank])
    latest = {}  # slot -> dataset index
    batches = []
    for _ in range(num_batches):
        batch = [next(index_stream) for _ in range(batch_size)]
        for idx in rng.permutation(batch):
            for cat in cat_ids[idx]:
                latest[cat - 1] = idx
        filled = sorted(latest)
        draws = rng.choice(np.array(filled), size=n_ibr, replace=True)
        batches.append(batch + [latest[int(slot)] for slot in draws])
    return batches


def reference_stream(dataset, seed, rank, world_size):
    sampler = InfiniteSampler(dataset, shuffle=True, seed=seed)
    sampler.rank, sampler.world_size = rank, world_size
    sampler.indices = sampler._indices_of_rank()
    return iter(sampler)


@pytest.mark.parametrize('num_workers', [0, 2])
def test_batches_match_simulation_with_workers(toy_voc, num_workers):
    dataset = toy_dataset(toy_voc)
    cat_ids = [dataset.get_cat_ids(i) for i in range(len(dataset))]
    loader = Runner.build_dataloader(dict(
        dataset=dataset, batch_size=4, num_workers=num_workers,
        sampler=dict(type='InfiniteSampler', shuffle=True, seed=3),
        batch_sampler=dict(type='IBRBatchSampler', num_resampled=3, seed=7),
        collate_fn=dict(type='pseudo_collate')), seed=3)
    got = [[osp.basename(info)[:-4] for info in batch['img_path']]
           for batch in itertools.islice(loader, 10)]
    expected = simulate_ibr(reference_stream(dataset, 3, 0, 1), cat_ids, 4, 4, 3, 7, 0, 10)
    names = [osp.basename(dataset.get_data_info(i)['img_path'])[:-4] for i in range(len(dataset))]
    assert got == [[names[i] for i in batch] for batch in expected]
    assert all(len(batch) == 7 for batch in got)


def test_appended_images_hold_a_resampled_class_and_two_ranks_are_separate(toy_voc):
    dataset = toy_dataset(toy_voc)
    cat_ids = [dataset.get_cat_ids(i) for i in range(len(dataset))]
    per_rank = []
    for rank in range(2):
        with patch('mmengine.dataset.sampler.get_dist_info', return_value=(rank, 2)), \
                patch('mmsfc.datasets.samplers.ibr_batch_sampler.get_dist_info',
                      return_value=(rank, 2)):
            sampler = InfiniteSampler(dataset, shuffle=True, seed=5)
            batch_sampler = IBRBatchSampler(sampler, batch_size=4, num_resampled=4, seed=11)
            batches = list(itertools.islice(iter(batch_sampler), 8))
        expected = simulate_ibr(reference_stream(dataset, 5, rank, 2), cat_ids, 4, 4, 4, 11,
                                rank, 8)
        assert batches == expected
        seen = set()
        for batch in batches:
            seen.update(batch[:4])
            # every appended image was seen by this rank, at or before this batch
            assert set(batch[4:]) <= seen
        per_rank.append(batches)
    assert per_rank[0] != per_rank[1]
    # within the first epoch (24 images = 3 batches of 4 per rank) the ranks see
    # disjoint images, so each bank is built from its own rank's stream only
    rank0_seen = {i for b in per_rank[0][:3] for i in b[:4]}
    rank1_seen = {i for b in per_rank[1][:3] for i in b[:4]}
    assert len(rank0_seen) == len(rank1_seen) == 12 and not rank0_seen & rank1_seen


def test_empty_slots_never_drawn_and_bank_keeps_latest(toy_voc):
    dataset = toy_dataset(toy_voc)
    first = dataset.get_cat_ids(0)
    batch_sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=1,
                                    num_resampled=5, seed=0)
    appended = batch_sampler.resample([0])
    # only the classes of image 0 are filled, so only image 0 can be drawn
    assert appended == [0] * 5
    filled = np.flatnonzero(batch_sampler._bank >= 0) + 1
    assert filled.tolist() == sorted(first)
    later = next(i for i in range(1, len(dataset)) if set(dataset.get_cat_ids(i)) & set(first))
    batch_sampler.resample([later])
    shared = sorted(set(dataset.get_cat_ids(later)) & set(first))
    assert all(batch_sampler._bank[c - 1] == later for c in shared)


def test_no_foreground_yet_appends_nothing_and_bad_args(toy_voc):
    dataset = toy_dataset(toy_voc)
    batch_sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=2, seed=0)
    with patch.object(batch_sampler, '_cat_ids', [[] for _ in range(len(dataset))]):
        assert batch_sampler.resample([0, 1]) == []
    with pytest.raises(TypeError, match='get_cat_ids'):
        IBRBatchSampler(InfiniteSampler(list(range(4)), seed=0), batch_size=2)
    with pytest.raises(ValueError, match='batch_size'):
        IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=0)
