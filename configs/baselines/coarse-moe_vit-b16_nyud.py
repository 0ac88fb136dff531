# Baseline: coarse MoE: a few large experts (as in M3ViT, but each task has
# its own experts, like FGMoE's), a per-task (so task-conditioned) top-1
# router, no shared experts. 4 experts of
# h = 4 * 256 * 1.5 / 4 = 384 hidden units: the same activated width per
# token as FGMoE (4 routed + 2 shared experts of 64 units). The chosen expert
# is scaled by its raw router probability (Switch Transformer): renormalised,
# a top-1 weight is always 1 and the router would get no task gradient.
_base_ = ['../fgmoe_nyud.py']
model = dict(decode_head=dict(
    num_experts=4,
    top_k=1,
    renormalize=False,
    expert_ratio=1.5,
    use_shared_experts=False))
