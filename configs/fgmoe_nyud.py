# FGMoE, ViT-B/16 (ImageNet-21k pre-trained, 1k fine-tuned; frozen), NYUD-v2
# (semseg 40 classes, depth, normals, edge), 448x576 crops, batch 4, Adam,
# 40k iterations with polynomial decay (the InvPT / MLoRE protocol).
# mmseg-style name: fgmoe_vit-b16_1xb4-40k_nyud-448x576.
_base_ = [
    './_base_/models/fgmoe_vit.py', './_base_/datasets/nyud.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_40k.py'
]
tasks = ['semseg', 'depth', 'normals', 'edge']
model = dict(
    # Test images (425x560) are padded to the training size, as InvPT / MLoRE
    # pad to TEST.SCALE: the frozen ViT sees the 28x36 patch grid its
    # position embeddings were resized to (the padding is cut off the
    # predictions).
    data_preprocessor=dict(test_cfg=dict(_delete_=True, size=(448, 576))),
    backbone=dict(img_size=(448, 576)),
    decode_head=dict(tasks=tasks, num_classes=dict(semseg=40)))
# One task list for the model and the data (train on a subset by editing it).
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
