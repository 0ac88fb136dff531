# Copyright (c) mmfgmoe contributors. All rights reserved.
from .visualization_hook import MultiTaskVisualizationHook

__all__ = ['MultiTaskVisualizationHook']
