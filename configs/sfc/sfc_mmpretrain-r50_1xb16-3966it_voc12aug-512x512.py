# SFC stage 1 with mmpretrain's ResNet-50 in place of mmseg's: the same network
# (strides (1, 2, 2, 1), no dilation, frozen BN statistics, stem + layer1 +
# layer2 frozen), the same state-dict names and the same weights (torchvision's
# ImageNet V1, as the authors), hence the same outputs and gradients
# (tests/test_models/test_classifiers/test_sfc_mmpretrain_backbones.py). mmpretrain's own
# weights: checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth', prefix='backbone.'
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
custom_imports = dict(imports=['mmsfc', 'mmpretrain.models'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True, type='mmpretrain.ResNet', depth=50, out_indices=(0, 1, 2, 3),
    strides=(1, 2, 2, 1), dilations=(1, 1, 1, 1), style='pytorch',
    norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, frozen_stages=2,
    init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
