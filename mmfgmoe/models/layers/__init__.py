# Copyright (c) mmfgmoe contributors. All rights reserved.
from .fgmoe_block import FGMoEBlock
from .global_expert import GlobalExpert
from .mixers import (DeformableMixer, DepthwiseConvMixer,
                     TorchDeformConv2dPack, deform_conv2d_grid_sample)
from .mlp import Mlp
from .moe import (FineGrainedMoE, GateOutput, RouterStats, TopKGate,
                  switch_balance_loss)

__all__ = [
    'DeformableMixer', 'DepthwiseConvMixer', 'FGMoEBlock', 'FineGrainedMoE',
    'GateOutput', 'GlobalExpert', 'Mlp', 'RouterStats', 'TopKGate',
    'TorchDeformConv2dPack', 'deform_conv2d_grid_sample', 'switch_balance_loss'
]
