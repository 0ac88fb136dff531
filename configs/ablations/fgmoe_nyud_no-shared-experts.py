# Ablation: FGMoE without shared experts (routed fine-grained experts only).
# Only the switch changes, as in an ablation table: the activated width per
# token drops from 384 (4 routed + 2 shared experts of 64 units) to 256, and
# the decoder loses the shared slices' parameters and FLOPs.
_base_ = ['../fgmoe_nyud.py']
model = dict(decode_head=dict(use_shared_experts=False))
