# IRN training data: VOC train_aug images with stage 2's CRF pseudo labels
# (0 background, 1..20, 255 uncertain = no pair counts). Augmentation of the
# authors: random rescale (bicubic image, nearest label) by a factor in
# [0.5, 1.0] (they pass (0.5, 1.0, 1.5), of which only the first two entries
# are used), flip, random 512 crop (image canvas = mean, i.e. 0 after
# normalisation; label canvas 255), label downscaled x0.25 (nearest).
dataset_type = 'SFCVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
# The labels/ directory of stage 2, relative to data_root or absolute, e.g. after
#   ln -s $PWD/work_dirs/sfc_r50_1xb16-3966it_voc12aug-512x512/pseudo_labels/labels \
#       data/VOCdevkit/VOC2012/SegmentationClassCRF
crf_label_dir = 'SegmentationClassCRF'
crop_size = 512
irn_scale_range = (0.5, 1.0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='SFCRandomRescale', scale_range=irn_scale_range),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SFCRandomPasteCrop', crop_size=crop_size, seg_pad_val=255),
    dict(type='SFCDownscaleSegMap', scale=0.25),
    dict(type='PackSegInputs'),
]
# Stage 3 masks (CAMToPseudoLabelHook with mode='irn' / make_pseudo_labels.py
# --irn): every train_aug image, scored on train (1,464) with the GT masks.
mask_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path=crf_label_dir),
        pipeline=train_pipeline))
mask_dataloader = dict(
    num_workers=4,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline=mask_pipeline))
mask_eval_ann_file = 'ImageSets/Segmentation/train.txt'
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
