# FGMoE, ViT-B/16 (ImageNet-21k pre-trained, 1k fine-tuned; frozen),
# PASCAL-Context multi-task (semseg 21, human parts 7, saliency, normals,
# edge), 512x512 crops, batch 4, Adam, 40k iterations, polynomial decay.
# mmseg-style name: fgmoe_vit-b16_1xb4-40k_pascal-context-512x512.
_base_ = [
    './_base_/models/fgmoe_vit.py', './_base_/datasets/pascal_context.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_40k.py'
]
tasks = ['semseg', 'human_parts', 'saliency', 'normals', 'edge']
model = dict(
    # Test images (<= 500 px) are padded to the training size, as InvPT /
    # MLoRE pad to TEST.SCALE (the padding is cut off the predictions).
    data_preprocessor=dict(test_cfg=dict(_delete_=True, size=(512, 512))),
    backbone=dict(img_size=(512, 512)),
    decode_head=dict(tasks=tasks, num_classes=dict(semseg=21, human_parts=7)))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
