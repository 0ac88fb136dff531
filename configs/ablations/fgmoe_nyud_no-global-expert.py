# Ablation: FGMoE without the global expert (no cross-task transfer branch).
_base_ = ['../fgmoe_nyud.py']
model = dict(decode_head=dict(use_global_expert=False))
