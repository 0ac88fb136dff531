# Demo stage 2: FGMoE decoder on the frozen tiny ViT, sized so that the whole
# `make demo` (pre-training, fine-tuning, evaluation with odsF) fits ~15 min
# on 2 CPU cores: 144x192 SynthRoom images, 128x176 crops, batch 8.
# The frozen encoder is the one stage 1 (vit-tiny_synth-room-pretrain.py)
# writes; tools/demo.sh passes its path.
_base_ = ['../fgmoe_vit-tiny_synth-room-nyud.py']
data_root = 'data/synth_room_demo/finetune/NYUDv2'
crop_size = (128, 176)
max_iters = 500
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskRandomResize', ratio_range=(0.75, 1.5)),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackMultiTaskInputs'),
]
model = dict(
    backbone=dict(
        img_size=crop_size,
        init_cfg=dict(
            _delete_=True,  # the base has init_cfg=None
            type='Pretrained',
            checkpoint='work_dirs/demo/pretrain/iter_500.pth',
            prefix='backbone.')))
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(edge_backend='fast')
test_evaluator = val_evaluator
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
