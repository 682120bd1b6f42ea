# SFC stage 1 on mmpretrain's ConvNeXt-T (ImageNet-1k). Our choices, not the paper's:
# - CAM stride 16, as the ResNet-50's: ConvNeXt-T without its last stage (stride 32,
#   3 blocks): stages 1-3 (96, 192, 384 channels, strides 4, 8, 16) feed the side
#   projections, stage 3 the classifier and the PCM. For the whole network at
#   stride 32 use arch='tiny', out_indices=(0, 1, 2, 3), in_channels=768.
# - stem + stages 1-2 frozen (as the ResNet's stem + layer1 + layer2), no drop path.
# - 512 crop; AdamW lr 1e-4 (x10 for the new layers), weight decay 0.05 (none on
#   norms and biases), 300 linear warm-up iterations, then poly.
# The output norms of stages 1-2 (new, LayerNorm) feed only the detached side
# features and get no gradient, hence find_unused_parameters for DDP.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
custom_imports = dict(imports=['mmsfc', 'mmpretrain.models'], allow_failed_imports=False)
model = dict(
    in_channels=384,
    backbone=dict(
        _delete_=True, type='mmpretrain.ConvNeXt',
        arch=dict(depths=[3, 3, 9], channels=[96, 192, 384]), out_indices=(0, 1, 2),
        gap_before_final_norm=False, frozen_stages=2, drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext/convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth')),
    pcm=dict(in_channels=3 + 384, channels=384),
    prototype_head=dict(in_channels=(96, 192, 384), channels=(128, 128, 256)))
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05,
                   fused=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=300),
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=300, end=3966, by_epoch=False),
]
find_unused_parameters = True
