# The published multi-task dense-prediction schedule (InvPT / MLoRE line):
# Adam, 40k iterations, polynomial decay. Only the decoder trains: the frozen
# backbone gets lr_mult=0 and decay_mult=0 so the optimizer never touches it
# (the segmentor also sets requires_grad=False and runs it without autograd).
optimizer = dict(type='Adam', lr=2e-5, betas=(0.9, 0.999), weight_decay=1e-6)
optim_wrapper = dict(
    type='OptimWrapper',
    # Same optimizer as mmengine's default constructor; logs one line for
    # the frozen backbone instead of a warning per parameter.
    constructor='FrozenAwareOptimWrapperConstructor',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(
        custom_keys=dict(backbone=dict(lr_mult=0.0, decay_mult=0.0))))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=40000,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='MultiTaskVisualizationHook'),
    # Stops training at the first NaN/Inf loss, naming the loss key and the
    # iteration (before that iteration's checkpoint is written).
    finite_loss=dict(type='FiniteLossHook'))
