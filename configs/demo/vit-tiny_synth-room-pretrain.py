# Demo stage 1: "pre-train" the tiny ViT encoder on SynthRoom, a stand-in for
# the ImageNet pre-training that the demo cannot download. The whole network
# trains (freeze_backbone=False) with a light dense multi-task decoder on a
# SynthRoom split rendered with another seed than the fine-tuning data; stage
# 2 keeps only the encoder (init_cfg prefix='backbone.').
_base_ = ['./fgmoe_vit-tiny_demo.py']
data_root = 'data/synth_room_demo/pretrain/NYUDv2'
model = dict(
    freeze_backbone=False,
    backbone=dict(frozen_stages=-1, init_cfg=None),  # trained from scratch
    decode_head=dict(
        moe=False,
        use_global_expert=False,
        num_blocks=1,
        mixer_cfg=dict(_delete_=True, type='DepthwiseConvMixer',
                       kernel_size=3)))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# The whole network trains: drop the schedule's lr_mult=0 for the backbone.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(_delete_=True)))
