# Stage 4 on COCO 2014: DeepLabV2 ResNet-101 on the CRF pseudo labels of
# train2014 (docs/method_notes.md §14: no IRN), 81-class mIoU on val2014. deeplab-pytorch's
# COCO template: 100k iterations, lr 2.5e-4, batch 10; SFC's values are unknown.
_base_ = './deeplabv2_r101-d8_1xb10-20k_voc12aug-321x321_pseudo.py'
data_root = 'data/coco'
pseudo_label_dir = 'SegmentationClassPseudo/train2014'  # relative to data_root, or absolute
model = dict(decode_head=dict(num_classes=81))
train_dataloader = dict(dataset=dict(
    type='SFCCOCODataset', data_root=data_root, ann_file='ImageSets/train2014.txt',
    data_prefix=dict(img_path='train2014', seg_map_path=pseudo_label_dir)))
val_dataloader = dict(dataset=dict(
    type='SFCCOCODataset', data_root=data_root, ann_file='ImageSets/val2014.txt',
    data_prefix=dict(img_path='val2014', seg_map_path='SegmentationClass/val2014')))
test_dataloader = val_dataloader
max_iters = 100000
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=10000)
default_hooks = dict(checkpoint=dict(interval=10000))
