# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Test-only hook: empty experts on one rank of a distributed run.

Imported by the distributed test's config (``custom_imports``) to check that
experts which receive no token on a rank neither hang nor desynchronise DDP.
"""
import hashlib
from typing import List, Optional

import torch
import torch.distributed as dist
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg.registry import HOOKS
from mmfgmoe.models.layers.moe import GateOutput, TopKGate


def _checksum(module: torch.nn.Module) -> str:
    """Hash of every parameter (not the buffers: with
    ``broadcast_buffers=False`` each rank keeps its own BN statistics)."""
    digest = hashlib.sha256()
    for name, param in sorted(module.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@HOOKS.register_module()
class ForceRoutingHook(Hook):
    """On rank ``rank`` route every token of every task MoE to expert
    ``expert`` (all ``top_k`` slots), so the other experts get no token there
    while the other ranks route normally. After training, check that all
    replicas hold identical parameters and log how many gate calls were forced.

    Args:
        rank (int): The rank whose routing collapses. Defaults to 0.
        expert (int): The expert every token goes to. Defaults to 0.
    """

    def __init__(self, rank: int = 0, expert: int = 0) -> None:
        self.rank = rank
        self.expert = expert
        self.forced_calls = 0
        self.empty_experts = 0
        self._handles: List = []

    def _force(self, gate: TopKGate, args, output: GateOutput) -> GateOutput:
        self.forced_calls += 1
        self.empty_experts += gate.num_experts - 1
        return GateOutput(output.weights,
                          torch.full_like(output.indices, self.expert),
                          output.probs)

    def before_train(self, runner) -> None:
        rank, _ = get_dist_info()
        if rank != self.rank:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        for module in model.modules():
            if isinstance(module, TopKGate):
                self._handles.append(module.register_forward_hook(self._force))
        assert self._handles, 'the model has no TopKGate to force'

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        rank, world_size = get_dist_info()
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        sums: List[Optional[str]] = [None] * world_size
        if world_size > 1:
            dist.all_gather_object(sums, _checksum(model))
        else:
            sums = [_checksum(model)]
        runner.logger.info(
            f'ForceRoutingHook: rank {rank} forced {self.forced_calls} gate '
            f'calls ({self.empty_experts} empty expert slots); '
            f'replica checksums {sums}')
        if len(set(sums)) != 1:
            raise RuntimeError(f'DDP replicas diverged: {sums}')
        runner.logger.info('ForceRoutingHook: replicas identical')
