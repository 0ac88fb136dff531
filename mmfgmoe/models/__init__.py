# Copyright (c) mmfgmoe contributors. All rights reserved.
from . import decode_heads, layers, losses, segmentors  # noqa: F401
