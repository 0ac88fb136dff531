# Copyright (c) mmfgmoe contributors. All rights reserved.
from . import functional, metrics  # noqa: F401
from .metrics import MultiTaskMetric

__all__ = ['MultiTaskMetric']
