# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Small helpers shared by the mmfgmoe losses."""
from typing import Optional

import torch
from torch import Tensor

__all__ = ['masked_mean', 'check_pred_target']


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` is true; 0 (not NaN) when nothing is
    valid.

    The empty case is arithmetic (a zero sum over at least one), not a
    branch: the result stays connected to the graph (backward yields zero
    gradients; DDP sees every parameter used) and a GPU is never waited for.

    Args:
        values (Tensor): Per-element losses, any shape.
        mask (Tensor): Bool tensor broadcastable to ``values``.

    Returns:
        Tensor: Scalar.
    """
    mask = mask.expand_as(values)
    total = torch.where(mask, values, values.new_zeros(())).sum()
    return total / mask.sum().clamp_min(1)


def check_pred_target(pred: Tensor,
                      target: Tensor,
                      name: str,
                      target_channels: Optional[int] = None) -> None:
    """Raise a ``ValueError`` naming the loss when shapes do not match.

    Args:
        pred (Tensor): ``[B, C, H, W]`` prediction.
        target (Tensor): ``[B, c, H, W]`` label.
        name (str): Loss name for the message.
        target_channels (int, optional): Required ``c``; default: ``C``.
    """
    if pred.dim() != 4 or target.dim() != 4:
        raise ValueError(f'{name}: expected 4-D pred and target [B, C, H, W], '
                         f'got {tuple(pred.shape)} and {tuple(target.shape)}')
    channels = pred.shape[1] if target_channels is None else target_channels
    expected = (pred.shape[0], channels) + tuple(pred.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f'{name}: target shape {tuple(target.shape)} does '
                         f'not match the expected {expected} (pred '
                         f'{tuple(pred.shape)})')
