# Copyright (c) mmfgmoe contributors. All rights reserved.
"""FineGrainedMoE: sparse dispatch vs. dense references, shared experts,
balance statistics."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmfgmoe.models.layers import FineGrainedMoE, GateOutput, Mlp, TopKGate
from mmfgmoe.models.layers.moe import RouterStats, switch_balance_loss


def _masked_reference(moe: FineGrainedMoE, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, masked by the layer's own routing.

    Written independently of the layer's dispatch code: a Python loop over
    experts with full-width matmuls.
    """
    tokens = x.reshape(-1, moe.embed_dims)
    weights, indices, _ = moe.gate(tokens)
    out = torch.zeros_like(tokens) + moe.b2
    for expert in range(moe.num_experts):
        hidden = F.gelu(tokens @ moe.w1[expert] + moe.b1[expert])
        expert_out = hidden @ moe.w2[expert]  # [T, D] for all tokens
        gate = (weights * (indices == expert)).sum(dim=-1, keepdim=True)
        out = out + gate * expert_out
    if moe.shared is not None:
        out = out + moe.shared(tokens)
    return out.view(x.shape)


def _grads(outputs, params):
    loss = (outputs *
            torch.linspace(-1, 1, outputs.numel()).view_as(outputs)).sum()
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize('num_experts,top_k,num_shared',
                         [(16, 4, 2), (8, 1, 0), (4, 4, 1)])
def test_sparse_dispatch_matches_dense_reference(num_experts, top_k,
                                                 num_shared):
    torch.manual_seed(0)
    moe = FineGrainedMoE(32,
                         num_experts=num_experts,
                         top_k=top_k,
                         num_shared_experts=num_shared,
                         renormalize=top_k > 1)
    x = torch.randn(2, 37, 32, requires_grad=True)
    params = [x] + [p for p in moe.parameters()]
    out, stats = moe(x)
    ref = _masked_reference(moe, x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for got, want in zip(_grads(out, params), _grads(ref, params)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # The layer's own 'masked' mode agrees as well.
    moe.dispatch = 'masked'
    torch.testing.assert_close(moe(x)[0], out, atol=1e-5, rtol=1e-5)
    assert isinstance(stats, RouterStats)


@settings(max_examples=15, deadline=None)
@given(tokens=st.integers(0, 40),
       num_experts=st.integers(1, 9),
       data=st.data())
def test_sparse_dispatch_property(tokens, num_experts, data):
    top_k = data.draw(st.integers(1, num_experts))
    torch.manual_seed(tokens)
    moe = FineGrainedMoE(8,
                         mlp_ratio=2.,
                         num_experts=num_experts,
                         top_k=top_k,
                         num_shared_experts=0,
                         expert_ratio=float(num_experts),
                         renormalize=data.draw(st.booleans()) and top_k > 1)
    x = torch.randn(tokens, 8)
    out, _ = moe(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out,
                               _masked_reference(moe, x),
                               atol=1e-5,
                               rtol=1e-5)


def test_one_expert_top1_equals_dense_mlp():
    torch.manual_seed(0)
    moe = FineGrainedMoE(24,
                         mlp_ratio=4.,
                         num_experts=1,
                         top_k=1,
                         num_shared_experts=0)
    mlp = Mlp(24, 96)
    with torch.no_grad():
        mlp.fc1.weight.copy_(moe.w1[0].t())
        mlp.fc1.bias.copy_(moe.b1[0])
        mlp.fc2.weight.copy_(moe.w2[0].t())
        mlp.fc2.bias.copy_(moe.b2)
    x = torch.randn(3, 10, 24, requires_grad=True)
    out, _ = moe(x)
    ref = mlp(x)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    g_moe = _grads(out, [x, moe.w1, moe.w2])
    g_mlp = _grads(ref, [x, mlp.fc1.weight, mlp.fc2.weight])
    torch.testing.assert_close(g_moe[0], g_mlp[0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g_moe[1][0], g_mlp[1].t(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g_moe[2][0], g_mlp[2].t(), atol=1e-6, rtol=1e-6)


def test_shared_experts_always_contribute():
    torch.manual_seed(0)
    moe = FineGrainedMoE(16, num_experts=8, top_k=2, num_shared_experts=2)
    assert moe.shared.hidden_channels == 2 * moe.expert_hidden
    x = torch.randn(50, 16)
    with_shared, _ = moe(x)
    shared = moe.shared
    moe.shared = None
    without, _ = moe(x)
    moe.shared = shared
    diff = with_shared - without
    torch.testing.assert_close(diff, shared(x))
    # Every token gets a non-zero shared contribution, and the shared weights
    # get a gradient from every token.
    assert (diff.abs().sum(dim=-1) > 0).all()
    for i in range(0, x.shape[0], 10):
        moe.zero_grad()
        moe(x[i:i + 1])[0].sum().backward()
        assert shared.fc1.weight.grad.abs().sum() > 0


def test_empty_experts_are_skipped_and_get_zero_grad():
    torch.manual_seed(0)
    moe = FineGrainedMoE(16, num_experts=6, top_k=2, num_shared_experts=0)
    # A router whose logits favour experts 0 and 1 for every token.
    logits = torch.tensor([5., 4., 0., 0., 0., 0.])

    def fixed_gate(tokens):
        probs = logits.softmax(0).expand(tokens.shape[0], -1)
        weights, indices = probs.topk(2, dim=-1)
        return GateOutput(weights, indices, probs)

    moe.gate.forward = fixed_gate
    x = torch.randn(20, 16)
    out, stats = moe(x)
    out.sum().backward()
    assert torch.equal(stats.expert_fraction,
                       torch.tensor([.5, .5, 0., 0., 0., 0.]))
    assert moe.w1.grad[:2].abs().sum() > 0
    assert moe.w1.grad[2:].abs().sum() == 0
    assert moe.w2.grad[2:].abs().sum() == 0
    torch.testing.assert_close(out,
                               _masked_reference(moe, x),
                               atol=1e-5,
                               rtol=1e-5)


def test_no_tokens():
    moe = FineGrainedMoE(8, num_experts=4, top_k=2)
    out, stats = moe(torch.randn(0, 8))
    assert out.shape == (0, 8)
    assert torch.isfinite(switch_balance_loss([stats]))


def test_router_stats_counts_and_routing_on_request():
    torch.manual_seed(0)
    moe = FineGrainedMoE(16, num_experts=8, top_k=2, num_shared_experts=1)
    x = torch.randn(3, 10, 16)
    _, stats = moe(x)
    assert stats.entropy is None and stats.indices is None  # not requested
    _, detailed = moe(x, return_routing=True)
    with torch.no_grad():
        gate = moe.gate(x.reshape(-1, 16))  # the same routing, recomputed
    assert detailed.indices.shape == (3, 10, 2)
    assert torch.equal(detailed.indices.reshape(-1, 2), gate.indices)
    recount = torch.bincount(gate.indices.flatten(), minlength=8)
    assert torch.equal(detailed.counts, recount)
    assert torch.equal(stats.counts, recount)
    assert int(recount.sum()) == 3 * 10 * 2
    torch.testing.assert_close(detailed.expert_fraction, recount / 60.)
    entropy = -(gate.probs * gate.probs.log()).sum(-1)  # [T]
    torch.testing.assert_close(detailed.entropy, entropy.view(3, 10))
    assert 0 < float(entropy.min()) and float(entropy.max()) < math.log(8)


def test_valid_mask_restricts_the_load_statistics_only():
    # Padding tokens are routed and computed, but the balance statistics
    # (f, P, counts) describe the valid tokens alone.
    torch.manual_seed(0)
    moe = FineGrainedMoE(16, num_experts=8, top_k=2, num_shared_experts=1)
    x = torch.randn(2, 10, 16)
    valid = torch.zeros(2, 10, dtype=torch.bool)
    valid[0, :7] = valid[1, :3] = True
    out_all, _ = moe(x)
    out, stats = moe(x, valid=valid)
    torch.testing.assert_close(out, out_all)
    _, alone = moe(x[valid])  # the valid tokens on their own
    assert torch.equal(stats.counts, alone.counts)
    assert int(stats.counts.sum()) == 10 * 2
    torch.testing.assert_close(stats.expert_fraction, alone.expert_fraction)
    torch.testing.assert_close(stats.mean_prob, alone.mean_prob)
    _, unmasked = moe(x)
    assert not torch.equal(stats.counts, unmasked.counts)


def test_dense_ffn_of_activated_width():
    moe = FineGrainedMoE(32,
                         num_experts=16,
                         top_k=4,
                         num_shared_experts=2,
                         moe=False)
    assert moe.dense.hidden_channels == (4 + 2) * 8
    out, stats = moe(torch.randn(2, 5, 32))
    assert out.shape == (2, 5, 32) and stats is None


def test_dense_ffn_of_all_experts_has_fgmoe_parameters():
    """``expert_ratio=3`` widens the dense FFN to the 16 + 2 slices of
    FGMoE put together: the parameter-matched dense baseline."""
    def count(module):
        return sum(p.numel() for p in module.parameters())

    fgmoe = FineGrainedMoE(32, num_experts=16, top_k=4, num_shared_experts=2)
    wide = FineGrainedMoE(32,
                          num_experts=16,
                          top_k=4,
                          num_shared_experts=2,
                          expert_ratio=3.,
                          moe=False)
    assert wide.dense.hidden_channels == (16 + 2) * fgmoe.expert_hidden
    assert count(wide) == count(fgmoe) - count(fgmoe.gate) == \
        count(fgmoe) - 32 * 16


def test_coarse_moe_full_size_experts():
    moe = FineGrainedMoE(32,
                         num_experts=4,
                         top_k=1,
                         num_shared_experts=0,
                         expert_ratio=4.,
                         renormalize=False)
    assert moe.expert_hidden == 4 * 32


def test_gate_fp32_softmax_and_renormalisation():
    gate = TopKGate(16, 8, 3, renormalize=True).to(torch.bfloat16)
    x = torch.randn(10, 16, dtype=torch.bfloat16)
    weights, indices, probs = gate(x)
    assert probs.dtype == torch.float32 and weights.dtype == torch.bfloat16
    torch.testing.assert_close(weights.float().sum(-1),
                               torch.ones(10),
                               atol=1e-2,
                               rtol=0)
    assert indices.shape == (10, 3)
    # Routing stays float32 inside an autocast region too.
    with torch.autocast('cpu', dtype=torch.bfloat16):
        _, _, probs = TopKGate(16, 8, 3)(torch.randn(10, 16))
    assert probs.dtype == torch.float32
    raw = TopKGate(16, 8, 3, renormalize=False)
    weights, indices, probs = raw(x.float())
    torch.testing.assert_close(weights, probs.gather(1, indices))
    with pytest.raises(ValueError, match='top_k'):
        TopKGate(16, 4, 5)


def test_switch_balance_loss_values():
    num_experts = 4
    uniform = RouterStats(torch.full((num_experts, ), .25),
                          torch.full((num_experts, ), .25),
                          torch.full((num_experts, ), 3))
    collapsed = RouterStats(torch.tensor([1., 0., 0., 0.]),
                            torch.tensor([1., 0., 0., 0.]),
                            torch.tensor([12, 0, 0, 0]))
    assert switch_balance_loss([uniform]).item() == pytest.approx(1.)
    assert switch_balance_loss([collapsed]).item() == pytest.approx(4.)
    assert switch_balance_loss([uniform, collapsed]).item() == \
        pytest.approx(2.5)
    with pytest.raises(ValueError, match='at least one RouterStats'):
        switch_balance_loss([])


def test_balance_loss_gradient_reaches_router():
    moe = FineGrainedMoE(16, num_experts=4, top_k=2)
    _, stats = moe(torch.randn(30, 16))
    switch_balance_loss([stats]).backward()
    assert moe.gate.proj.weight.grad.abs().sum() > 0


def test_top1_router_learns_from_the_task_loss():
    torch.manual_seed(0)
    x = torch.randn(64, 16)
    moe = FineGrainedMoE(16, num_experts=4, top_k=1, num_shared_experts=0,
                         renormalize=False)
    moe(x)[0].square().sum().backward()  # task loss only, no balance loss
    assert moe.gate.proj.weight.grad.abs().sum() > 1e-3
    # Renormalised, every top-1 weight is w / w = 1: no gradient could reach
    # the router, so the combination is refused.
    with pytest.raises(ValueError, match='renormalize=False'):
        FineGrainedMoE(16, num_experts=4, top_k=1, renormalize=True)
    FineGrainedMoE(16, num_experts=1, top_k=1, renormalize=True)  # no choice


def test_init_matches_the_dense_ffn_of_the_activated_width():
    # Routed and shared layer-2 weights share the dense FFN's fan-in
    # (activated_hidden = 6 * 64 = 384): U(-1/sqrt(384), 1/sqrt(384)).
    torch.manual_seed(0)
    moe = FineGrainedMoE(256, num_experts=16, top_k=4, num_shared_experts=2)
    bound = 1 / math.sqrt(384)
    for weight in (moe.w2.detach(), moe.shared.fc2.weight.detach()):
        assert float(weight.abs().max()) <= bound
        assert float(weight.abs().max()) > 0.95 * bound
