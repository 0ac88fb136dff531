# Copyright (c) mmfgmoe contributors. All rights reserved.
from .multitask_visualizer import MultiTaskLocalVisualizer

__all__ = ['MultiTaskLocalVisualizer']
