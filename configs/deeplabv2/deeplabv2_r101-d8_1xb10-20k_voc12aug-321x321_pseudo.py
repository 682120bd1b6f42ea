# Stage 4: DeepLabV2 ResNet-101 on the SFC pseudo labels of VOC train_aug;
# mIoU on VOC val by tools/test.py. The labels are read from
# data_root/SegmentationClassPseudo (see the dataset base), or from any DIR:
#   --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=DIR
_base_ = [
    '../_base_/models/deeplabv2_r101-d8.py', '../_base_/datasets/voc12aug_pseudo.py',
    '../_base_/schedules/deeplabv2_poly_20k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmsfc'], allow_failed_imports=False)
crop_size = (321, 321)
model = dict(data_preprocessor=dict(size=crop_size))
