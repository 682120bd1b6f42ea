# A tiny IRN run on the generated toy VOC (tests): ResNet-18 from
# scratch, 64x64 crops (16x16 grid, so radius 5), 3 epochs of batch 4. Labels
# default to the toy ground truth; point them at stage 2's labels with
#   --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=<out>/labels
_base_ = '../../../configs/irn/irn_r50_1xb32-3ep_voc12aug-512x512.py'
data_root = 'data/toy_voc'
classes = ('background', 'aeroplane', 'bicycle', 'bird', 'boat')
feats = (64, 64, 128, 256, 512)
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18, init_cfg=None),
    edge_head=dict(in_channels=feats),
    displacement_head=dict(in_channels=feats),
    loss_irn=dict(radius=5),
    test_cfg=dict(pad_size=64))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='SFCRandomRescale', scale_range={{_base_.irn_scale_range}}),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SFCRandomPasteCrop', crop_size=64, seg_pad_val=255),
    dict(type='SFCDownscaleSegMap', scale=0.25),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 cls_label_file='cls_labels.npy', pipeline=train_pipeline,
                 data_prefix=dict(seg_map_path='SegmentationClassAug')))
mask_dataloader = dict(
    num_workers=0,
    dataset=dict(
        type='SFCVOCDataset', data_root=data_root, metainfo=dict(classes=classes),
        cls_label_file='cls_labels.npy', ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        pipeline={{_base_.mask_pipeline}}))
default_hooks = dict(logger=dict(interval=2))
custom_hooks = [dict(type='CAMToPseudoLabelHook', mode='irn', out_dir=None,
                     dataloader=mask_dataloader, eval_ann_file={{_base_.mask_eval_ann_file}})]
