# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Test-only hook: a non-finite loss on one rank of a distributed run.

Imported by the distributed test's config (``custom_imports``) to check that
every rank stops, and no checkpoint is written, when only one rank's loss is
not finite.
"""
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS


@HOOKS.register_module()
class NaNLossOnRankHook(Hook):
    """Set the depth loss weight of rank ``rank`` to NaN before the
    (0-based) training iteration ``iteration``.

    Args:
        rank (int): The rank whose loss becomes NaN.
        iteration (int): ``runner.iter`` at which it happens.
    """

    def __init__(self, rank: int, iteration: int) -> None:
        self.rank = rank
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if get_dist_info()[0] != self.rank or runner.iter != self.iteration:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.decode_head.losses['depth'].loss_weight = float('nan')
