# FGMoE, ViT-L/16 (ImageNet-21k pre-trained, 1k fine-tuned; frozen), NYUD-v2.
# mmseg-style name: fgmoe_vit-l16_1xb4-40k_nyud-448x576.
_base_ = ['./fgmoe_nyud.py']
# mmpretrain "vit-large-p16_in21k-pre_3rdparty_in1k-384px" (converted from
# the official ViT release).
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/vit/finetune/vit-large-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_20210928-b20ba619.pth'  # noqa: E501
model = dict(backbone=dict(arch='large',
                           out_indices=(5, 11, 17, 23),
                           frozen_stages=24,
                           init_cfg=dict(checkpoint=checkpoint)),
             decode_head=dict(in_channels=[1024, 1024, 1024, 1024]))
