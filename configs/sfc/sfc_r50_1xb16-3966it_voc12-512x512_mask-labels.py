# SFC on VOC 2012 without SBD and without the XML annotations: train on VOC
# train (1,464 images) with image-level labels read from the official masks
# (label_source='mask'); everything else as sfc_r50_1xb16-3966it_voc12aug-512x512.py. DC's N_iter follows
# the smaller training set (1464 // 16 = 91); the schedule keeps 3966 iterations.
# Pseudo labels (once out_dir is set) are made and scored for the same images.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
masks = dict(type='SFCVOCDataset', data_root={{_base_.data_root}}, label_source='mask',
             ann_file='ImageSets/Segmentation/train.txt',
             data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
train_dataloader = dict(dataset=masks)
val_dataloader = dict(dataset=dict(label_source='mask'))
test_dataloader = val_dataloader
custom_hooks = [
    dict(type='DistributionCoefficientHook'),
    dict(
        type='CAMToPseudoLabelHook',
        out_dir=None,
        dataloader=dict(num_workers=4, dataset=dict(
            **masks, pipeline={{_base_.pseudo_label_dataloader.dataset.pipeline}})),
        cam_metric=dict(type='SFCCAMMetric', maps=('final', 'w', 'p')),
        crf=dict(iterations=12),
        crf_alpha=0.7,
        batch_size=8,
        nproc=8),
]
