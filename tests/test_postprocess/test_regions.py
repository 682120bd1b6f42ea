# Copyright (c) mmsfc contributors. All rights reserved.
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from mmsfc.postprocess.regions import (
    FolderRegions,
    SAMRegions,
    SuperpixelRegions,
    build_region_source,
    sam_records_to_masks,
    save_region_map,
)


def _two_tone(height=40, width=60):
    image = np.full((height, width, 3), 30, np.uint8)
    image[:, width // 2:] = (220, 40, 40)
    return image


@pytest.mark.parametrize('kind', ['slic', 'felzenszwalb'])
def test_superpixels_are_a_region_map_along_the_edge(kind):
    image = _two_tone()
    source = build_region_source(dict(type=kind))
    regions = source(image, 'x')
    assert regions.shape == (40, 60) and np.issubdtype(regions.dtype, np.integer)
    assert regions.min() >= 1  # every pixel in a region
    # no superpixel straddles the colour edge
    left, right = set(np.unique(regions[:, :30])), set(np.unique(regions[:, 30:]))
    assert not left & right
    assert source.settings()['type'] == kind and source.parallel


def test_superpixel_options_and_bad_method():
    source = SuperpixelRegions('slic', n_segments=4)
    assert source.settings() == dict(type='slic', n_segments=4, compactness=10.0)
    assert len(np.unique(source(_two_tone()))) <= 8
    with pytest.raises(ValueError, match='superpixel method'):
        SuperpixelRegions('watershed')
    with pytest.raises(ValueError, match='region source type'):
        build_region_source(dict(type='quickshift'))


def test_sam_records_to_masks_binary_and_rle():
    from pycocotools import mask as mask_utils
    first = np.zeros((4, 5), bool)
    first[1:3, 1:4] = True
    second = np.zeros((4, 5), np.uint8)
    second[0, :] = 1
    rle = mask_utils.encode(np.asfortranarray(second))
    masks = sam_records_to_masks([dict(segmentation=first), dict(segmentation=rle)], (4, 5))
    assert masks.dtype == bool and masks.shape == (2, 4, 5)
    np.testing.assert_array_equal(masks[0], first)
    np.testing.assert_array_equal(masks[1], second.astype(bool))
    assert sam_records_to_masks([], (4, 5)).shape == (0, 4, 5)
    with pytest.raises(ValueError, match='SAM mask 0 has shape'):
        sam_records_to_masks([dict(segmentation=first)], (5, 4))


def test_sam_without_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'segment_anything', None)  # import fails
    with pytest.raises(ImportError, match='pip install segment-anything'):
        SAMRegions(str(tmp_path / 'sam.pth'))


class _TinySam(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(2, 3)


class _FakeGenerator:
    def __init__(self, model, **kwargs):
        self.model, self.kwargs = model, kwargs

    def generate(self, image):
        top = np.zeros(image.shape[:2], bool)
        top[: image.shape[0] // 2] = True
        return [dict(segmentation=top, area=int(top.sum())), dict(segmentation=~top)]


@pytest.fixture
def fake_sam(monkeypatch):
    module = types.SimpleNamespace(sam_model_registry=dict(vit_t=_TinySam),
                                   SamAutomaticMaskGenerator=_FakeGenerator)
    monkeypatch.setitem(sys.modules, 'segment_anything', module)
    return module


def test_sam_loads_the_checkpoint_and_converts_the_masks(fake_sam, tmp_path):
    reference = _TinySam()
    checkpoint = str(tmp_path / 'sam_tiny.pth')
    torch.save(reference.state_dict(), checkpoint)
    source = SAMRegions(checkpoint, model_type='vit_t', device='cpu', points_per_side=8)
    assert not source.parallel
    assert source.settings()['points_per_side'] == 8
    masks = source(_two_tone(6, 4), 'img')
    assert masks.shape == (2, 6, 4) and masks.dtype == bool
    assert masks[0, :3].all() and not masks[0, 3:].any()
    generator = source._generator
    assert generator.kwargs == dict(points_per_side=8)
    torch.testing.assert_close(generator.model.proj.weight, reference.proj.weight)
    assert not generator.model.training
    # the model is not pickled (workers build their own)
    assert pickle.loads(pickle.dumps(source))._generator is None


def test_sam_error_paths(fake_sam, tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        SAMRegions(str(tmp_path / 'missing.pth'), model_type='vit_t')
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        SAMRegions(None, model_type='vit_t')
    with pytest.raises(ValueError, match='model_type'):
        SAMRegions(str(tmp_path / 'missing.pth'), model_type='vit_h')
    wrong = str(tmp_path / 'wrong.pth')
    torch.save(dict(other=torch.zeros(1)), wrong)
    with pytest.raises(ValueError, match='wrong.pth is not a SAM'):
        SAMRegions(wrong, model_type='vit_t')(_two_tone(4, 4))


def test_folder_region_maps_and_mask_folders(tmp_path):
    image = _two_tone(4, 6)
    small = np.arange(24).reshape(4, 6)
    save_region_map(str(tmp_path / 'a.png'), small)
    large = small + 1000  # 16-bit
    save_region_map(str(tmp_path / 'b.png'), large)
    (tmp_path / 'c').mkdir()
    first = np.zeros((4, 6), np.uint8)
    first[:2] = 255
    Image.fromarray(first).save(tmp_path / 'c' / '0.png')
    Image.fromarray(np.full((4, 6), 255, np.uint8)).save(tmp_path / 'c' / '1.png')
    source = build_region_source(dict(type='folder', root=str(tmp_path)))
    np.testing.assert_array_equal(source(image, 'a'), small)
    np.testing.assert_array_equal(source(image, 'b'), large)
    masks = source(image, 'c')
    assert masks.shape == (2, 4, 6) and masks.dtype == bool
    np.testing.assert_array_equal(masks[0], first > 0)
    assert masks[1].all()
    with pytest.raises(FileNotFoundError, match='no regions for image'):
        source(image, 'd')
    with pytest.raises(ValueError, match='a.png is 6x4, the image a 4x4'):
        source(image[:, :4], 'a')
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / 'rgb.png')
    with pytest.raises(ValueError, match='single-channel'):
        source(image, 'rgb')
    with pytest.raises(FileNotFoundError, match='region folder not found'):
        FolderRegions(str(tmp_path / 'nowhere'))
    with pytest.raises(ValueError, match='ids in 0..65535'):
        save_region_map(str(tmp_path / 'e.png'), -small)
