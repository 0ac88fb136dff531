# Copyright (c) mmfgmoe contributors. All rights reserved.
from .fgmoe_head import FGMoEHead, HeadRouting, token_centres, valid_tokens

__all__ = ['FGMoEHead', 'HeadRouting', 'token_centres', 'valid_tokens']
