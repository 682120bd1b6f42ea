# Copyright (c) mmsfc contributors. All rights reserved.
"""demo/image_demo.py: CAM panel and pseudo label of one image, on the toy config with
a random-initialised checkpoint."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image

from conftest import REPO_ROOT, TOY_CONFIG
from mmsfc.postprocess import UNCERTAIN, background_rule, load_label_png

TOY_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat')


def load_demo():
    spec = importlib.util.spec_from_file_location(
        'mmsfc_image_demo', osp.join(REPO_ROOT, 'demo', 'image_demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A random-initialised toy SFC network saved as the Runner saves one."""
    cfg = Config.fromfile(TOY_CONFIG)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('ckpt') / 'iter_20.pth'
    palette = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=TOY_CLASSES, palette=palette))), path)
    return str(path)


@pytest.fixture(scope='module')
def image(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp('img') / 'one.png'
    Image.fromarray(rng.integers(0, 256, (48, 72, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_panel_and_label_for_given_classes(tmp_path, checkpoint, image):
    demo = load_demo()
    out = tmp_path / 'panel.png'
    paths = demo.main([image, TOY_CONFIG, checkpoint, '--labels', 'bird', 'aeroplane',
                       '--device', 'cpu', '--out-file', str(out)])
    assert paths == dict(out_file=str(out), out_label=str(tmp_path / 'panel_label.png'))
    with Image.open(out) as panel:
        # rows: image | label, then one per class (2); three 72-wide tiles
        assert panel.size == (3 * 72, 3 * 48)
        tiles = np.asarray(panel.convert('RGB'))[:48].reshape(48, 3, 72, 3).swapaxes(0, 1)
    # below the captions, the label tile is the image under the label colours
    assert np.abs(tiles[1, 20:].astype(int) - tiles[0, 20:]).mean() > 5
    label = load_label_png(paths['out_label'])
    assert label.shape == (48, 72) and set(np.unique(label)) <= {0, 1, 3}

    # the label is the argmax rule of M_final over the given classes
    model = demo.init_cam_model(TOY_CONFIG, checkpoint, 'cpu')
    cams = demo.inference_cams(model, image, ['aeroplane', 'bird'])
    assert cams['keys'].tolist() == [0, 1, 3]
    rule = model.test_cfg
    final = (background_rule(torch.from_numpy(cams['cam_w']), rule['bg_offset'], rule['fg_scale'])
             + rule['alpha'] * background_rule(torch.from_numpy(cams['cam_p']),
                                               rule['bg_offset'], rule['fg_scale']))
    np.testing.assert_allclose(cams['final'], final.numpy(), atol=1e-5)
    np.testing.assert_array_equal(label, cams['keys'][final.argmax(0).numpy()])


def test_classes_from_the_classifier_and_crf_label(tmp_path, checkpoint, image):
    demo = load_demo()
    model = demo.init_cam_model(TOY_CONFIG, checkpoint, 'cpu')
    every = demo.inference_cams(model, image, score_thr=0.0)  # every score is above 0
    assert every['keys'].tolist() == [0, 1, 2, 3, 4]
    best = demo.inference_cams(model, image, score_thr=1.0)  # none above: the best class
    assert best['keys'].tolist() == [0, int(np.argmax(best['scores'])) + 1]
    label = demo.pseudo_label(model, every, crf=True)
    assert label.shape == (48, 72) and set(np.unique(label)) <= {0, 1, 2, 3, 4, UNCERTAIN}


def test_checkpoint_without_classes_uses_the_config_and_bad_labels_are_named(
        tmp_path, checkpoint, image):
    demo = load_demo()
    bare = tmp_path / 'bare.pth'
    torch.save(dict(state_dict=torch.load(checkpoint, weights_only=False)['state_dict']), bare)
    model = demo.init_cam_model(TOY_CONFIG, str(bare), 'cpu')
    assert tuple(model.dataset_meta['classes']) == TOY_CLASSES
    assert len(model.dataset_meta['palette']) == len(TOY_CLASSES)
    with pytest.raises(ValueError, match="'person' is not a foreground class"):
        demo.inference_cams(model, image, ['person'])
    with pytest.raises(FileNotFoundError, match='nope.png'):
        demo.inference_cams(model, str(tmp_path / 'nope.png'))
