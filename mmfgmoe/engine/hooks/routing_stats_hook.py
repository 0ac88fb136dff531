# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Log what the experts do: load per expert and the global gate per task."""
import math
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS


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


@HOOKS.register_module()
class RoutingStatsHook(Hook):
    """Every ``interval`` training iterations, log per task and MoE layer the
    expert load (``max_over_mean``, normalised ``entropy``, ``empty``
    experts) and per task the mean global-expert gate, as scalars
    ``routing/<task>/layer<i>/<stat>`` and ``routing/<task>/global_gate``
    (mmengine's logger and every visualiser backend receive them).

    The statistics come from one extra no-grad forward of the decoder on the
    iteration's batch, so the training forward is untouched and a disabled
    hook (not in ``custom_hooks``) costs nothing. Only for
    :class:`FGMoEHead`-style heads (``forward_with_stats``).

    Args:
        interval (int): Log every ``interval`` iterations. Defaults to 50.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 50) -> None:
        if interval < 1:
            raise ValueError(f'RoutingStatsHook.interval must be >= 1, got '
                             f'{interval}')
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if data_batch is None or not self.every_n_train_iters(
                runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        scalars = self.collect(model, data_batch)
        runner.message_hub.update_scalars(
            {f'train/{k}': v for k, v in scalars.items()})
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)

    @staticmethod
    @torch.no_grad()
    def collect(model, data_batch: dict) -> Dict[str, float]:
        """Routing scalars of ``model`` on ``data_batch``."""
        head = model.decode_head
        was_training = head.training
        head.eval()  # no BN statistics update from this extra pass
        try:
            data = model.data_preprocessor(data_batch, True)
            feats = model.extract_feat(data['inputs'])
            _, stats = head.forward_with_stats(feats)
            scalars: Dict[str, float] = {}
            per_task = len(stats) // len(head.tasks) if stats else 0
            for t, task in enumerate(head.tasks):
                for i in range(per_task):
                    summary = routing_summary(
                        stats[t * per_task + i].expert_fraction)
                    for name, value in summary.items():
                        scalars[f'routing/{task}/layer{i}/{name}'] = value
            if head.global_expert is not None:
                tokens = head.aggregate(feats).flatten(2).transpose(1, 2)
                scale, _ = head.global_expert.gates(
                    head.global_norm(tokens))  # [T, B, L, 1]
                for t, task in enumerate(head.tasks):
                    scalars[f'routing/{task}/global_gate'] = float(
                        scale[t].mean())
        finally:
            head.train(was_training)
        return scalars
