# Ablation: FGMoE without shared experts (routed fine-grained experts only).
_base_ = ['../fgmoe_nyud.py']
model = dict(decode_head=dict(use_shared_experts=False))
