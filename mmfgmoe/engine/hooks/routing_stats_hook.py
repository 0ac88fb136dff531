# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Log what the experts do: load per expert and the global gate per task."""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS
from ...evaluation.routing import routing_summary


@HOOKS.register_module()
class RoutingStatsHook(Hook):
    """Every ``interval`` training iterations, log per task and MoE layer the
    expert load (``max_over_mean``, normalised ``entropy``, ``empty``
    experts), the mean router entropy in nats (``router_entropy``: how sure
    the router is per token) and per task the mean global-expert gate, as
    scalars ``routing/<task>/layer<i>/<stat>`` and
    ``routing/<task>/global_gate``: one log line per task, and every
    visualiser backend at the iteration's step. They bypass the message hub,
    whose ``LogProcessor`` would average each over its last ``window_size``
    updates (i.e. intervals) and hand it to the visualisers a second time.

    The statistics come from one extra no-grad pass (data pre-processor,
    backbone and decoder, the decoder in eval mode) on the iteration's batch
    and count only the tokens on the images (not the padding that fills the
    batch), so the training forward is untouched and a disabled hook (not in
    ``custom_hooks``) costs nothing. In distributed training the logged
    figures are rank 0's batch (not reduced over ranks; the other ranks skip
    the extra pass). Only for
    :class:`FGMoEHead`-style heads (``forward_routing``).

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
        # Only rank 0 logs: the other ranks skip the extra pass (it runs no
        # collective, so nothing waits for them).
        if data_batch is None or not is_main_process() or \
                not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        scalars = self.collect(model, data_batch)
        step = runner.iter + 1
        runner.visualizer.add_scalars(scalars, step=step)
        for task in model.decode_head.tasks:
            prefix = f'routing/{task}/'
            runner.logger.info(f'Iter(train) [{step}] ' + ' '.join(
                f'{k}: {v:.4g}' for k, v in scalars.items()
                if k.startswith(prefix)))

    @staticmethod
    @torch.no_grad()
    def collect(model: nn.Module, data_batch: dict) -> Dict[str, float]:
        """Routing scalars of ``model`` on ``data_batch``.

        The pass runs the whole model in eval mode (then restores every
        module's mode): no batch-norm statistics update, and no dropout or
        drop-path that would draw random numbers in training's stream.

        Args:
            model (nn.Module): The segmentor (unwrapped).
            data_batch (dict): A batch from the training loader.

        Returns:
            dict[str, float]: ``routing/<task>/layer<i>/<statistic>`` and
            ``routing/<task>/global_gate`` scalars.
        """
        head = model.decode_head
        modes = [(module, module.training) for module in model.modules()]
        model.eval()
        try:
            data = model.data_preprocessor(data_batch, True)
            _, routing = head.forward_routing(
                model.extract_feat(data['inputs']),
                [sample.metainfo for sample in data['data_samples']])
            valid = routing.valid  # [B, H, W]
            scalars: Dict[str, float] = {}
            for t, task in enumerate(head.tasks):
                for i, stats in enumerate(routing.router_stats[task]):
                    summary = routing_summary(stats.expert_fraction)
                    summary['router_entropy'] = float(
                        stats.entropy.view_as(valid)[valid].mean())
                    for name, value in summary.items():
                        scalars[f'routing/{task}/layer{i}/{name}'] = value
                if routing.global_gate is not None:
                    scalars[f'routing/{task}/global_gate'] = float(
                        routing.global_gate[t][valid].mean())
        finally:
            for module, training in modes:
                module.training = training
        return scalars
