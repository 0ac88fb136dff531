# Copyright (c) mmfgmoe contributors. All rights reserved.
from . import metrics  # noqa: F401
