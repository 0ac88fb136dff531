# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Layers and losses refuse bad arguments when they are built, naming the
argument (a config typo fails at start-up, not in the first step)."""
import pytest

from mmfgmoe.models.layers import FineGrainedMoE
from mmfgmoe.models.layers.mixers import (DeformableMixer,
                                          TorchDeformConv2dPack)
from mmfgmoe.models.layers.mlp import Mlp
from mmfgmoe.models.losses import BalancedBinaryCrossEntropyLoss

CASES = [
    (lambda: FineGrainedMoE(16, dispatch='dense'),
     r"dispatch must be one of \('sorted', 'masked'\), got 'dense'"),
    (lambda: FineGrainedMoE(16, num_experts=0),
     'num_experts must be >= 1'),
    (lambda: FineGrainedMoE(16, num_shared_experts=-1),
     'num_shared_experts >= 0'),
    (lambda: FineGrainedMoE(4, mlp_ratio=1., num_experts=16, top_k=2),
     r'expert width h = D\*mlp_ratio\*expert_ratio/num_experts = '
     r'4\*1.0\*1.0/16 < 1'),
    (lambda: FineGrainedMoE(16, num_experts=4, top_k=5),
     r'top_k must be in \[1, num_experts=4\]'),
    (lambda: TorchDeformConv2dPack(4, 4, 3, dilation=2),
     'stride=1 and dilation=1 only'),
    (lambda: TorchDeformConv2dPack(6, 6, 3, groups=4),
     'must be divisible by groups=4'),
    (lambda: TorchDeformConv2dPack(6, 6, 3, deform_groups=4),
     'in_channels by deform_groups=4'),
    (lambda: DeformableMixer(8, kernel_size=4,
                             conv_cfg=dict(type='TorchDCN')),
     'kernel_size must be odd, got 4'),
    (lambda: Mlp(8, 16, bias=(True, False, True)),
     r'`bias` must be a bool or a pair'),
    (lambda: BalancedBinaryCrossEntropyLoss(pos_weight=1.5),
     r'pos_weight must be in \[0, 1\], got 1.5'),
]


@pytest.mark.parametrize('build, message', CASES,
                         ids=[m.split(' ')[0] for _, m in CASES])
def test_bad_argument_is_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
