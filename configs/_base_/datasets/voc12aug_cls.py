# VOC 2012 + SBD image-level labels for CAM training (docs/method_notes.md §10): the
# whole image pasted at a random offset into a 512 canvas, no resize, no flip.
# CAMs are evaluated on VOC train (1,464 images) with the GT masks.
dataset_type = 'SFCVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = 512
# Images are read in their stored pixel frame, ignoring an EXIF orientation, as
# the authors' PIL/imageio reads and as the masks (COCO annotations) are drawn;
# mmsfc's pseudo-label stage reads them the same way.
color_type = 'color_ignore_orientation'
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
             'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
             'cls_label', 'valid_box')
train_pipeline = [
    dict(type='LoadImageFromFile', color_type=color_type),
    dict(type='SFCRandomPasteCrop', crop_size=crop_size),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type=color_type),
    dict(type='SFCLoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
# 16 images from the loader + 4 re-sampled from the image bank (IBR) per step,
# in total over all GPUs: IBRBatchSampler gives each of N processes 16/N + 4/N.
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='IBRBatchSampler', num_resampled=4),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages'),  # no masks: image labels only
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mIoU of M_final (reported as mIoU), M_W and M_P in one pass (paper Tables 1, 6);
# alpha and the background rule come from model.test_cfg (set only there).
val_evaluator = dict(type='SFCCAMMetric', maps=('final', 'w', 'p'))
test_evaluator = val_evaluator
# Stage 2 (CAMToPseudoLabelHook / tools/make_pseudo_labels.py): label train_aug;
# score on VOC train (1,464) against the official SegmentationClass masks
# (images without a mask file are not scored; the masks are read for scoring only).
pseudo_label_dataloader = dict(
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=[
            dict(type='LoadImageFromFile', color_type=color_type),
            dict(type='PackSegInputs', meta_keys=meta_keys),
        ]))
pseudo_label_eval_ann_file = 'ImageSets/Segmentation/train.txt'
