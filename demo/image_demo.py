# Copyright (c) mmsfc contributors. All rights reserved.
"""CAMs and pseudo label of one image from an SFC config and checkpoint.

The CAM network's counterpart of mmseg's ``demo/image_demo.py``: it runs the
multi-scale + flip inference of ``SFCClassifier.predict`` on one image and
writes

- ``--out-file``: a panel, first row the image and its pseudo label, then one
  row per class of the image: ``M_W`` (classifier weights), ``M_P``
  (prototypes) and ``M_final = M_W' + alpha * M_P'`` (paper Eq. 9, after the
  background rule), each as a heat map over the image;
- ``--out-label``: the pseudo label as a palette PNG: the argmax of
  ``M_final`` under the background rule (what ``tools/test.py`` scores), or
  with ``--crf`` the two-pass dense CRF of the pseudo-label stage
  (``tools/make_pseudo_labels.py``; 255 = uncertain).

SFC computes CAMs for the classes an image contains. Give them with
``--labels`` (image-level labels, as in training) or let the classifier choose
them (sigmoid score above ``--score-thr``; the best class if none is).

Example::

    python demo/image_demo.py IMAGE.jpg \\
        configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py \\
        work_dirs/sfc_r50_1xb16-3966it_voc12aug-512x512/iter_3966.pth \\
        --labels person dog --crf --out-file image_cams.png
"""
import argparse
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose
from mmengine.logging import print_log
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, MODELS, VISUALIZERS
from mmseg.structures import SegDataSample

from mmsfc.datasets import voc_colormap
from mmsfc.engine import trusted_local_checkpoints
from mmsfc.engine.checkpoint import checkpoint_match_message, count_matching_tensors
from mmsfc.postprocess import cams_to_crf_label, save_label_png


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='config file of an SFC CAM network')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--labels', nargs='+', metavar='CLASS',
                        help="the image's foreground classes (default: the classifier's)")
    parser.add_argument('--score-thr', type=float, default=0.5,
                        help='sigmoid score above which the classifier names a class')
    parser.add_argument('--crf', action='store_true',
                        help="pseudo label by the pseudo-label stage's dense CRF")
    parser.add_argument('--out-file', default='image_demo_cams.png', help='the panel (PNG)')
    parser.add_argument('--out-label', help='the pseudo label (default: OUT_FILE with _label)')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the heat maps and the label colours, in (0, 1]')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, e.g. model.test_cfg.alpha=0.7')
    return parser.parse_args(argv)


def config_dataset_meta(cfg: Config) -> dict:
    """Classes and palette of the config's test dataset (for checkpoints without them)."""
    dataset = cfg.test_dataloader.dataset
    classes = (dataset.get('metainfo') or {}).get('classes') or \
        DATASETS.get(dataset.type).METAINFO['classes']
    return dict(classes=tuple(classes), palette=voc_colormap(len(classes)))


def init_cam_model(config: str, checkpoint: str, device: str = 'cpu',
                   cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """The SFC model of ``config`` with the weights of ``checkpoint``, in eval mode.

    Local checkpoints load as in ``tools/test.py`` (any torch version);
    ``model.dataset_meta`` comes from the checkpoint, else from the config.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.model.type != 'SFCClassifier':
        raise ValueError(f'{config} builds a {cfg.model.type}; this demo needs an '
                         'SFCClassifier config (configs/sfc/)')
    cfg.model.init_cfg = None
    cfg.model.backbone.init_cfg = None  # weights come from the checkpoint: no download
    model = MODELS.build(cfg.model)
    with trusted_local_checkpoints():
        loaded = load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    state = loaded.get('state_dict', loaded)
    matched, total = count_matching_tensors(model.state_dict(), state)
    if matched < total:
        print_log(checkpoint_match_message(matched, total), logger='current', level=30)
    model.dataset_meta = loaded.get('meta', {}).get('dataset_meta') or config_dataset_meta(cfg)
    model.cfg = cfg
    if device == 'cpu':
        model = revert_sync_batchnorm(model)
    return model.to(device).eval()


def _image_flag(cfg: Config) -> str:
    """The decode flag of the config's test pipeline (the frame the CAMs are made in)."""
    for transform in cfg.test_dataloader.dataset.pipeline:
        if transform['type'] in ('LoadImageFromFile', 'mmcv.LoadImageFromFile'):
            return transform.get('color_type', 'color')
    return 'color'


def _class_indices(names: Sequence[str], classes: Sequence[str]) -> List[int]:
    """Foreground indices (1..K) of ``names``; an error names an unknown one."""
    indices = []
    for name in names:
        if name not in classes[1:]:
            raise ValueError(f'--labels: {name!r} is not a foreground class of this model '
                             f'({", ".join(classes[1:])})')
        indices.append(list(classes).index(name))
    return sorted(set(indices))


@torch.no_grad()
def inference_cams(model: torch.nn.Module, img: str, labels: Optional[Sequence[str]] = None,
                   score_thr: float = 0.5) -> Dict[str, object]:
    """Multi-scale + flip CAMs of one image.

    Returns:
        dict: ``image`` (RGB uint8), ``keys`` (channel indices, background
        first, then the image's classes), ``scores`` (the classifier's sigmoid
        score of every foreground class), ``cam_w`` / ``cam_p`` (max-normalised
        maps of the ``keys``, ``(C, H, W)``), ``final`` (``M_final`` after the
        background rule) and ``label`` (its argmax, class indices ``(H, W)``).
    """
    if not osp.isfile(img):
        raise FileNotFoundError(f'image not found: {img}')
    flag = _image_flag(model.cfg)
    pipeline = Compose([LoadImageFromFile(color_type=flag),
                        dict(type='PackSegInputs',
                             meta_keys=('img_path', 'ori_shape', 'img_shape'))])
    data = pipeline(dict(img_path=img))
    sample: SegDataSample = data['data_samples']
    batch = model.data_preprocessor(dict(inputs=[data['inputs']], data_samples=[sample]), False)
    logits, _, _ = model(batch['inputs'], batch['data_samples'], mode='tensor')
    scores = logits[0].sigmoid().cpu()
    classes = model.dataset_meta['classes']
    if labels:
        present = _class_indices(labels, classes)
    else:
        present = (torch.nonzero(scores > score_thr).flatten() + 1).tolist() or \
            [int(scores.argmax()) + 1]
    cls_label = np.zeros(len(classes) - 1, dtype=np.float32)
    cls_label[np.asarray(present) - 1] = 1
    for one in batch['data_samples']:
        one.set_metainfo(dict(cls_label=cls_label))
    result = model.predict(batch['inputs'], batch['data_samples'])[0]
    keys = np.asarray([0] + present)
    return dict(image=mmcv.imread(img, flag=flag, channel_order='rgb'), keys=keys,
                scores=scores.numpy(), cam_w=result.cam_w.data[keys].float().cpu().numpy(),
                cam_p=result.cam_p.data[keys].float().cpu().numpy(),
                final=result.seg_logits.data[keys].float().cpu().numpy(),
                label=result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8))


def pseudo_label(model: torch.nn.Module, cams: Dict[str, object], crf: bool) -> np.ndarray:
    """The argmax rule's label, or the pseudo-label stage's two-pass CRF label."""
    if not crf:
        return cams['label']
    rule = model.test_cfg
    return cams_to_crf_label(cams['image'], cams['keys'], cams['cam_w'], cams['cam_p'],
                             alpha=0.7, bg_offset=rule['bg_offset'], fg_scale=rule['fg_scale'])


def draw_panel(cams: Dict[str, object], label: np.ndarray, dataset_meta: dict,
               opacity: float = 0.5) -> np.ndarray:
    """Image | pseudo label, then M_W | M_P | M_final of each class (RGB uint8)."""
    visualizer = VISUALIZERS.build(dict(type='SegLocalVisualizer', name='sfc_image_demo',
                                        alpha=opacity))
    visualizer.dataset_meta = dataset_meta
    image = cams['image']

    def captioned(tile: np.ndarray, text: str) -> np.ndarray:
        visualizer.set_image(tile)
        visualizer.draw_texts(text, np.array([4, 4]), colors='white', font_sizes=10,
                              bboxes=dict(facecolor='black', alpha=0.6, pad=1))
        return visualizer.get_image()

    def heat(cam: np.ndarray) -> np.ndarray:
        return visualizer.draw_featmap(torch.from_numpy(cam[None]), image,
                                       channel_reduction='squeeze_mean', alpha=opacity)

    sample = SegDataSample(pred_sem_seg=PixelData(data=torch.from_numpy(label[None]).long()))
    with tempfile.TemporaryDirectory() as tmp:  # the visualizer returns its drawing as a file
        visualizer.add_datasample('label', image, sample, draw_gt=False, show=False,
                                  out_file=osp.join(tmp, 'label.png'))
        drawn = mmcv.imread(osp.join(tmp, 'label.png'), channel_order='rgb')
    rows = [[captioned(image.copy(), 'image'), captioned(drawn, 'pseudo label'),
             np.zeros_like(image)]]
    classes = dataset_meta['classes']
    for channel, key in enumerate(cams['keys'][1:], start=1):
        name = classes[key]
        rows.append([captioned(heat(cams['cam_w'][channel]), f'{name}: M_W'),
                     captioned(heat(cams['cam_p'][channel]), f'{name}: M_P'),
                     captioned(heat(cams['final'][channel]), f'{name}: M_final')])
    return np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)


def main(argv=None) -> Dict[str, str]:
    args = parse_args(argv)
    if not 0 < args.opacity <= 1:
        raise ValueError(f'--opacity must be in (0, 1], got {args.opacity}')
    model = init_cam_model(args.config, args.checkpoint, args.device, args.cfg_options)
    cams = inference_cams(model, args.img, args.labels, args.score_thr)
    label = pseudo_label(model, cams, args.crf)
    meta = model.dataset_meta
    out_label = args.out_label or osp.splitext(args.out_file)[0] + '_label.png'
    mmcv.imwrite(mmcv.rgb2bgr(draw_panel(cams, label, meta, args.opacity)), args.out_file)
    save_label_png(out_label, label, meta['palette'])
    named = ', '.join(f'{meta["classes"][k]} ({cams["scores"][k - 1]:.2f})'
                      for k in cams['keys'][1:])
    print_log(f'classes (classifier score): {named}; panel: {args.out_file}; '
              f'pseudo label: {out_label}', logger='current')
    return dict(out_file=args.out_file, out_label=out_label)


if __name__ == '__main__':
    main()
