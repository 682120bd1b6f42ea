# The authors' optimiser (docs/method_notes.md §9): SGD whose *effective* momentum is
# 1e-4 (their wrapper passes weight_decay where SGD expects momentum), weight
# decay 1e-4, LR 0.1 for the backbone and x10 for the new layers, poly 0.9
# per iteration over (10582 // 16) * 6 = 3966 iterations, grad-norm clip 1.
# fused=True: PyTorch's one-pass implementation of the same update (torch >= 2.4;
# SFCOptimWrapperConstructor builds the plain one, with a warning, where it is missing).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='SFCOptimWrapperConstructor',  # one log line for the frozen parameters
    optimizer=dict(type='SGD', lr=0.1, momentum=1e-4, weight_decay=1e-4, fused=True),
    clip_grad=dict(max_norm=1, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'classifier': dict(lr_mult=10.0),
        'pcm': dict(lr_mult=10.0),
        'prototype_head': dict(lr_mult=10.0),
    }))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=3966, by_epoch=False)
]
# The final checkpoint is the default (GT-free). CAM mIoU on VOC train-1464 is
# computed once at the end; GT-based "best" selection is opt-in (see README).
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3966, val_interval=3966)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=2,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
