# Copyright (c) mmfgmoe contributors. All rights reserved.
from .multitask_metric import LOWER_IS_BETTER, MultiTaskMetric, relative_gain

__all__ = ['LOWER_IS_BETTER', 'MultiTaskMetric', 'relative_gain']
