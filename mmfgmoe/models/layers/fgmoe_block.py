# Copyright (c) mmfgmoe contributors. All rights reserved.
"""One block of an FGMoE task branch: spatial mixer, then task MoE, each a
pre-norm residual.

Reference: FGMoE (https://arxiv.org/abs/2507.19077): per task a deformable
mixer followed by a task-specific (fine-grained) MoE; the block layout
(pre-norm residuals, MetaFormer style) is our choice (README, "Differences
from the paper").
"""
from typing import Callable, Optional, Tuple

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.utils import ConfigType
from .moe import FineGrainedMoE, RouterStats

__all__ = ['FGMoEBlock']


class FGMoEBlock(nn.Module):
    """``x = x + Mixer(Norm(x)); x = x + TaskMoE(Norm(x))`` on tokens.

    Args:
        embed_dims (int): Channels ``D``.
        mixer_cfg (dict): Config of the spatial mixer (a registered type such
            as ``DeformableMixer`` or ``DepthwiseConvMixer``); ``channels`` is
            filled in.
        norm_cfg (dict): Token norm config (normalises the last dimension,
            e.g. ``dict(type='LN')``).
        act_layer (Callable[[], nn.Module]): Activation of the FFN experts.
        **moe_kwargs: Passed to :class:`FineGrainedMoE` (``moe``,
            ``num_experts``, ``top_k``, ``num_shared_experts``, ``mlp_ratio``,
            ``expert_ratio``, ``renormalize``, ...).
    """

    def __init__(self, embed_dims: int, mixer_cfg: ConfigType,
                 norm_cfg: ConfigType, act_layer: Callable[[], nn.Module],
                 **moe_kwargs) -> None:
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mixer = MODELS.build(dict(mixer_cfg, channels=embed_dims))
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.moe = FineGrainedMoE(embed_dims,
                                  act_layer=act_layer,
                                  **moe_kwargs)

    def forward(
        self,
        x: Tensor,
        hw_shape: Tuple[int, int],
        return_routing: bool = False,
        valid: Optional[Tensor] = None
    ) -> Tuple[Tensor, Optional[RouterStats]]:
        """Args:
            x (Tensor): ``[B, L, D]`` tokens, ``L = H * W``.
            hw_shape (tuple[int, int]): ``(H, W)`` of the token grid.
            return_routing (bool): See :meth:`FineGrainedMoE.forward`.
            valid (Tensor, optional): ``[B, L]`` bool, the tokens the load
                statistics count (see :meth:`FineGrainedMoE.forward`).

        Returns:
            tuple[Tensor, RouterStats | None]: ``[B, L, D]`` tokens and the
            router statistics of the MoE (None for a dense FFN).
        """
        batch, length, channels = x.shape
        y = self.norm1(x).transpose(1, 2).reshape(batch, channels,
                                                  *hw_shape)  # [B, D, H, W]
        x = x + self.mixer(y).flatten(2).transpose(1, 2)  # [B, L, D]
        y, stats = self.moe(self.norm2(x), return_routing,
                            valid)  # [B, L, D]
        return x + y, stats
