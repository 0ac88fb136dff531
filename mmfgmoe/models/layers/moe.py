# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Fine-grained mixture of experts: an FFN whose hidden dimension is cut into
experts, with always-on shared experts and sparse (sorted) dispatch.

References:

* FGMoE, "Multi-Task Dense Prediction Fine-Tuning with Mixture of
  Fine-Grained Experts" (Xu, Ye, Su; https://arxiv.org/abs/2507.19077):
  intra-task experts partition an MLP along its hidden dimension; shared
  experts hold what is common to all contexts of a task.
* DeepSeekMoE / DeepSeek-V2 (fine-grained + shared experts, gate module
  returning ``(weights, indices)``), Mixtral (top-k with renormalisation),
  MegaBlocks (dispatch by sorting), Switch Transformer (load-balancing loss
  ``N * sum_i f_i * P_i``).

Everything beyond the abstract (router form, renormalisation, the balance
loss, initialisation) is our choice; see the README,
"Differences from the paper".
"""
import math
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .mlp import Mlp

__all__ = [
    'GateOutput', 'RouterStats', 'TopKGate', 'FineGrainedMoE',
    'switch_balance_loss'
]


class GateOutput(NamedTuple):
    """What :class:`TopKGate` returns.

    Attributes:
        weights (Tensor): ``[T, k]`` combine weights of the chosen experts,
            in the input dtype.
        indices (Tensor): ``[T, k]`` int64 ids of the chosen experts.
        probs (Tensor): ``[T, E]`` float32 router probabilities (softmax over
            all experts), kept for the load-balancing statistic.
    """
    weights: Tensor
    indices: Tensor
    probs: Tensor


class RouterStats(NamedTuple):
    """Statistics of one router over one batch.

    The first three fields are always filled (the balance loss needs them);
    ``entropy`` and ``indices`` only when the caller asks for routing details
    (``return_routing=True``), so training pays nothing for them.

    The load statistics (``expert_fraction``, ``mean_prob``, ``counts``)
    cover the valid tokens only when the layer was given a ``valid`` mask
    (padding left out); the per-token fields cover every token.

    Attributes:
        expert_fraction (Tensor): ``[E]`` fraction ``f_i`` of the ``T * k``
            token-to-expert assignments that went to expert ``i`` (no
            gradient; sums to 1).
        mean_prob (Tensor): ``[E]`` mean router probability ``P_i`` over the
            tokens (float32, differentiable; sums to 1).
        counts (Tensor): ``[E]`` int64 number of assignments per expert
            (sums to ``T * k``).
        entropy (Tensor, optional): ``[...]`` the router's entropy
            ``-sum_i p_i log p_i`` of each token in nats (0 = certain,
            ``log E`` = uniform), in the input's leading shape (e.g.
            ``[B, L]``), so that callers can leave padding tokens out.
        indices (Tensor, optional): ``[..., k]`` experts chosen for each
            token, best first, in the input's leading shape (e.g.
            ``[B, L, k]``).
    """
    expert_fraction: Tensor
    mean_prob: Tensor
    counts: Tensor
    entropy: Optional[Tensor] = None
    indices: Optional[Tensor] = None


def switch_balance_loss(stats: Sequence[RouterStats]) -> Tensor:
    """Switch-Transformer load-balancing loss, averaged over routers.

    For one router with ``N`` experts the loss is ``N * sum_i f_i * P_i``; it
    equals 1 for perfectly balanced routing and grows as routing collapses.
    With ``top_k > 1`` the fractions count all ``T * k`` assignments.

    Args:
        stats (Sequence[RouterStats]): One entry per router (e.g. per task MoE
            layer). Must not be empty.

    Returns:
        Tensor: Scalar float32 loss (mean over routers).
    """
    if len(stats) == 0:
        raise ValueError('switch_balance_loss needs at least one RouterStats')
    losses = [
        s.mean_prob.numel() * torch.sum(s.expert_fraction * s.mean_prob)
        for s in stats
    ]
    return torch.stack(losses).mean()


class TopKGate(nn.Module):
    """Linear router: float32 softmax over experts, top-k, optional
    renormalisation of the chosen weights.

    Args:
        in_channels (int): Token channels ``D``.
        num_experts (int): Number of routed experts ``E``.
        top_k (int): Experts chosen per token (``1 <= top_k <= E``).
        renormalize (bool): Rescale the ``k`` chosen probabilities to sum to
            one (Mixtral); otherwise keep the raw softmax values
            (DeepSeek-V2, Switch Transformer). Must be False for ``top_k=1``
            (more than one expert). Defaults to True.
    """

    def __init__(self,
                 in_channels: int,
                 num_experts: int,
                 top_k: int,
                 renormalize: bool = True) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f'top_k must be in [1, num_experts={num_experts}]'
                             f', got {top_k}')
        if renormalize and top_k == 1 and num_experts > 1:
            # w / w == 1: the router would learn from the balance loss only.
            raise ValueError(
                'renormalize=True with top_k=1 makes every combine weight 1, '
                'so the task losses give the router no gradient; set '
                'renormalize=False (model.decode_head.renormalize in our '
                'configs): Switch Transformer scales the expert by its raw '
                'probability')
        self.num_experts = num_experts
        self.top_k = top_k
        self.renormalize = renormalize
        self.proj = nn.Linear(in_channels, num_experts, bias=False)

    def forward(self, x: Tensor) -> GateOutput:
        """Route tokens.

        Args:
            x (Tensor): ``[T, D]`` tokens.

        Returns:
            GateOutput: ``weights [T, k]`` (dtype of ``x``), ``indices [T, k]``
            and ``probs [T, E]`` (float32).
        """
        # Route in float32 even inside an autocast (AMP) region.
        with torch.autocast(device_type=x.device.type, enabled=False):
            logits = F.linear(x.float(),
                              self.proj.weight.float())  # [T, E] float32
            probs = logits.softmax(dim=-1)  # [T, E] float32
        weights, indices = probs.topk(self.top_k, dim=-1)  # [T, k], [T, k]
        if self.renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return GateOutput(weights.to(x.dtype), indices, probs)


def _count(ids: Tensor, num_bins: int) -> Tensor:
    """``[num_bins]`` int64 occurrences of each id in ``ids`` (ids in
    ``[0, num_bins)``): ``torch.bincount`` without its device sync."""
    return torch.zeros(num_bins, dtype=torch.long,
                       device=ids.device).scatter_add_(0, ids,
                                                       torch.ones_like(ids))


class FineGrainedMoE(nn.Module):
    """FFN ``D -> H -> D`` with its hidden dimension cut into experts.

    The dense reference FFN has ``H = mlp_ratio * D`` hidden units. It is cut
    into ``num_experts`` slices of ``h = H * expert_ratio / num_experts``
    units; expert ``i`` is ``(W1[:, slice_i], W2[slice_i, :])`` and the
    weights are stored stacked (``w1 [E, D, h]``, ``w2 [E, h, D]``). Each
    token goes to its ``top_k`` experts (sparse dispatch: every expert runs
    only on the tokens routed to it) and ``num_shared_experts`` further slices
    are always on, implemented as one dense MLP of hidden
    ``num_shared_experts * h``::

        y = b2 + Shared(x) + sum_{i in topk(x)} g_i(x) * E_i(x)

    so each token activates ``(top_k + num_shared_experts) * h`` hidden units.
    ``moe=False`` replaces the layer by a dense FFN of exactly that activated
    width (the "same FLOPs" baseline); ``num_experts``/``top_k``/
    ``expert_ratio`` give coarse MoE (e.g. 4 full-size experts:
    ``num_experts=4, expert_ratio=4``).

    Args:
        embed_dims (int): Token channels ``D``.
        mlp_ratio (float): ``H / D`` of the dense reference FFN. Defaults to 4.
        num_experts (int): Routed experts ``E``. Defaults to 16.
        top_k (int): Routed experts per token. Defaults to 4.
        num_shared_experts (int): Always-on slices (0 disables shared
            experts). Defaults to 2.
        expert_ratio (float): Scales the expert width ``h``. Defaults to 1.
        moe (bool): False gives the dense FFN of the activated width.
            Defaults to True.
        renormalize (bool): See :class:`TopKGate`. Defaults to True.
        act_layer (Callable[[], nn.Module]): Activation class. Defaults to
            :class:`torch.nn.GELU`.
        dispatch (str): ``'sorted'`` (sparse dispatch, the default) or
            ``'masked'`` (every expert on every token, then masked: the slow
            reference, kept for tests and benchmarks).
    """

    #: Values of ``dispatch``; each names the method ``experts_<mode>``.
    DISPATCH_MODES = ('sorted', 'masked')

    def __init__(self,
                 embed_dims: int,
                 mlp_ratio: float = 4.,
                 num_experts: int = 16,
                 top_k: int = 4,
                 num_shared_experts: int = 2,
                 expert_ratio: float = 1.,
                 moe: bool = True,
                 renormalize: bool = True,
                 act_layer: Callable[[], nn.Module] = nn.GELU,
                 dispatch: str = 'sorted') -> None:
        super().__init__()
        if num_experts < 1 or num_shared_experts < 0:
            raise ValueError('num_experts must be >= 1 and num_shared_experts'
                             f' >= 0, got {num_experts}, {num_shared_experts}')
        expert_hidden = int(
            round(embed_dims * mlp_ratio * expert_ratio / num_experts))
        if expert_hidden < 1:
            raise ValueError(
                f'expert width h = D*mlp_ratio*expert_ratio/num_experts = '
                f'{embed_dims}*{mlp_ratio}*{expert_ratio}/{num_experts} < 1')
        self.embed_dims = embed_dims
        self.num_experts = num_experts
        self.top_k = top_k
        self.num_shared_experts = num_shared_experts
        self.expert_hidden = expert_hidden
        #: Hidden units each token activates (routed + shared).
        self.activated_hidden = (top_k + num_shared_experts) * expert_hidden
        self.moe = moe
        if not moe:
            self.dense = Mlp(embed_dims,
                             self.activated_hidden,
                             act_layer=act_layer)
            return

        self.gate = TopKGate(embed_dims, num_experts, top_k, renormalize)
        self.w1 = nn.Parameter(
            torch.empty(num_experts, embed_dims, expert_hidden))  # [E, D, h]
        self.b1 = nn.Parameter(torch.empty(num_experts,
                                           expert_hidden))  # [E, h]
        self.w2 = nn.Parameter(
            torch.empty(num_experts, expert_hidden, embed_dims))  # [E, h, D]
        self.b2 = nn.Parameter(torch.empty(embed_dims))  # [D]
        self.act = act_layer()
        # The second-layer bias lives in ``b2`` (applied once), so the shared
        # MLP has none.
        self.shared = Mlp(embed_dims,
                          num_shared_experts * expert_hidden,
                          act_layer=act_layer,
                          bias=(True,
                                False)) if num_shared_experts > 0 else None
        if dispatch not in self.DISPATCH_MODES:
            raise ValueError(f'dispatch must be one of {self.DISPATCH_MODES}, '
                             f'got {dispatch!r}')
        self.dispatch = dispatch
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise routed and shared experts like ``nn.Linear`` layers of
        the dense FFN whose hidden width is the activated width (fan-in ``D``
        for layer 1, ``activated_hidden`` for layer 2)."""
        if not self.moe:
            return
        bound1 = 1. / math.sqrt(self.embed_dims)
        bound2 = 1. / math.sqrt(self.activated_hidden)
        nn.init.uniform_(self.w1, -bound1, bound1)
        nn.init.uniform_(self.b1, -bound1, bound1)
        nn.init.uniform_(self.w2, -bound2, bound2)
        nn.init.uniform_(self.b2, -bound2, bound2)
        if self.shared is not None:
            # Its own nn.Linear init would use the fan-in of the shared
            # slices alone, sqrt(activated / shared) times larger.
            nn.init.uniform_(self.shared.fc2.weight, -bound2, bound2)

    def _expert(self, w1: Tensor, b1: Tensor, w2: Tensor, tokens: Tensor,
                gate: Tensor) -> Tensor:
        """One expert (``w1 [D, h]``, ``b1 [h]``, ``w2 [h, D]``) on
        ``tokens [n, D]``, scaled by ``gate [n]`` -> ``[n, D]`` (no ``b2``).

        The gate scales the ``h``-wide hidden activations, which equals
        scaling the ``D``-wide output (``g * (a W2) = (g * a) W2``) at a
        quarter of the cost for ``mlp_ratio=4``.
        """
        hidden = self.act(torch.addmm(b1, tokens, w1))  # [n, h]
        # Under autocast the fp32 gate promotes this product to fp32: the
        # router's gradient (its only task-loss signal, loss-scaled in fp16)
        # is then reduced over ``h`` in fp32, not in half precision.
        return (hidden * gate.unsqueeze(-1)) @ w2  # [n, D]

    def experts_sorted(self, x: Tensor, weights: Tensor, indices: Tensor,
                       counts: Tensor, out: Tensor) -> Tensor:
        """Sparse dispatch by sorting; adds the routed experts into ``out``.

        The ``T * k`` (token, slot) assignments are sorted by expert id so
        each expert's tokens are contiguous; each non-empty expert runs once on
        its slice (its outputs scaled by the gate weights) and ``index_add_``
        adds them onto their tokens in ``out``, in place. Accumulating into
        the shared experts' output saves the concatenation of all expert
        outputs, a zero-filled buffer and a full-size sum (~15% of the
        layer's forward+backward time on CPU, measured against the
        concatenate-then-scatter version).

        ``split``/``unbind`` (not slicing in a loop) keep the backward pass
        linear in the number of tokens: their gradients are one concatenation
        / stack instead of one zero-filled full-size tensor per expert.

        Args:
            x (Tensor): ``[T, D]`` tokens.
            weights (Tensor): ``[T, k]`` combine weights.
            indices (Tensor): ``[T, k]`` expert ids.
            counts (Tensor): ``[E]`` assignments per expert
                (``RouterStats.counts``).
            out (Tensor): ``[T, D]`` what the routed experts add to (shared
                experts' output and bias); modified in place.

        Returns:
            Tensor: ``out``.
        """
        top_k = indices.shape[1]
        flat_ids = indices.reshape(-1)  # [T*k], slot-major within a token
        order = torch.argsort(flat_ids, stable=True)  # [T*k] grouped by expert
        token_of_slot = order // top_k  # [T*k] token of each sorted slot
        gathered = x.index_select(0, token_of_slot)  # [T*k, D] sorted tokens
        gates = weights.reshape(-1).index_select(0, order)  # [T*k] sorted
        sizes = counts.tolist()  # the one host sync
        experts = zip(self.w1.unbind(0), self.b1.unbind(0), self.w2.unbind(0),
                      gathered.split(sizes), gates.split(sizes),
                      token_of_slot.split(sizes))  # per expert, contiguous
        for w1, b1, w2, tokens, gate, token_ids in experts:
            if token_ids.numel() == 0:  # empty experts cost nothing
                continue
            routed = self._expert(w1, b1, w2, tokens, gate)  # [count_e, D]
            # Under autocast the experts run in bf16/fp16 while ``out``
            # (which holds the fp32 bias) is fp32.
            out.index_add_(0, token_ids, routed.to(out.dtype))
        return out

    def experts_masked(self, x: Tensor, weights: Tensor, indices: Tensor,
                       counts: Tensor, out: Tensor) -> Tensor:
        """Reference: every expert on every token, masked by the routing.

        Same arguments and result as :meth:`experts_sorted` (but ``out`` is
        not modified), ``E / k`` times the FLOPs. For tests and benchmarks
        only.

        Args:
            x (Tensor): ``[T, D]`` tokens.
            weights (Tensor): ``[T, k]`` combine weights (dtype of ``x``).
            indices (Tensor): ``[T, k]`` int64 expert ids in ``[0, E)``.
            counts (Tensor): ``[E]`` assignments per expert; unused here
                (kept for the signature shared with :meth:`experts_sorted`).
            out (Tensor): ``[T, D]`` what the routed experts add to (shared
                experts' output and bias); not modified.

        Returns:
            Tensor: ``[T, D]``, a new tensor: ``out`` plus the routed
            experts' gate-weighted outputs.
        """
        hidden = self.act(
            torch.einsum('td,edh->eth', x, self.w1) +
            self.b1.unsqueeze(1))  # [E, T, h]
        routed = torch.einsum('eth,ehd->etd', hidden, self.w2)  # [E, T, D]
        dense_weights = x.new_zeros(x.shape[0], self.num_experts).scatter_add(
            1, indices, weights)  # [T, E], zero where not routed
        return out + torch.einsum('te,etd->td', dense_weights,
                                  routed)  # [T, D]

    def forward(
            self,
            x: Tensor,
            return_routing: bool = False,
            valid: Optional[Tensor] = None
    ) -> Tuple[Tensor, Optional[RouterStats]]:
        """Apply the layer to tokens.

        Args:
            x (Tensor): ``[..., D]`` tokens (e.g. ``[B, L, D]``).
            return_routing (bool): Also fill ``RouterStats.entropy`` and
                ``RouterStats.indices``. Defaults to False.
            valid (Tensor, optional): ``[...]`` bool, False on tokens that
                the load statistics (and so the balance loss) must leave
                out, such as padding. Every token is still routed and
                computed. Defaults to None (all valid).

        Returns:
            tuple[Tensor, RouterStats | None]: Output ``[..., D]`` and the
            router statistics of this call (None when ``moe=False``).
        """
        if not self.moe:
            return self.dense(x), None
        shape = x.shape
        tokens = x.reshape(-1, self.embed_dims)  # [T, D]
        weights, indices, probs = self.gate(tokens)  # [T,k], [T,k], [T,E]
        if self.shared is not None:
            out = self.shared(tokens) + self.b2  # [T, D]
        else:
            out = self.b2.expand_as(tokens).clone()  # [T, D], writable
        stats, counts = self._router_stats(indices, probs, valid)
        run_experts = getattr(self, f'experts_{self.dispatch}')
        out = run_experts(tokens, weights, indices, counts, out)  # [T, D]
        if return_routing:
            stats = stats._replace(
                entropy=self._router_entropy(probs).view(shape[:-1]),
                indices=indices.view(*shape[:-1], self.top_k))
        return out.view(shape), stats

    def _router_stats(self,
                      indices: Tensor,
                      probs: Tensor,
                      valid: Optional[Tensor] = None
                      ) -> Tuple[RouterStats, Tensor]:
        """``f`` (fraction of assignments, no grad), ``P`` (mean prob) and
        the assignment counts over the ``valid`` tokens, and the ``[E]``
        assignment counts of all tokens (what dispatch runs).

        The mask enters as arithmetic, not as boolean indexing, and the
        counts come from ``scatter_add_``, not ``torch.bincount``: on CUDA
        both wait for the GPU (bincount reads the ids' min and max), once
        per layer and step each.
        """
        num_experts = self.num_experts
        if valid is None:
            keep = indices.new_ones(indices.shape[0], 1, dtype=torch.bool)
        else:
            keep = valid.reshape(-1, 1)  # [T, 1] bool
        # The slots of padding tokens count in bins E..2E-1.
        split = _count(
            torch.where(keep, indices, indices + num_experts).reshape(-1),
            2 * num_experts).view(2, num_experts)
        counts = split[0]  # [E], valid tokens
        num_valid = keep.sum()
        fraction = counts.to(probs.dtype) / (num_valid *
                                             self.top_k).clamp_min(1)
        mean_prob = (probs * keep).sum(0) / num_valid.clamp_min(1)  # [E]
        return RouterStats(fraction, mean_prob, counts), split.sum(0)

    @staticmethod
    @torch.no_grad()
    def _router_entropy(probs: Tensor) -> Tensor:
        """``[T]`` entropy ``-sum_i p_i log p_i`` of ``probs [T, E]``."""
        return -(probs * probs.clamp_min(1e-12).log()).sum(-1)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, moe={self.moe}, '
                f'num_experts={self.num_experts}, top_k={self.top_k}, '
                f'num_shared_experts={self.num_shared_experts}, '
                f'expert_hidden={self.expert_hidden}')
