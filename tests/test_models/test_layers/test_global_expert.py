# Copyright (c) mmfgmoe contributors. All rights reserved.
"""GlobalExpert: gate in [0, 1], depends on token and task; experts run
once."""
import pytest
import torch

from mmfgmoe.models.layers import GlobalExpert


def test_gate_in_unit_interval_and_depends_on_token_and_task():
    torch.manual_seed(0)
    expert = GlobalExpert(16, tasks=['a', 'b', 'c'], hidden_channels=16)
    x = torch.randn(2, 10, 16)
    out, scale = expert(x)
    assert out.shape == (3, 2, 10, 16) and scale.shape == (3, 2, 10, 1)
    assert ((scale >= 0) & (scale <= 1)).all()
    # Depends on the token: same task, different tokens differ.
    assert scale[0].std() > 0
    # Depends on the task: same token, different tasks differ.
    assert not torch.allclose(scale[0], scale[1])
    assert not torch.allclose(scale[1], scale[2])
    # Output of task t is g_t(x) * E_g(x) with E_g shared by the tasks.
    shared = expert.experts[0](x)
    for t in range(3):
        torch.testing.assert_close(out[t], scale[t] * shared)


def test_expert_computed_once_for_all_tasks():
    expert = GlobalExpert(8, tasks=['a', 'b', 'c', 'd'], hidden_channels=8)
    calls = []
    expert.experts[0].register_forward_hook(lambda *args: calls.append(1))
    expert(torch.randn(5, 8))
    assert len(calls) == 1


def test_gate_can_close():
    """A very negative gate bias closes the transfer for every task."""
    expert = GlobalExpert(8, tasks=['a', 'b'], hidden_channels=8)
    with torch.no_grad():
        expert.gate_token.bias.fill_(-50.)
    out, scale = expert(torch.randn(4, 8))
    assert scale.max() < 1e-6 and out.abs().max() < 1e-4


def test_multiple_global_experts_softmax_times_scale():
    torch.manual_seed(0)
    expert = GlobalExpert(8, tasks=['a', 'b'], hidden_channels=8,
                          num_experts=3)
    x = torch.randn(6, 8)
    scale, mix = expert.gates(x)
    assert mix.shape == (2, 6, 3) and scale.shape == (2, 6, 1)
    torch.testing.assert_close(mix.sum(-1), torch.ones(2, 6))
    out, _ = expert(x)
    outs = torch.stack([e(x) for e in expert.experts], dim=-1)  # [6, 8, 3]
    for t in range(2):
        want = scale[t] * (outs * mix[t].unsqueeze(1)).sum(-1)
        torch.testing.assert_close(out[t], want)
    out.sum().backward()
    for name, param in expert.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), \
            name


def test_invalid_arguments():
    with pytest.raises(ValueError, match='distinct tasks'):
        GlobalExpert(8, tasks=[], hidden_channels=8)
    with pytest.raises(ValueError, match='distinct tasks'):
        GlobalExpert(8, tasks=['a', 'a'], hidden_channels=8)


def test_task_embeddings_follow_the_task_name_not_its_position():
    torch.manual_seed(0)
    expert = GlobalExpert(8, tasks=['semseg', 'depth'], hidden_channels=8)
    swapped = GlobalExpert(8, tasks=['depth', 'semseg'], hidden_channels=8)
    swapped.load_state_dict(expert.state_dict())
    x = torch.randn(5, 8)
    out, scale = expert(x)
    out_swapped, scale_swapped = swapped(x)
    torch.testing.assert_close(scale_swapped, scale.flip(0))
    torch.testing.assert_close(out_swapped, out.flip(0))
