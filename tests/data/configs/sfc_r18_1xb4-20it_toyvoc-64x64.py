# A tiny SFC run on the generated toy VOC (mmsfc.testing.generate_toy_voc):
# ResNet-18 from scratch, 64x64 canvas, 20 iterations, CPU friendly. Used by
# the tests, CI and as a quick smoke test of an installation:
#   python -c "from mmsfc.testing import generate_toy_voc; generate_toy_voc('data/toy_voc')"
#   python tools/train.py tests/data/configs/sfc_r18_1xb4-20it_toyvoc-64x64.py
_base_ = '../../../configs/sfc/sfc_r50_1xb16-3966it_voc12aug-512x512.py'
data_root = 'data/toy_voc'
classes = ('background', 'aeroplane', 'bicycle', 'bird', 'boat')
crop_size = 64
model = dict(
    data_preprocessor=dict(size=(crop_size, crop_size)),
    in_channels=512,
    num_classes=len(classes),
    backbone=dict(depth=18, init_cfg=None),
    pcm=dict(in_channels=3 + 512, channels=512),
    prototype_head=dict(in_channels=(64, 128, 256, 512), channels=(16, 16, 32, 32)),
    test_cfg=dict(scales=(1.0, 0.5)))
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    batch_sampler=dict(num_resampled=2),
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        cls_label_file='cls_labels.npy',
        pipeline=[
            dict(type='LoadImageFromFile', color_type={{_base_.color_type}}),
            dict(type='SFCRandomPasteCrop', crop_size=crop_size),
            dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}}),
        ]))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 cls_label_file='cls_labels.npy'))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=20, val_interval=20)
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=20, by_epoch=False)]
default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=10, max_keep_ckpts=2))
custom_hooks = [
    dict(type='DistributionCoefficientHook'),
    dict(
        type='CAMToPseudoLabelHook',
        out_dir=None,
        dataloader=dict(
            num_workers=0,
            dataset=dict(
                type='SFCVOCDataset',
                data_root=data_root,
                metainfo=dict(classes=classes),
                cls_label_file='cls_labels.npy',
                ann_file='ImageSets/Segmentation/train_aug.txt',
                data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                pipeline={{_base_.pseudo_label_dataloader.dataset.pipeline}})),
        eval_ann_file='ImageSets/Segmentation/train.txt',
        nproc=1),
]
