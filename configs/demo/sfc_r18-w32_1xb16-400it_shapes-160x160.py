# SFC on the generated long-tailed shapes dataset (tools/demo.py): the VOC
# recipe's model, losses, IBR and inference on a narrow ResNet-18 trained from
# scratch on a CPU. Choices for training from scratch, not the paper's:
# - ResNet-18 with 32 base channels (32/64/128/256), OS16, BN trained;
# - as in the authors' code, the stem, layer1 and layer2 never learn (their
#   forward detaches layer2's output; here frozen_stages=2): they stay at
#   their random initialisation, and only layer3, layer4 and the new layers
#   train (tools/analysis/train_with_authors.py trains the authors' network
#   beside this one on the same batches);
# - SGD momentum 0.9 with a linear warm-up (the authors' effective momentum
#   1e-4 is made for fine-tuning ImageNet weights), then poly 0.9;
# - images resized and flipped before the paste crop (see the dataset base).
_base_ = [
    '../_base_/models/sfc_r50.py', '../_base_/datasets/shapes_cls.py',
    '../_base_/schedules/sfc_poly_3966it.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmsfc'], allow_failed_imports=False)
randomness = dict(seed=0)
crop_size = (160, 160)
max_iters = 400
widths = (32, 64, 128, 256)
model = dict(
    data_preprocessor=dict(size=crop_size),
    in_channels=widths[-1],
    num_classes=9,
    backbone=dict(depth=18, stem_channels=32, base_channels=32, norm_eval=False,
                  frozen_stages=2, init_cfg=None),
    pcm=dict(in_channels=3 + widths[-1], channels=widths[-1]),
    prototype_head=dict(in_channels=widths, channels=(32, 32, 64, 64)),
    # this narrow network's CPU inference gains from larger backbone calls than
    # ResNet-50's (docs/performance.md: 1.4x at 160 x 160 on 2 cores)
    test_cfg=dict(cpu_backbone_pixels=400000))
optim_wrapper = dict(optimizer=dict(lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=50, by_epoch=False),
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
custom_hooks = [dict(type='DistributionCoefficientHook')]
