# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Global expert: computed once on the shared features, gated per task.

Reference: FGMoE (https://arxiv.org/abs/2507.19077) — "a global expert that
facilitates adaptive knowledge transfer across tasks based on both input
feature and task requirements". The gate form below (a sigmoid of a linear
map of ``[token; task embedding]``) is our choice (README, "Differences
from the paper").
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .mlp import Mlp

__all__ = ['GlobalExpert']


class GlobalExpert(nn.Module):
    """Expert(s) shared by all tasks with a token- and task-dependent gate.

    With one expert ``E_g`` the output for task ``t`` is
    ``g_t(x) * E_g(x)`` where ``g_t(x) = sigmoid(W_g [x; e_t] + b)`` and
    ``e_t`` is a learned task embedding. With ``M > 1`` experts the gate
    produces ``M + 1`` logits: a softmax over the first ``M`` mixes the
    experts and a sigmoid of the last one scales the mixture, so the output is
    ``s_t(x) * sum_j softmax(l_t(x))_j E_j(x)``. ``E_j(x)`` are computed once
    and shared by all tasks; with the scale near 0 a task refuses transfer.

    ``W_g [x; e_t] = W_x x + W_e e_t``: the token part is computed once, the
    task part per task. The task embeddings are keyed by task name (like the
    task branches), so a checkpoint loads into a config that lists the same
    tasks in another order.

    Args:
        embed_dims (int): Token channels ``D``.
        tasks (Sequence[str]): The tasks ``T``, in output order.
        hidden_channels (int): Hidden width of each global expert FFN.
        num_experts (int): Number of global experts ``M``. Defaults to 1.
        task_embed_dims (int, optional): Task embedding size. Defaults to
            ``embed_dims``.
        act_layer (Callable[[], nn.Module]): Activation class. Defaults to
            :class:`torch.nn.GELU`.
    """

    def __init__(self,
                 embed_dims: int,
                 tasks: Sequence[str],
                 hidden_channels: int,
                 num_experts: int = 1,
                 task_embed_dims: Optional[int] = None,
                 act_layer: Callable[[], nn.Module] = nn.GELU) -> None:
        super().__init__()
        if len(tasks) < 1 or len(set(tasks)) != len(tasks) or num_experts < 1:
            raise ValueError('GlobalExpert needs distinct tasks (at least '
                             f'one) and num_experts >= 1, got tasks={tasks}, '
                             f'num_experts={num_experts}')
        task_embed_dims = task_embed_dims or embed_dims
        self.embed_dims = embed_dims
        self.tasks = list(tasks)
        self.num_experts = num_experts
        self.experts = nn.ModuleList(
            Mlp(embed_dims, hidden_channels, act_layer=act_layer)
            for _ in range(num_experts))
        # One logit (sigmoid gate) for a single expert; M mixture logits plus
        # one scale logit otherwise.
        num_logits = 1 if num_experts == 1 else num_experts + 1
        # N(0, 1) like nn.Embedding.
        self.task_embed = nn.ParameterDict({
            task: nn.Parameter(torch.randn(task_embed_dims))
            for task in self.tasks
        })
        self.gate_token = nn.Linear(embed_dims, num_logits)  # W_x, b
        self.gate_task = nn.Linear(task_embed_dims, num_logits,
                                   bias=False)  # W_e

    def gates(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-task gate values.

        Args:
            x (Tensor): ``[..., D]`` tokens.

        Returns:
            tuple[Tensor, Tensor]: ``scale [T, ..., 1]`` in ``[0, 1]`` and
            ``mix [T, ..., M]`` (softmax over experts; all ones when
            ``M == 1``).
        """
        token_logits = self.gate_token(x)  # [..., n_logits]
        task_embed = torch.stack([self.task_embed[t]
                                  for t in self.tasks])  # [T, d_e]
        task_logits = self.gate_task(task_embed)  # [T, n_logits]
        view = (len(self.tasks), ) + (1, ) * (x.dim() - 1) + (-1, )
        logits = token_logits.unsqueeze(0) + task_logits.view(
            view)  # [T, ..., n_logits]
        if self.num_experts == 1:
            scale = logits.sigmoid()  # [T, ..., 1]
            return scale, torch.ones_like(scale)
        scale = logits[..., -1:].sigmoid()  # [T, ..., 1]
        mix = logits[..., :-1].softmax(dim=-1)  # [T, ..., M]
        return scale, mix

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Compute the experts once and gate them for every task.

        Args:
            x (Tensor): ``[..., D]`` shared tokens.

        Returns:
            tuple[Tensor, Tensor]: Per-task outputs ``[T, ..., D]`` and the
            gate scale ``[T, ..., 1]`` (in ``[0, 1]``).
        """
        scale, mix = self.gates(x)
        if self.num_experts == 1:
            mixed = self.experts[0](x).unsqueeze(0)  # [1, ..., D]
        else:
            outs = torch.stack([expert(x) for expert in self.experts],
                               dim=-1)  # [..., D, M]
            mixed = torch.einsum('...dm,t...m->t...d', outs,
                                 mix)  # [T, ..., D]
        return scale * mixed, scale
