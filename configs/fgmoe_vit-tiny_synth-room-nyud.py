# FGMoE on SynthRoom (NYUD-v2 layout, 240x320 images, 224x288 crops) with a
# tiny ViT (192 wide, 4 blocks, 3 heads, patch 16): the CPU-sized
# configuration of the demo (README, "The demo"). The encoder is frozen as
# in the paper; point it at an encoder pre-trained on SynthRoom (the demo's
# first stage writes one) with a child config:
#   _base_ = ['./fgmoe_vit-tiny_synth-room-nyud.py']
#   model = dict(backbone=dict(init_cfg=dict(
#       _delete_=True,  # the base has init_cfg=None
#       type='Pretrained', checkpoint='<encoder>.pth', prefix='backbone.')))
# Without it the frozen encoder is random (a smoke test, not a result).
# mmseg-style name: fgmoe_vit-tiny16_1xb4-2k_synth-room-nyud-224x288.
_base_ = [
    './_base_/models/fgmoe_vit-tiny.py',
    './_base_/datasets/synth_room_nyud.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_40k.py'
]
tasks = ['semseg', 'depth', 'normals', 'edge']
max_iters = 2000
model = dict(decode_head=dict(tasks=tasks, num_classes=dict(semseg=40)))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
# A short schedule with a larger step size for the small decoder.
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='PolyLR',
         eta_min=0.0,
         power=0.9,
         begin=0,
         end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=1000))
