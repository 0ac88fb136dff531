# FGMoE on SynthRoom (PASCAL-Context layout: semseg 21, human parts 7,
# saliency, normals, edge; 240x320 images, 224x288 crops) with the tiny ViT
# of fgmoe_vit-tiny_synth-room-nyud.py (same encoder, frozen; see there how
# to load a SynthRoom-pre-trained one).
# mmseg-style name: fgmoe_vit-tiny16_1xb4-2k_synth-room-pascal-224x288.
_base_ = [
    './_base_/models/fgmoe_vit-tiny.py',
    './_base_/datasets/synth_room_pascal.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_40k.py'
]
tasks = ['semseg', 'human_parts', 'saliency', 'normals', 'edge']
max_iters = 2000
model = dict(
    decode_head=dict(tasks=tasks, num_classes=dict(semseg=21, human_parts=7)))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=1000))
