# Copyright (c) mmfgmoe contributors. All rights reserved.
from .finite_loss_hook import FiniteLossHook
from .visualization_hook import MultiTaskVisualizationHook

__all__ = ['FiniteLossHook', 'MultiTaskVisualizationHook']
