# deeplab-pytorch's optimiser (docs/method_notes.md §15): SGD lr 2.5e-4, momentum 0.9,
# wd 5e-4; head weights x10, head biases x20 without decay; poly 0.9 (here per
# iteration; deeplab-pytorch steps it every 10 iterations); 20k iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='SFCOptimWrapperConstructor',  # one log line for the frozen parameters
    optimizer=dict(type='SGD', lr=2.5e-4, momentum=0.9, weight_decay=5e-4, fused=True),
    paramwise_cfg=dict(custom_keys={
        'decode_head': dict(lr_mult=10.0),
        'decode_head.aspp.0.bias': dict(lr_mult=20.0, decay_mult=0.0),
        'decode_head.aspp.1.bias': dict(lr_mult=20.0, decay_mult=0.0),
        'decode_head.aspp.2.bias': dict(lr_mult=20.0, decay_mult=0.0),
        'decode_head.aspp.3.bias': dict(lr_mult=20.0, decay_mult=0.0),
    }))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=20000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000, max_keep_ckpts=2,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
