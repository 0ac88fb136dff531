# Copyright (c) mmfgmoe contributors. All rights reserved.
from .tasks import TASK_SPECS, TaskSpec, check_config_tasks, check_tasks

__all__ = ['TASK_SPECS', 'TaskSpec', 'check_config_tasks', 'check_tasks']
