# FGMoE, ViT-B/16 (ImageNet-21k pre-trained, 1k fine-tuned; frozen), NYUD-v2
# (semseg 40 classes, depth, normals, edge), 448x576 crops, batch 4, Adam,
# 40k iterations with polynomial decay (the InvPT / MLoRE protocol).
# mmseg-style name: fgmoe_vit-b16_1xb4-40k_nyud-448x576.
_base_ = [
    './_base_/models/fgmoe_vit.py', './_base_/datasets/nyud.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_40k.py'
]
tasks = ['semseg', 'depth', 'normals', 'edge']
# mmpretrain "vit-base-p16_in21k-pre_3rdparty_in1k-384px" (Google AugReg).
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/vit/finetune/vit-base-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_20210928-98e8652b.pth'  # noqa: E501
model = dict(
    # These weights were trained on inputs scaled to [-1, 1]; a frozen
    # encoder must see the same normalisation.
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5],
                           std=[127.5, 127.5, 127.5]),
    backbone=dict(img_size=(448, 576),
                  init_cfg=dict(type='Pretrained',
                                checkpoint=checkpoint,
                                prefix='backbone.')),
    decode_head=dict(tasks=tasks, num_classes=dict(semseg=40)))
# One task list for the model and the data (train on a subset by editing it).
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
# Flip test-time augmentation (python tools/test.py ... --tta): the image is
# flipped before the labels are loaded, the model flips predictions back.
tta_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='TestTimeAug',
         transforms=[[
             dict(type='MultiTaskRandomFlip', prob=0., direction='horizontal'),
             dict(type='MultiTaskRandomFlip', prob=1., direction='horizontal')
         ], [dict(type='LoadMultiTaskAnnotations')],
                     [dict(type='PackMultiTaskInputs')]])
]
