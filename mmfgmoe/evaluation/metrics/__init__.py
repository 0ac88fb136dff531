# Copyright (c) mmfgmoe contributors. All rights reserved.
from .multitask_metric import LOWER_IS_BETTER, MultiTaskMetric

__all__ = ['LOWER_IS_BETTER', 'MultiTaskMetric']
