# IRN schedule of the authors (train_irn.py): 3 epochs of batch 32 (drop_last:
# 10582 // 32 * 3 = 990 iterations on VOC train_aug), SGD with the same
# effective momentum 1e-4 as stage 1 (their PolyOptimizerSGD passes the weight
# decay where SGD expects momentum), weight decay 1e-4, LR 0.1 for the edge
# branch and x10 for the displacement branch, poly 0.9 per iteration, no
# gradient clipping. The backbone is frozen (no gradient).
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='SFCOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.1, momentum=1e-4, weight_decay=1e-4, fused=True),
    paramwise_cfg=dict(custom_keys={'displacement_head': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=3, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3, val_interval=100)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=1,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
