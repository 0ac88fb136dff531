# Copyright (c) mmfgmoe contributors. All rights reserved.
from .fgmoe_head import FGMoEHead, HeadRouting

__all__ = ['FGMoEHead', 'HeadRouting']
