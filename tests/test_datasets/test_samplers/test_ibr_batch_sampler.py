# Copyright (c) mmsfc contributors. All rights reserved.
import itertools
import json
import os
import os.path as osp
import sys
from collections import Counter
from unittest.mock import patch

import numpy as np
import pytest
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.runner import Runner

from conftest import REPO_ROOT
from mmsfc.datasets import IBRBatchSampler, SFCVOCDataset
from mmsfc.testing import TOY_CLASSES, run_on_free_port


class LabelOnlyDataset:
    """Image-level labels only: image i holds the classes ``labels[i]``."""

    def __init__(self, labels, num_classes):
        self.labels = labels
        self.metainfo = dict(classes=('background', ) + tuple(f'c{i}' for i in
                                                              range(1, num_classes + 1)))

    def __len__(self):
        return len(self.labels)

    def get_cat_ids(self, idx):
        return list(self.labels[idx])


def chi_square(counts, expected):
    return sum((counts[k] - e) ** 2 / e for k, e in expected.items())


def toy_dataset(root):
    return SFCVOCDataset(
        data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'), metainfo=dict(classes=TOY_CLASSES),
        cls_label_file='cls_labels.npy')


def test_draws_are_uniform_over_banked_classes_not_images():
    # image 0 holds classes 1 and 2, image 1 class 4; classes 3 and 5 never appear
    dataset = LabelOnlyDataset([(1, 2), (4, )], num_classes=5)
    sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=2,
                              num_resampled=5, seed=123)
    counts = Counter()
    for _ in range(2000):
        counts.update(sampler.resample([0, 1]))
    assert set(counts) == {0, 1}
    # uniform over the 3 filled slots: image 0 fills two of them -> p = 2/3
    total = sum(counts.values())
    stat = chi_square(counts, {0: total * 2 / 3, 1: total / 3})
    assert stat < 10.83  # chi-square, 1 degree of freedom, p = 0.001
    # uniform over images (p = 1/2) would be far off
    assert chi_square(counts, {0: total / 2, 1: total / 2}) > 100


def test_each_filled_class_is_drawn_equally_often():
    num_classes = 6
    dataset = LabelOnlyDataset([(c, ) for c in range(1, num_classes + 1)], num_classes)
    sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=6,
                              num_resampled=4, seed=7)
    counts = Counter()
    for _ in range(3000):
        counts.update(sampler.resample(list(range(num_classes))))
    expected = {i: 3000 * 4 / num_classes for i in range(num_classes)}
    assert chi_square(counts, expected) < 20.52  # 5 degrees of freedom, p = 0.001


def test_a_shared_class_keeps_a_random_one_of_the_step():
    """Images of one step are written in random order: either may end in the slot."""
    dataset = LabelOnlyDataset([(1, ), (1, )], num_classes=1)
    sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=2,
                              num_resampled=1, seed=3)
    counts = Counter(sampler.resample([0, 1])[0] for _ in range(2000))
    assert chi_square(counts, {0: 1000, 1: 1000}) < 10.83


def test_bank_keeps_the_latest_and_empty_slots_are_never_drawn(toy_voc):
    dataset = toy_dataset(toy_voc)
    first = dataset.get_cat_ids(0)
    batch_sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=1,
                                    num_resampled=5, seed=0)
    # only the classes of image 0 are filled, so only image 0 can be drawn
    assert batch_sampler.resample([0]) == [0] * 5
    filled = np.flatnonzero(batch_sampler._bank >= 0) + 1
    assert filled.tolist() == sorted(first)
    later = next(i for i in range(1, len(dataset)) if set(dataset.get_cat_ids(i)) & set(first))
    batch_sampler.resample([later])
    shared = sorted(set(dataset.get_cat_ids(later)) & set(first))
    assert all(batch_sampler._bank[c - 1] == later for c in shared)


@pytest.mark.parametrize('num_workers', [0, 2])
def test_loader_batches_equal_the_batch_sampler_with_workers(toy_voc, num_workers):
    dataset = toy_dataset(toy_voc)
    loader = Runner.build_dataloader(dict(
        dataset=dataset, batch_size=4, num_workers=num_workers,
        sampler=dict(type='InfiniteSampler', shuffle=True, seed=3),
        batch_sampler=dict(type='IBRBatchSampler', num_resampled=3, seed=7),
        collate_fn=dict(type='pseudo_collate')), seed=3)
    got = [[osp.basename(path)[:-4] for path in batch['img_path']]
           for batch in itertools.islice(loader, 10)]
    direct = IBRBatchSampler(InfiniteSampler(dataset, shuffle=True, seed=3), batch_size=4,
                             num_resampled=3, seed=7)
    names = [osp.basename(dataset.get_data_info(i)['img_path'])[:-4] for i in range(len(dataset))]
    expected = [[names[i] for i in batch] for batch in itertools.islice(direct, 10)]
    assert got == expected and all(len(batch) == 7 for batch in got)
    # the first 4 of each batch are the sampler's stream, in order
    stream = itertools.islice(iter(InfiniteSampler(dataset, shuffle=True, seed=3)), 40)
    assert [i for batch in itertools.islice(IBRBatchSampler(
        InfiniteSampler(dataset, shuffle=True, seed=3), batch_size=4, num_resampled=3,
        seed=7), 10) for i in batch[:4]] == list(stream)


def batches_of_rank(dataset, rank, world_size, num_batches, batch_size=4, num_resampled=2):
    with patch('mmengine.dataset.sampler.get_dist_info', return_value=(rank, world_size)), \
            patch('mmsfc.datasets.samplers.ibr_batch_sampler.get_dist_info',
                  return_value=(rank, world_size)):
        sampler = InfiniteSampler(dataset, shuffle=True, seed=5)
        own_stream = list(itertools.islice(iter(
            InfiniteSampler(dataset, shuffle=True, seed=5)), num_batches * batch_size))
        batch_sampler = IBRBatchSampler(sampler, batch_size=batch_size,
                                        num_resampled=num_resampled, seed=11)
        return list(itertools.islice(iter(batch_sampler), num_batches)), own_stream


def test_two_processes_split_the_single_process_steps(toy_voc):
    dataset = toy_dataset(toy_voc)
    single, _ = batches_of_rank(dataset, 0, 1, 8)
    ranks = [batches_of_rank(dataset, rank, 2, 8) for rank in range(2)]
    for step, whole in enumerate(single):
        parts = [batches[step] for batches, _ in ranks]
        assert all(len(part) == 2 + 1 for part in parts)
        assert sorted(parts[0][:2] + parts[1][:2]) == sorted(whole[:4])
        assert sorted(parts[0][2:] + parts[1][2:]) == sorted(whole[4:])
    for batches, own_stream in ranks:  # loader images: what the rank's own sampler yields
        assert [i for batch in batches for i in batch[:2]] == own_stream[:16]


def test_totals_must_divide_by_the_processes(toy_voc):
    dataset = toy_dataset(toy_voc)
    with pytest.raises(ValueError, match='batch_size=4 and num_resampled=3.*processes, 2'):
        batches_of_rank(dataset, 0, 2, 1, batch_size=4, num_resampled=3)
    with patch('mmsfc.datasets.samplers.ibr_batch_sampler.get_dist_info',
               return_value=(0, 2)), pytest.raises(TypeError, match='InfiniteSampler'):
        IBRBatchSampler(DefaultSampler(dataset, seed=0), batch_size=4, num_resampled=2, seed=0)


def test_no_foreground_yet_appends_nothing_and_bad_args(toy_voc):
    dataset = toy_dataset(toy_voc)
    batch_sampler = IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=2, seed=0)
    with patch.object(batch_sampler, '_cat_ids', [[] for _ in range(len(dataset))]):
        assert batch_sampler.resample([0, 1]) == []
    with pytest.raises(TypeError, match='get_cat_ids'):
        IBRBatchSampler(InfiniteSampler(list(range(4)), seed=0), batch_size=2)
    with pytest.raises(ValueError, match='batch_size'):
        IBRBatchSampler(InfiniteSampler(dataset, seed=0), batch_size=0)


DIST_SCRIPT = '''
import itertools, json, os, sys
import torch.distributed as dist
from mmengine.dist import all_gather_object, get_rank
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
import mmsfc
from mmsfc.datasets import SFCVOCDataset
from mmsfc.engine import teardown_distributed
from mmsfc.testing import TOY_CLASSES
if 'RANK' in os.environ:
    dist.init_process_group(backend='gloo')
init_default_scope('mmseg')
root, out = sys.argv[1], sys.argv[2]
dataset = SFCVOCDataset(
    data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
    data_prefix=dict(img_path='JPEGImages'), metainfo=dict(classes=TOY_CLASSES),
    cls_label_file='cls_labels.npy', pipeline=[dict(type='LoadImageFromFile'),
    dict(type='PackSegInputs', meta_keys=('img_path', ))])
loader = Runner.build_dataloader(dict(
    dataset=dataset, batch_size=4, num_workers=1,
    sampler=dict(type='InfiniteSampler', shuffle=True, seed=3),
    batch_sampler=dict(type='IBRBatchSampler', num_resampled=2),
    collate_fn=dict(type='pseudo_collate')), seed=3)
steps = iter(loader)
batches = [[os.path.basename(s.img_path) for s in batch['data_samples']]
           for batch in itertools.islice(steps, 6)]
del steps  # stop the loader's worker before the process group goes
gathered = all_gather_object(dict(seed=loader.batch_sampler.seed, batches=batches))
if get_rank() == 0:
    with open(out, 'w') as f:
        json.dump(gathered, f)
teardown_distributed()
'''


@pytest.mark.slow
def test_one_and_two_gloo_processes_see_the_same_steps(toy_voc, tmp_path):
    """torchrun with 1 and 2 CPU processes (gloo): the IBR seed is synced, and per
    step the union of the processes' batches is the one-process batch (the
    authors' 16 + 4 in total, here 4 + 2)."""
    script = tmp_path / 'ibr_steps.py'
    script.write_text(DIST_SCRIPT)
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    dataset = toy_dataset(toy_voc)
    names = [osp.basename(dataset.get_data_info(i)['img_path']) for i in range(len(dataset))]
    for nproc in (1, 2):
        out = tmp_path / f'steps_{nproc}.json'
        result = run_on_free_port(
            lambda port, nproc=nproc, out=out: [
                sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
                str(nproc), '--master_port', str(port), str(script), toy_voc, str(out)],
            cwd=REPO_ROOT, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        with open(out) as f:
            ranks = json.load(f)
        assert len(ranks) == nproc and len({rank['seed'] for rank in ranks}) == 1
        reference = IBRBatchSampler(InfiniteSampler(dataset, shuffle=True, seed=3),
                                    batch_size=4, num_resampled=2, seed=ranks[0]['seed'])
        for step, whole in enumerate(itertools.islice(reference, 6)):
            parts = [rank['batches'][step] for rank in ranks]
            assert all(len(part) == 6 // nproc for part in parts)
            loaded = [name for part in parts for name in part[:4 // nproc]]
            resampled = [name for part in parts for name in part[4 // nproc:]]
            assert sorted(loaded) == sorted(names[i] for i in whole[:4])
            assert sorted(resampled) == sorted(names[i] for i in whole[4:])
