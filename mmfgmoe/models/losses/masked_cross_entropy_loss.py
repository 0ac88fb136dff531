# Copyright (c) mmfgmoe contributors. All rights reserved.
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS
from .utils import check_pred_target, masked_mean


@MODELS.register_module()
class MaskedCrossEntropyLoss(nn.Module):
    """Pixel-wise cross-entropy averaged over the non-ignored pixels.

    An all-ignore input (e.g. a PASCAL crop without persons for human parts)
    gives exactly 0 with a gradient path, never NaN.

    Args:
        ignore_index (int): Label value to skip. Defaults to 255.
        loss_weight (float): Multiplier of the loss. Defaults to 1.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 loss_weight: float = 1.) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args:
            pred (Tensor): ``[B, C, H, W]`` logits.
            target (Tensor): ``[B, 1, H, W]`` int64 class ids (or
                ``ignore_index``).

        Returns:
            Tensor: Scalar loss.
        """
        check_pred_target(pred, target, type(self).__name__, 1)
        target = target[:, 0].long()  # [B, H, W]
        valid = target != self.ignore_index  # [B, H, W]
        safe_target = target.masked_fill(~valid, 0)
        loss = F.cross_entropy(pred.float(), safe_target,
                               reduction='none')  # [B, H, W]
        return self.loss_weight * masked_mean(loss, valid)
