# Copyright (c) mmfgmoe contributors. All rights reserved.
# mmpretrain's models must be registered so configs can name
# ``type='mmpretrain.VisionTransformer'`` from the mmseg scope.
import mmpretrain.models  # noqa: F401

from . import decode_heads, layers, losses, segmentors  # noqa: F401
from .data_preprocessor import MultiTaskDataPreProcessor

__all__ = ['MultiTaskDataPreProcessor']
