# Copyright (c) mmfgmoe contributors. All rights reserved.
from . import hooks  # noqa: F401
