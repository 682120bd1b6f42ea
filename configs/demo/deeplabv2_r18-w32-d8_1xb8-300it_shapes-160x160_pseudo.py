# Stage 4 on the shapes testbed (tools/demo.py): a narrow DeepLabV2 (ResNet-18
# with 32 base channels at output stride 8, the ASPP-sum head) trained on the
# pseudo labels of train_aug, tested on the generated val split against the
# exact masks. No ImageNet weights exist here: tools/demo.py initialises the
# backbone from the trained CAM network (image-level labels only), as the
# paper's DeepLabV2 starts from an ImageNet classifier; from scratch otherwise. Pseudo labels: data_prefix.seg_map_path of the
# training set (a labels/ directory written by stage 2, absolute or relative
# to data_root).
_base_ = '../deeplabv2/deeplabv2_r101-d8_1xb10-20k_voc12aug-321x321_pseudo.py'
data_root = 'data/shapes'
crop_size = (128, 128)
max_iters = 300
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, stem_channels=32, base_channels=32, init_cfg=None,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    decode_head=dict(in_channels=256, num_classes=9))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SFCLoadAnnotations'),
    dict(type='RandomResize', scale=(160, 160), ratio_range=(0.75, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=False,
    dataset=dict(type='SFCShapesDataset', data_root=data_root, pipeline=train_pipeline,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassPseudo')))
val_dataloader = dict(
    batch_size=16, num_workers=2, persistent_workers=False,
    dataset=dict(type='SFCShapesDataset', data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=25),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
                     visualization=dict(type='SegVisualizationHook', draw=False))
