# FGMoE, ViT-S/16 (frozen), NYUD-v2.
# mmpretrain 1.2.0 has no ImageNet-21k ViT-S/16 checkpoint (its arch 'small'
# is the 768-wide, 8-layer variant of the original ViT code), so this config
# uses DeiT-S (384 wide, 12 layers, ImageNet-1k, ImageNet mean/std).
# mmseg-style name: fgmoe_deit-s16_1xb4-40k_nyud-448x576.
_base_ = ['./fgmoe_nyud.py']
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/deit/deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth'  # noqa: E501
model = dict(data_preprocessor=dict(mean=[123.675, 116.28, 103.53],
                                    std=[58.395, 57.12, 57.375]),
             backbone=dict(arch='deit-small',
                           out_indices=(2, 5, 8, 11),
                           frozen_stages=12,
                           init_cfg=dict(checkpoint=checkpoint)),
             decode_head=dict(in_channels=[384, 384, 384, 384]))
