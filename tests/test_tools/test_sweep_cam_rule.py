# Copyright (c) mmsfc contributors. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from conftest import load_tool
from mmsfc.postprocess import save_cams, save_label_png

PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0]]


@pytest.fixture
def stored(tmp_path):
    """Two images whose masks only the rule with bg_offset 0.4 (fg_scale 2) reproduces.

    Background map 0.5; the class map 0.6 on the object and 0.4 off it: a pixel is
    foreground iff ``2 * M_c > 0.5 + bg_offset``, i.e. at offset 0.4 exactly the object,
    at 0.0 everything, at 0.8 nothing.
    """
    cam_dir, gt_dir, img_dir = (tmp_path / d for d in ('pseudo/cams', 'gt', 'img'))
    for d in (cam_dir, gt_dir, img_dir):
        d.mkdir(parents=True)
    for img_id, cls in (('a', 1), ('b', 2)):
        gt = np.zeros((8, 10), np.uint8)
        gt[:, :5] = cls
        gt[0, 0] = 255  # ignored
        cam = np.full((2, 8, 10), 0.4, np.float32)
        cam[0] = 0.5
        cam[1][gt > 0] = 0.6
        save_cams(str(cam_dir / f'{img_id}.npz'), np.array([0, cls]), cam, cam * 0.5)
        save_label_png(str(gt_dir / f'{img_id}.png'), gt, PALETTE)
        image = np.zeros((8, 10, 3), np.uint8)
        image[gt > 0] = (250, 250, 250)
        Image.fromarray(image).save(img_dir / f'{img_id}.jpg', quality=100)
    return tmp_path


def test_rule_sweep_finds_the_offset_and_scores_with_iou_metric(stored, tmp_path):
    tool = load_tool('analysis/sweep_cam_rule')
    out_dir = str(tmp_path / 'sweep')
    result = tool.main([str(stored / 'pseudo'), '--gt-dir', str(stored / 'gt'), '--out-dir',
                        out_dir, '--bg-offsets', '0.0', '0.4', '0.8', '--alphas', '0'])
    assert result['num_images'] == 2 and result['num_classes'] == 3
    by_offset = {r['bg_offset']: r for r in result['rows']}
    assert by_offset[0.4]['mIoU'] == pytest.approx(100.0)
    # offset 0: all foreground, 39 of each image's 79 scored pixels right:
    # class IoU 39/79 each, background IoU 0
    assert by_offset[0.0]['IoU'] == pytest.approx([0.0, 100 * 39 / 79, 100 * 39 / 79])
    # offset 0.8: all background: background IoU 80/158, classes 0
    assert by_offset[0.8]['mIoU'] == pytest.approx((100 * 80 / 158) / 3)
    assert result['best']['rule']['bg_offset'] == 0.4
    assert 'GT-selected' in result['selection']
    saved = json.load(open(osp.join(out_dir, 'sweep.json')))
    assert saved['best']['rule']['bg_offset'] == 0.4
    table = open(osp.join(out_dir, 'sweep.md')).read()
    assert 'GT-selected' in table and '| 0 | 0.4 | 2 | 100.00 (best, GT-selected) |' in table
    assert Image.open(osp.join(out_dir, 'sweep.png')).size[0] > 100


def test_alpha_and_scale_axes(stored, tmp_path):
    tool = load_tool('analysis/sweep_cam_rule')
    result = tool.main([str(stored / 'pseudo' / 'cams'), '--gt-dir', str(stored / 'gt'),
                        '--out-dir', str(tmp_path / 's'), '--bg-offsets', '0.4',
                        '--fg-scales', '1', '2', '--alphas', '0', '1'])
    assert len(result['rows']) == 4
    rows = {(r['alpha'], r['fg_scale']): r['mIoU'] for r in result['rows']}
    # fg_scale 1: 0.6 < 0.9, nothing foreground; alpha 1 adds M_P' (M_P = M_W / 2): on the
    # object 2 * 0.6 + 2 * 0.3 = 1.8 > (0.5 + 0.4) + (0.25 + 0.4) = 1.55, off it 1.2
    assert rows[(0.0, 2.0)] == rows[(1.0, 2.0)] == pytest.approx(100.0)
    assert rows[(0.0, 1.0)] < 50


def test_crf_sweep_and_its_parameter_grid(stored, tmp_path):
    pytest.importorskip('pydensecrf.densecrf')
    tool = load_tool('analysis/sweep_cam_rule')
    result = tool.main([str(stored / 'pseudo'), '--gt-dir', str(stored / 'gt'), '--out-dir',
                        str(tmp_path / 's'), '--bg-offsets', '0.4', '--alphas', '0', '--crf',
                        '--img-dir', str(stored / 'img'), '--crf-params', 'iterations=1,2',
                        '--crf-alphas', '0.7'])
    crf = [r for r in result['rows'] if r['kind'] == 'crf']
    assert [r['iterations'] for r in crf] == [1, 2]
    assert all(0 <= r['mIoU'] <= 100 and 0 <= r['uncertain'] <= 100 for r in crf)
    assert result['best']['crf'] in crf
    with pytest.raises(SystemExit, match='FIELD'):
        tool.crf_param_grid(['colour=3'])


def test_bad_input(stored, tmp_path):
    tool = load_tool('analysis/sweep_cam_rule')
    with pytest.raises(SystemExit, match='no CAM files'):
        tool.main([str(tmp_path), '--gt-dir', str(stored / 'gt'), '--out-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match='has a mask'):
        tool.main([str(stored / 'pseudo'), '--gt-dir', str(tmp_path), '--out-dir',
                   str(tmp_path)])
    with pytest.raises(SystemExit):
        tool.parse_args([str(stored), '--gt-dir', 'x', '--out-dir', 'y', '--crf'])
