# Baseline: dense multi-task decoder. Same decoder as FGMoE, but every task
# FFN is a dense MLP of FGMoE's activated width ((top_k + shared) * h = 384
# hidden units), so it has the same FLOPs per token and no routing.
_base_ = ['../fgmoe_nyud.py']
model = dict(decode_head=dict(moe=False))
