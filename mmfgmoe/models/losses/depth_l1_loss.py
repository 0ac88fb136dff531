# Copyright (c) mmfgmoe contributors. All rights reserved.
import torch.nn as nn
from torch import Tensor

from mmseg.registry import MODELS
from .utils import check_pred_target, masked_mean


@MODELS.register_module()
class DepthL1Loss(nn.Module):
    """L1 depth loss over the valid pixels (``gt > invalid_value``).

    Padded or missing depth is stored as 0 (see ``TASK_SPECS``), so it is
    masked out. No valid pixel gives 0 with a gradient path.

    Args:
        invalid_value (float): Depth at or below this is invalid. Defaults
            to 0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.
    """

    def __init__(self,
                 invalid_value: float = 0.,
                 loss_weight: float = 1.) -> None:
        super().__init__()
        self.invalid_value = invalid_value
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args:
            pred (Tensor): ``[B, 1, H, W]`` depth in metres.
            target (Tensor): ``[B, 1, H, W]`` depth in metres, invalid <= 0.

        Returns:
            Tensor: Scalar loss.
        """
        check_pred_target(pred, target, type(self).__name__, 1)
        valid = target > self.invalid_value  # [B, 1, H, W]
        error = (pred.float() - target.float()).abs()  # [B, 1, H, W]
        return self.loss_weight * masked_mean(error, valid)
