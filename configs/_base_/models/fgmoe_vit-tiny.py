# FGMoE on a tiny ViT (192 wide, 4 blocks, 3 heads, patch 16; frozen), the
# CPU-sized configuration of SynthRoom and the demo (README, "The demo").
# The encoder starts random: point init_cfg at an encoder pre-trained on
# SynthRoom (the demo's first stage writes one), see
# configs/fgmoe_vit-tiny_synth-room-nyud.py.
_base_ = ['./fgmoe_vit.py']
data_preprocessor = dict(mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375])
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch=dict(
            _delete_=True,  # replaces the base's arch name
            embed_dims=192,
            num_layers=4,
            num_heads=3,
            feedforward_channels=768),
        img_size=(224, 288),
        out_indices=(0, 1, 2, 3),
        frozen_stages=4,
        init_cfg=None),
    decode_head=dict(
        in_channels=[192, 192, 192, 192],
        channels=128,  # experts of h = 4 * 128 / 16 = 32 units
        agg_channels=64,
        # The same deformable mixer in plain PyTorch: ~5x faster than
        # mmcv's CPU kernel (use type='DCN' on GPU).
        mixer_cfg=dict(conv_cfg=dict(type='TorchDCN')),
        global_hidden_channels=128,
        global_task_embed_dims=128))
tta_model = dict(type='MultiTaskTTAModel')
