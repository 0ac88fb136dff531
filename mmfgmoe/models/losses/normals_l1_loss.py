# Copyright (c) mmfgmoe contributors. All rights reserved.
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS
from .utils import check_pred_target, masked_mean


@MODELS.register_module()
class NormalsL1Loss(nn.Module):
    """L1 loss between the L2-normalised prediction and unit ground-truth
    normals: the absolute errors of the 3 components summed per pixel, then
    averaged over the valid pixels (InvPT / MLoRE ``L1Loss(normalize=True)``
    from ATRC, whose scale the protocol's ``loss_weight=10`` assumes; a
    pixel is invalid when its ground-truth vector is all zero, which is how
    padding and unlabeled pixels are stored).

    Args:
        eps (float): Norm floor of ``F.normalize``. Defaults to 1e-12.
        loss_weight (float): Multiplier of the loss. Defaults to 1.
    """

    def __init__(self, eps: float = 1e-12, loss_weight: float = 1.) -> None:
        super().__init__()
        self.eps = eps
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Args:
            pred (Tensor): ``[B, 3, H, W]`` unnormalised normals.
            target (Tensor): ``[B, 3, H, W]`` unit normals, zero = invalid.

        Returns:
            Tensor: Scalar loss.
        """
        check_pred_target(pred, target, type(self).__name__, 3)
        unit = F.normalize(pred.float(), dim=1, eps=self.eps)  # [B, 3, H, W]
        valid = (target != 0).any(dim=1, keepdim=True)  # [B, 1, H, W]
        error = (unit - target.float()).abs().sum(
            dim=1, keepdim=True)  # [B, 1, H, W]
        return self.loss_weight * masked_mean(error, valid)
