# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Accumulate what the experts of an FGMoE decoder do over a whole split.

Fed with :class:`~mmfgmoe.models.decode_heads.HeadRouting` records (one per
batch), :class:`RoutingAccumulator` counts, per task and MoE layer, the
token-to-expert assignments, their co-occurrence with the semantic class
under each token, the router entropy, and the distribution of the global
expert's gate (overall and per class). ``tools/analysis_tools/
analyze_routing.py`` turns the summary into figures.
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

__all__ = ['RoutingAccumulator', 'routing_summary']


def routing_summary(fraction: torch.Tensor) -> Dict[str, float]:
    """Load-distribution statistics of one router.

    Args:
        fraction (Tensor): ``[E]`` fraction of the token-to-expert
            assignments each expert received (sums to 1).

    Returns:
        dict: ``max_over_mean`` (1 = perfectly balanced, E = one expert takes
        everything), ``entropy`` normalised to [0, 1] (1 = uniform) and
        ``empty`` (number of experts that received no token).
    """
    num_experts = fraction.numel()
    nonzero = fraction[fraction > 0]
    entropy = float(-(nonzero * nonzero.log()).sum())
    return dict(
        max_over_mean=float(fraction.max() * num_experts),
        entropy=entropy / math.log(num_experts) if num_experts > 1 else 1.,
        empty=float((fraction == 0).sum()))


class RoutingAccumulator:
    """Running routing statistics of one :class:`FGMoEHead` over a split.

    All statistics count only the tokens marked valid (not padding), so
    they describe the images, not the padding.

    Args:
        tasks (Sequence[str]): The head's tasks, in order.
        num_experts (int): Routed experts per MoE layer ``E`` (0 for a dense
            decoder: only the global gate is accumulated).
        num_layers (int): MoE layers per task branch.
        class_names (Sequence[str], optional): Names of the semantic classes
            ``C``; when given, :meth:`update` takes per-token class ids and
            expert x class co-occurrence is counted.
        ignore_index (int): Class id that marks unlabelled tokens. Defaults
            to 255.
        gate_bins (int): Histogram bins of the global gate values (edges
            ``linspace(0, 1, gate_bins + 1)``). Defaults to 20.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 num_experts: int,
                 num_layers: int,
                 class_names: Optional[Sequence[str]] = None,
                 ignore_index: int = 255,
                 gate_bins: int = 20) -> None:
        if gate_bins < 1:
            raise ValueError(f'RoutingAccumulator: gate_bins must be >= 1, '
                             f'got {gate_bins}')
        self.tasks = list(tasks)
        self.gate_bins = gate_bins
        self.num_experts = num_experts
        self.num_layers = num_layers
        self.class_names = list(class_names) if class_names else None
        self.ignore_index = ignore_index
        num_classes = len(self.class_names) if self.class_names else 0
        shape = (len(self.tasks), num_layers)
        self.counts = torch.zeros(*shape, num_experts, dtype=torch.long)
        self.cooccurrence = torch.zeros(*shape,
                                        num_experts,
                                        num_classes,
                                        dtype=torch.long)
        self.entropy_sum = torch.zeros(shape, dtype=torch.float64)
        self.num_tokens = 0  # valid tokens seen
        self.class_tokens = torch.zeros(num_classes, dtype=torch.long)
        # Global gate: sum, sum of squares, histogram, sum per class.
        self.has_gate = False
        self.gate_sum = torch.zeros(len(self.tasks), dtype=torch.float64)
        self.gate_sq_sum = torch.zeros(len(self.tasks), dtype=torch.float64)
        self.gate_hist = torch.zeros(len(self.tasks),
                                     gate_bins,
                                     dtype=torch.long)
        self.gate_class_sum = torch.zeros(len(self.tasks),
                                          num_classes,
                                          dtype=torch.float64)

    @torch.no_grad()
    def update(self,
               routing,
               valid: Tensor,
               semantic: Optional[Tensor] = None) -> None:
        """Add one batch.

        Args:
            routing (HeadRouting): From :meth:`FGMoEHead.forward_routing`.
            valid (Tensor): ``[B, H, W]`` bool, the tokens that cover the
                image (False on padding), on the token grid.
            semantic (Tensor, optional): ``[B, H, W]`` int64 class id of each
                token (``ignore_index`` where unlabelled); required when the
                accumulator has ``class_names``.
        """
        if self.class_names is not None and semantic is None:
            raise ValueError('RoutingAccumulator has class_names: update() '
                             'needs the per-token semantic labels')
        valid = valid.cpu()
        num_classes = len(self.class_names) if self.class_names else 0
        labels = keep = None
        if self.class_names is not None:
            labels = semantic.cpu()[valid]  # [N]
            keep = labels != self.ignore_index  # [N]
            self.class_tokens += torch.bincount(labels[keep],
                                                minlength=num_classes)
        self.num_tokens += int(valid.sum())
        for t, task in enumerate(self.tasks):
            layers = routing.router_stats.get(task, [])
            if len(layers) != self.num_layers:
                raise ValueError(
                    f'RoutingAccumulator: task {task!r} has {len(layers)} MoE '
                    f'layers in this batch, expected {self.num_layers}')
            for i, stats in enumerate(layers):
                indices = stats.indices.cpu()  # [B, L, k]
                indices = indices.view(*valid.shape,
                                       indices.shape[-1])[valid]  # [N, k]
                self.counts[t, i] += torch.bincount(
                    indices.flatten(), minlength=self.num_experts)
                entropy = stats.entropy.cpu().view(valid.shape)[valid]  # [N]
                self.entropy_sum[t, i] += float(entropy.double().sum())
                if labels is not None:
                    pairs = indices[keep] * num_classes + labels[keep, None]
                    self.cooccurrence[t, i] += torch.bincount(
                        pairs.flatten(),
                        minlength=self.num_experts * num_classes).view(
                            self.num_experts, num_classes)
            if routing.global_gate is not None:
                self.has_gate = True
                gate = routing.global_gate[t].detach().cpu().double()[
                    valid]  # [N]
                self.gate_sum[t] += gate.sum()
                self.gate_sq_sum[t] += (gate * gate).sum()
                bins = (gate * self.gate_bins).long().clamp_(
                    0, self.gate_bins - 1)
                self.gate_hist[t] += torch.bincount(bins,
                                                    minlength=self.gate_bins)
                if labels is not None:
                    self.gate_class_sum[t].index_add_(0, labels[keep],
                                                      gate[keep])

    def summary(self) -> Dict:
        """JSON-ready summary.

        Returns:
            dict: ``num_tokens``, ``num_experts``, ``class_names``,
            ``class_tokens`` and per task ``layers`` (one dict per MoE layer:
            ``counts`` [E], ``fraction`` [E] (sums to 1), ``max_over_mean``,
            ``entropy`` (of the load, normalised to [0, 1]), ``empty``,
            ``router_entropy`` (mean per-token router entropy, nats),
            ``cooccurrence`` [E][C] assignment counts) and ``global_gate``
            (``mean``, ``std``, ``histogram`` over ``gate_bins`` bins of
            [0, 1], ``by_class`` mean per class; None without a global
            expert).
        """
        tokens = max(self.num_tokens, 1)
        out: Dict = dict(num_tokens=self.num_tokens,
                         num_experts=self.num_experts,
                         class_names=self.class_names,
                         class_tokens=self.class_tokens.tolist(),
                         tasks={})
        for t, task in enumerate(self.tasks):
            layers: List[Dict] = []
            for i in range(self.num_layers):
                counts = self.counts[t, i]
                fraction = counts.double() / max(int(counts.sum()), 1)
                layer = dict(counts=counts.tolist(),
                             fraction=fraction.tolist(),
                             router_entropy=float(self.entropy_sum[t, i]) /
                             tokens,
                             max_entropy=math.log(self.num_experts))
                layer.update(routing_summary(fraction))
                if self.class_names is not None:
                    layer['cooccurrence'] = self.cooccurrence[t, i].tolist()
                layers.append(layer)
            gate = None
            if self.has_gate:
                mean = float(self.gate_sum[t]) / tokens
                var = max(float(self.gate_sq_sum[t]) / tokens - mean**2, 0.)
                gate = dict(mean=mean,
                            std=math.sqrt(var),
                            histogram=self.gate_hist[t].tolist())
                if self.class_names is not None:
                    by_class = self.gate_class_sum[t] / \
                        self.class_tokens.clamp(min=1)
                    gate['by_class'] = {
                        name: float(by_class[c])
                        for c, name in enumerate(self.class_names)
                        if self.class_tokens[c] > 0
                    }
            out['tasks'][task] = dict(layers=layers, global_gate=gate)
        return out
