# Copyright (c) mmfgmoe contributors. All rights reserved.
from .balanced_bce_loss import BalancedBinaryCrossEntropyLoss
from .depth_l1_loss import DepthL1Loss
from .masked_cross_entropy_loss import MaskedCrossEntropyLoss
from .normals_l1_loss import NormalsL1Loss

__all__ = [
    'BalancedBinaryCrossEntropyLoss', 'DepthL1Loss', 'MaskedCrossEntropyLoss',
    'NormalsL1Loss'
]
