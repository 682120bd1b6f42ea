# The generated long-tailed shapes dataset (mmsfc.datasets.shapes; written by
# tools/demo.py or tools/misc/generate_shapes.py): 160x160 images, CAM training
# on train_aug, CAMs scored on train (a part of train_aug, as VOC's train-1464).
# Augmentation: random long side in [128, 192] and flip, then the authors'
# paste crop (a choice for training from scratch; the VOC recipe has neither).
dataset_type = 'SFCShapesDataset'
data_root = 'data/shapes'
crop_size = 160
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
             'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
             'cls_label', 'valid_box')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SFCRandomResizeLong', long_range=(128, 192)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SFCRandomPasteCrop', crop_size=crop_size),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SFCLoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='IBRBatchSampler', num_resampled=4),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='SFCCAMMetric', maps=('final', 'w', 'p'))
test_evaluator = val_evaluator
pseudo_label_dataloader = dict(
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='PackSegInputs', meta_keys=meta_keys),
        ]))
pseudo_label_eval_ann_file = 'ImageSets/Segmentation/train.txt'
