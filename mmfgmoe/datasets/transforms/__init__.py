# Copyright (c) mmfgmoe contributors. All rights reserved.
from .formatting import PackMultiTaskInputs
from .loading import LoadMultiTaskAnnotations
from .transforms import (IgnoreEmptyLabels, MultiTaskPad,
                         MultiTaskRandomCrop, MultiTaskRandomFlip,
                         MultiTaskRandomResize)

__all__ = [
    'LoadMultiTaskAnnotations', 'MultiTaskRandomResize', 'MultiTaskRandomCrop',
    'MultiTaskRandomFlip', 'MultiTaskPad', 'IgnoreEmptyLabels',
    'PackMultiTaskInputs'
]
