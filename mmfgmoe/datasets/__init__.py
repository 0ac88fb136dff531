# Copyright (c) mmfgmoe contributors. All rights reserved.
from . import transforms  # noqa: F401
