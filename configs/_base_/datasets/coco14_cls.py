# COCO 2014 image-level labels for CAM training (layout of
# tools/dataset_converters/coco.py), same augmentation as VOC (reference §7).
# CAMs are evaluated against the train2014 masks, as SIPE/SFC do.
dataset_type = 'SFCCOCODataset'
data_root = 'data/coco'
crop_size = 512
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
             'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
             'cls_label', 'valid_box')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SFCRandomPasteCrop', crop_size=crop_size),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='IBRBatchSampler', num_resampled=4),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/train2014.txt',
        data_prefix=dict(img_path='train2014'),
        cls_label_file='cls_labels_coco.npy',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/train2014.txt',
        data_prefix=dict(img_path='train2014', seg_map_path='SegmentationClass/train2014'),
        cls_label_file='cls_labels_coco.npy',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
