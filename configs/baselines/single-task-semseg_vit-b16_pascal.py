# Baseline for the multi-task delta (Δm): the FGMoE decoder trained on
# semseg alone (same frozen ViT-B/16, schedule and data).
_base_ = ['../fgmoe_pascal.py']
tasks = ['semseg']
model = dict(decode_head=dict(tasks=tasks))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
