# Copyright (c) mmfgmoe contributors. All rights reserved.
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS
from .utils import check_pred_target, masked_mean


@MODELS.register_module()
class BalancedBinaryCrossEntropyLoss(nn.Module):
    """Class-balanced binary cross-entropy on logits (edges, saliency).

    Positive pixels are weighted by ``w`` and negative ones by ``1 - w``;
    ``w`` is ``pos_weight`` when given (0.95 for edges in the InvPT / MLoRE
    protocol), otherwise the fraction of negatives among the valid pixels of
    the batch (HED-style balancing, used for saliency). The sum is divided by
    the number of valid pixels, as InvPT / MLoRE do (MTI-Net's
    ``BalancedCrossEntropyLoss`` divides by all pixels, padding included).
    All-ignore input gives 0 with a gradient path.

    Args:
        pos_weight (float, optional): Fixed weight of positives in ``[0, 1]``;
            None balances by the label statistics. Defaults to None.
        ignore_index (int): Label value to skip. Defaults to 255.
        loss_weight (float): Multiplier of the loss. Defaults to 1.
    """

    def __init__(self,
                 pos_weight: Optional[float] = None,
                 ignore_index: int = 255,
                 loss_weight: float = 1.) -> None:
        super().__init__()
        if pos_weight is not None and not 0. <= pos_weight <= 1.:
            raise ValueError(f'pos_weight must be in [0, 1], got {pos_weight}')
        self.pos_weight = pos_weight
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args:
            pred (Tensor): ``[B, 1, H, W]`` logits.
            target (Tensor): ``[B, 1, H, W]`` labels in ``{0, 1}`` or
                ``ignore_index``.

        Returns:
            Tensor: Scalar loss.
        """
        check_pred_target(pred, target, type(self).__name__, 1)
        valid = target != self.ignore_index  # [B, 1, H, W]
        positive = (target == 1) & valid
        if self.pos_weight is None:
            num_valid = valid.sum().clamp(min=1)
            w = (valid.sum() - positive.sum()).float() / num_valid
        else:
            w = self.pos_weight  # a float: no host-to-device copy
        loss = F.binary_cross_entropy_with_logits(
            pred.float(), positive.float(), reduction='none')  # [B, 1, H, W]
        pixel_weight = positive.float() * w + (~positive).float() * (1. - w)
        return self.loss_weight * masked_mean(loss * pixel_weight, valid)
