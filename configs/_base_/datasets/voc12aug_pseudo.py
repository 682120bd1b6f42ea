# Segmentation stage on VOC: train_aug images with the masks of stage 2 (a
# directory of PNGs named <id>.png, 255 = ignored), validation on VOC val with
# ground truth. Augmentation of deeplab-pytorch: scale in {0.5, ..., 1.5},
# random 321 crop (padding by the data preprocessor), flip. Masks only: no
# image-level labels are read (label_source='none': no XML, no label file).
dataset_type = 'SFCVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
# The labels/ directory written by CAMToPseudoLabelHook / make_pseudo_labels.py,
# relative to data_root or absolute, e.g. after
#   ln -s $PWD/work_dirs/sfc_r50_1xb16-3966it_voc12aug-512x512/pseudo_labels/labels \
#       data/VOCdevkit/VOC2012/SegmentationClassPseudo
pseudo_label_dir = 'SegmentationClassPseudo'
crop_size = (321, 321)
# stored pixel frame (EXIF orientation ignored), the frame of the masks
color_type = 'color_ignore_orientation'
train_pipeline = [
    dict(type='LoadImageFromFile', color_type=color_type),
    dict(type='SFCLoadAnnotations'),
    dict(type='RandomChoice', transforms=[
        [dict(type='Resize', scale_factor=scale, keep_ratio=True)]
        for scale in (0.5, 0.75, 1.0, 1.25, 1.5)
    ]),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type=color_type),
    dict(type='SFCLoadAnnotations'),
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
        label_source='none',
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
        label_source='none',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
