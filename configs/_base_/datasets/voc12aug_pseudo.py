# Segmentation stage on VOC: train_aug images with the masks of stage 2 (a
# directory of PNGs named <id>.png, 255 = ignored), validation on VOC val with
# ground truth. Augmentation of deeplab-pytorch: scale in {0.5, ..., 1.5},
# random 321 crop (padding by the data preprocessor), flip.
dataset_type = 'SFCVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
# The labels/ directory written by CAMToPseudoLabelHook / make_pseudo_labels.py,
# relative to data_root or absolute, e.g. after
#   ln -s $PWD/work_dirs/sfc_r50_voc/pseudo_labels/labels \
#       data/VOCdevkit/VOC2012/SegmentationClassPseudo
pseudo_label_dir = 'SegmentationClassPseudo'
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomChoice', transforms=[
        [dict(type='Resize', scale_factor=scale, keep_ratio=True)]
        for scale in (0.5, 0.75, 1.0, 1.25, 1.5)
    ]),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=10,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_label_dir),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
