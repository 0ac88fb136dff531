# Copyright (c) mmfgmoe contributors. All rights reserved.
from .misc import cfg_type_name
from .tasks import (NORMALS_FLIP_AXIS, TASK_SPECS, TaskSpec,
                    check_config_tasks, check_tasks)

__all__ = [
    'NORMALS_FLIP_AXIS', 'TASK_SPECS', 'TaskSpec', 'cfg_type_name',
    'check_config_tasks', 'check_tasks'
]
