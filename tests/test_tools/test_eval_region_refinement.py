# Copyright (c) mmsfc contributors. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from conftest import load_tool
from mmsfc.postprocess import save_label_png, save_region_map

PALETTE = [[0, 0, 0], [128, 0, 0]]


def test_edge_band():
    tool = load_tool('analysis/eval_region_refinement')
    gt = np.zeros((7, 7), np.uint8)
    gt[:, 4:] = 1
    band = tool.edge_band(gt, 1)
    assert band[:, 3:5].all() and not band[:, :3].any() and not band[:, 5:].any()
    band = tool.edge_band(gt, 2)
    assert band[:, 2:6].all() and not band[:, :2].any() and not band[:, 6:].any()


def test_refinement_to_the_true_regions_scores_higher(tmp_path):
    """Labels that miss the object's rim; regions = the true segments."""
    tool = load_tool('analysis/eval_region_refinement')
    dirs = {name: tmp_path / name for name in ('labels', 'img', 'gt', 'regions')}
    for d in dirs.values():
        d.mkdir()
    for img_id in ('a', 'b'):
        gt = np.zeros((16, 16), np.uint8)
        gt[3:13, 3:13] = 1
        label = np.zeros_like(gt)
        label[4:12, 4:12] = 1  # 64 of the 100 object pixels: a majority of the region
        label[3, 3:13] = 255
        save_label_png(str(dirs['gt'] / f'{img_id}.png'), gt, PALETTE)
        save_label_png(str(dirs['labels'] / f'{img_id}.png'), label, PALETTE)
        save_region_map(str(dirs['regions'] / f'{img_id}.png'), gt.astype(np.int64) + 1)
        image = np.zeros((16, 16, 3), np.uint8)
        image[gt > 0] = 200
        Image.fromarray(image).save(dirs['img'] / f'{img_id}.jpg', quality=100)
    out_dir = str(tmp_path / 'out')
    result = tool.main([str(dirs['labels']), '--img-dir', str(dirs['img']), '--gt-dir',
                        str(dirs['gt']), '--regions', 'folder', '--region-options',
                        f'root={dirs["regions"]}', '--out-dir', out_dir])
    plain, refined = result['rows']
    assert plain['regions'] == 'none' and refined['regions'] == 'folder'
    assert plain['mIoU'] < 90 and plain['boundary_mIoU'] < plain['mIoU']
    assert refined['mIoU'] == pytest.approx(100) and refined['boundary_mIoU'] == pytest.approx(100)
    assert refined['regions_s_per_image'] >= 0 and refined['rule_s_per_image'] >= 0
    saved = json.load(open(osp.join(out_dir, 'region_refinement.json')))
    assert saved['rows'][1]['mIoU'] == pytest.approx(100)
    assert '| labels | folder | 2 | 100.00 | 100.00 |' in open(
        osp.join(out_dir, 'region_refinement.md')).read()
    # superpixels run on the same files (no assertion on their quality)
    rows = tool.main([str(dirs['labels']), '--img-dir', str(dirs['img']), '--gt-dir',
                      str(dirs['gt']), '--regions', 'slic', 'felzenszwalb', '--out-dir',
                      out_dir])['rows']
    assert [r['regions'] for r in rows] == ['none', 'slic', 'felzenszwalb']
    with pytest.raises(SystemExit, match='ground-truth mask'):
        tool.main([str(dirs['labels']), '--img-dir', str(dirs['img']), '--gt-dir',
                   str(dirs['img']), '--out-dir', out_dir])
