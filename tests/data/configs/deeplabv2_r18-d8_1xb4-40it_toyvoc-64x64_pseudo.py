# A tiny DeepLabV2 run on the generated toy VOC (tests and CI): ResNet-18
# from scratch, 64x64 crops, 40 iterations; masks from data_root/<pseudo dir>.
_base_ = '../../../configs/deeplabv2/deeplabv2_r101-d8_1xb10-20k_voc12aug-321x321_pseudo.py'
data_root = 'data/toy_voc'
classes = ('background', 'aeroplane', 'bicycle', 'bird', 'boat')
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, init_cfg=None, norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=512, num_classes=len(classes)))
train_pipeline = [
    dict(type='LoadImageFromFile', color_type={{_base_.color_type}}),
    dict(type='SFCLoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug')))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=40, by_epoch=False)]
train_cfg = dict(max_iters=40, val_interval=40)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=40))
