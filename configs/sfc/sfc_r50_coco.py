# SFC stage 1 on COCO 2014 (reference §7): the VOC recipe with 81 classes, an
# 80-slot image bank, DC from the COCO counts with N_iter = 82081 // 16 = 5130
# (the authors' COCO values are unknown), 6 epochs = 30780 iterations, no
# in-training validation (final checkpoint).
_base_ = [
    '../_base_/models/sfc_r50.py', '../_base_/datasets/coco14_cls.py',
    '../_base_/schedules/sfc_poly_3966it.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmsfc'], allow_failed_imports=False)
randomness = dict(seed=10)
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor, num_classes=81, loss_msdw=dict(n_iter=5130))
max_iters = 30780
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(checkpoint=dict(interval=5000))
