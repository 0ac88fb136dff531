# FGMoE, DINOv2 ViT-B/14 (LVD-142M self-supervised; frozen), NYUD-v2.
# mmpretrain 1.2.0 has no 'dinov2-base' arch name: DINOv2-B is arch 'base'
# with patch 14 and layer scale (mmpretrain's
# configs/dinov2/vit-base-p14_dinov2-pre_headless.py). Crops are 448x560 and
# training batches are padded to multiples of 14 so the patch grid tiles the
# image; test images are padded to the crop size.
# mmseg-style name: fgmoe_dinov2-b14_1xb4-40k_nyud-448x560.
_base_ = ['./fgmoe_nyud.py']
checkpoint = 'https://download.openmmlab.com/mmpretrain/v1.0/dinov2/vit-base-p14_dinov2-pre_3rdparty_20230426-ba246503.pth'  # noqa: E501
crop_size = (448, 560)
model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375],
                           size_divisor=14,
                           test_cfg=dict(_delete_=True, size=crop_size)),
    backbone=dict(arch='base',
                  img_size=crop_size,
                  patch_size=14,
                  layer_scale_init_value=1e-5,
                  init_cfg=dict(checkpoint=checkpoint)),
    # 2x the 1/14 patch grid: the decoder works at 1/7 of the input.
    decode_head=dict(agg_scale_factor=2.))
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskRandomResize', ratio_range=(0.5, 2.0)),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackMultiTaskInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
