# Copyright (c) mmsfc contributors. All rights reserved.
from mmseg.registry import DATASETS

from .colormap import voc_colormap
from .sfc_voc import SFCVOCDataset

#: The 80 COCO object categories in category-id order.
COCO_OBJECT_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')


@DATASETS.register_module()
class SFCCOCODataset(SFCVOCDataset):
    """COCO 2014 object segmentation, 81 classes (background + 80), for WSSS.

    The layout written by ``tools/dataset_converters/coco.py``::

        data/coco/
          train2014/*.jpg  val2014/*.jpg                 (the COCO images)
          SegmentationClass/{train2014,val2014}/*.png   (class-index masks, 255 ignored)
          ImageSets/{train2014,val2014}.txt              (image ids = file stems)
          cls_labels_coco.npy                            ({id: (80,) multi-hot})

    Only images with at least one annotation are listed (82,081 of train2014,
    40,137 of val2014). Labels come from ``cls_label_file`` or, without one,
    from the masks. Everything else is :class:`SFCVOCDataset`.
    """

    METAINFO = dict(
        classes=('background', ) + COCO_OBJECT_CLASSES, palette=voc_colormap(81))
    DEFAULT_LABEL_SOURCE = 'mask'
