# Copyright (c) mmfgmoe contributors. All rights reserved.
from .fgmoe_head import FGMoEHead

__all__ = ['FGMoEHead']
