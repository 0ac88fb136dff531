# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Stop training as soon as a loss becomes NaN or infinite."""
import math
from typing import Dict, Optional, Union

import torch
from mmengine.dist import all_reduce, get_dist_info
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmseg.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]

__all__ = ['FiniteLossHook']


def _non_finite(outputs: Dict[str, object],
                key_filter: str) -> Dict[str, float]:
    """The logged values whose key contains ``key_filter`` and are not
    finite, as ``{key: value}`` (tensors reduced with ``.item()``)."""
    bad = {}
    for key, value in outputs.items():
        if key_filter not in key:
            continue
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                value = value.float().mean()
            value = value.item()
        if isinstance(value, (int, float)) and not math.isfinite(value):
            bad[key] = float(value)
    return bad


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise :class:`FloatingPointError` when a loss is NaN or infinite.

    After every ``interval``-th training iteration the hook reads the logged
    losses (the ``log_vars`` returned by ``train_step``: ``loss`` and every
    ``loss_<name>``) and stops training with a message that names each
    non-finite loss key, its value and the (1-based) iteration, e.g.
    ``non-finite loss at iteration 3: loss_depth=nan (total loss=nan)``.

    Its priority is ``VERY_HIGH``, so it runs before the checkpoint hook of
    the same iteration: weights updated with a non-finite gradient are never
    saved as a checkpoint. In distributed training every rank stops, not only
    the one whose loss is not finite: DDP has already averaged its non-finite
    gradient into every replica, and rank 0 would otherwise save them.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 1
            (the check reads a few scalars the logger reads anyway).
        key_filter (str): Only keys containing it are checked. Defaults to
            ``'loss'`` (mmengine sums exactly these keys into the total).
    """
    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1, key_filter: str = 'loss') -> None:
        if int(interval) < 1:
            raise ValueError(f'FiniteLossHook.interval must be >= 1, got '
                             f'{interval}')
        self.interval = int(interval)
        self.key_filter = key_filter

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Check the losses of the iteration that just ran.

        Args:
            runner (Runner): The runner.
            batch_idx (int): Index of the iteration (0-based).
            data_batch (dict | tuple | list, optional): The batch.
            outputs (dict, optional): ``log_vars`` of ``train_step``.

        Raises:
            FloatingPointError: naming the non-finite loss keys and the
                iteration.
        """
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        bad = _non_finite(outputs, self.key_filter)
        rank, world_size = get_dist_info()
        bad_ranks = torch.zeros(world_size, dtype=torch.int32)
        bad_ranks[rank] = int(bool(bad))
        if world_size > 1:
            all_reduce(bad_ranks)  # every rank learns which ranks failed
        if not bad_ranks.any():
            return
        iteration = runner.iter + 1
        if bad:
            total = bad.pop('loss', None)
            parts = [f'{k}={v}' for k, v in bad.items()]
            if total is not None:
                parts.append(f'(total loss={total})')
            what = ' '.join(parts)
        else:
            failed = bad_ranks.nonzero().flatten().tolist()
            what = f'on rank(s) {failed} (this rank {rank} is finite)'
        raise FloatingPointError(
            f'FiniteLossHook: non-finite loss at iteration {iteration}: '
            f'{what}. Training stopped; the last checkpoint '
            'before this iteration is intact. Look for a too large learning '
            'rate, a loss weight or labels that are not finite.')
