# Copyright (c) mmfgmoe contributors. All rights reserved.
from . import transforms  # noqa: F401
from .base_multitask import BaseMultiTaskDataset
from .nyud import NYUDv2MultiTaskDataset
from .pascal_context import PascalContextMultiTaskDataset
from .synth_room import generate_synth_room

__all__ = [
    'BaseMultiTaskDataset', 'NYUDv2MultiTaskDataset',
    'PascalContextMultiTaskDataset', 'generate_synth_room'
]
