# SFC stage 1 on COCO 2014 (docs/method_notes.md §7, §14): the VOC recipe with 81 classes, an
# 80-slot image bank, DC from the COCO counts with N_iter derived from the
# loader, 82081 // 16 = 5130 (the authors' COCO values are unknown), 6 epochs =
# 30780 iterations, no in-training validation (final checkpoint). Layout: tools/dataset_converters/coco.py.
# CAMs are scored against the train2014 masks and turned into CRF pseudo labels
# (no IRN), as SIPE/SFC intend.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
data_root = 'data/coco'
coco = dict(type='SFCCOCODataset', data_root=data_root, cls_label_file='cls_labels_coco.npy')
train_dataloader = dict(dataset=dict(
    **coco, ann_file='ImageSets/train2014.txt', data_prefix=dict(img_path='train2014')))
test_dataloader = dict(dataset=dict(
    **coco, ann_file='ImageSets/train2014.txt',
    data_prefix=dict(img_path='train2014', seg_map_path='SegmentationClass/train2014')))
model = dict(num_classes=81)
max_iters = 30780
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
# no validation (it would run multi-scale CAMs over all 82k train2014 images);
# tools/test.py still scores the CAMs through test_dataloader.
val_dataloader = None
val_evaluator = None
val_cfg = None
default_hooks = dict(checkpoint=dict(interval=5000))
custom_hooks = [
    dict(type='DistributionCoefficientHook'),
    dict(
        type='CAMToPseudoLabelHook',
        out_dir=None,
        dataloader=dict(num_workers=4, dataset=dict(
            **coco, ann_file='ImageSets/train2014.txt',
            data_prefix=dict(img_path='train2014', seg_map_path='SegmentationClass/train2014'),
            pipeline={{_base_.pseudo_label_dataloader.dataset.pipeline}})),
        cam_metric=dict(type='SFCCAMMetric', maps=('final', 'w', 'p')),
        crf=dict(iterations=12),
        crf_alpha=0.7,
        store_cams=False,  # 82k full-resolution CAM files are not worth storing
        batch_size=8,
        nproc=8),
]
