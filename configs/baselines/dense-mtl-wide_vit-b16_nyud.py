# Baseline: dense multi-task decoder with FGMoE's trainable parameters. Every
# task FFN is a dense MLP of 6 * h = 1152 hidden units
# (h = 4 * 256 * 3 / 16 = 192): as many as FGMoE's 16 routed + 2 shared
# experts of 64 units together, so the same parameters but FGMoE's routers
# (256 * 16 weights per layer), and 3x FGMoE's FFN FLOPs per token. The
# parameter-matched counterpart of dense-mtl_vit-b16_nyud.py (FLOP-matched).
_base_ = ['../fgmoe_nyud.py']
model = dict(decode_head=dict(moe=False, expert_ratio=3))
