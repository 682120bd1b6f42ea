# SFC stage 1 on mmpretrain's DeiT-S (ViT-S/16, ImageNet-1k). Our choices, not the paper's:
# - CAM stride 16 (the patch grid); blocks 3, 6, 9 and 12 as feature maps
#   (out_type='featmap', 384 channels each), all four feed the side projections,
#   block 12 (after the final LayerNorm) the classifier and the PCM.
# - img_size = the 512 crop (the 14x14 position embedding is resized on loading, and
#   to other test sizes on the fly); nothing frozen, no drop path.
# - AdamW lr 6e-5 (x10 for the new layers), weight decay 0.01 (none on norms,
#   biases, position embedding and class token), 300 linear warm-up iterations, then poly.
_base_ = './sfc_r50_1xb16-3966it_voc12aug-512x512.py'
custom_imports = dict(imports=['mmsfc', 'mmpretrain.models'], allow_failed_imports=False)
model = dict(
    in_channels=384,
    backbone=dict(
        _delete_=True, type='mmpretrain.VisionTransformer', arch='deit-small', img_size=512,
        patch_size=16, out_indices=(2, 5, 8, 11), out_type='featmap', drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint='https://download.openmmlab.com/mmclassification/v0/deit/deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth')),
    pcm=dict(in_channels=3 + 384, channels=384),
    prototype_head=dict(in_channels=(384, 384, 384, 384), channels=(128, 128, 256, 256)))
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01,
                   fused=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, custom_keys={
        '.pos_embed': dict(decay_mult=0.0), '.cls_token': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=300),
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=300, end=3966, by_epoch=False),
]
