# Copyright (c) mmfgmoe contributors. All rights reserved.
"""The dense-prediction tasks mmfgmoe knows, in one table.

Every module that needs to know how a task is stored (data-sample field names,
value used for padding/ignore, number of channels of the label) reads it from
here, so a task set is configuration (``tasks=[...]``) and never hard-coded.
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence

__all__ = ['TaskSpec', 'TASK_SPECS', 'check_tasks']


@dataclass(frozen=True)
class TaskSpec:
    """How one task is carried through the pipeline.

    Args:
        name (str): Task name used in configs (``tasks=[...]``).
        gt_field (str): ``SegDataSample`` field holding the label ``PixelData``.
        pred_field (str): ``SegDataSample`` field holding the prediction.
        label_channels (int): Channels of the label map (``C`` in ``[C, H, W]``).
        pad_value (float): Value written where a label is padded or invalid.
            Classification-like tasks use 255 (ignore); depth uses 0 (invalid
            depth); normals use 0 (a zero vector is not a unit normal, so it is
            masked out by losses and metrics).
        discrete (bool): Whether the label is an integer map (nearest-neighbour
            resampling) rather than a continuous one.
        lower_is_better (bool): Direction of the task's headline metric, used
            for the multi-task delta (Δm).
    """
    name: str
    gt_field: str
    pred_field: str
    label_channels: int
    pad_value: float
    discrete: bool
    lower_is_better: bool


TASK_SPECS: Dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec('semseg', 'gt_sem_seg', 'pred_sem_seg', 1, 255, True, False),
        TaskSpec('human_parts', 'gt_human_parts', 'pred_human_parts', 1, 255,
                 True, False),
        TaskSpec('saliency', 'gt_saliency', 'pred_saliency', 1, 255, True,
                 False),
        TaskSpec('edge', 'gt_edge', 'pred_edge', 1, 255, True, False),
        TaskSpec('depth', 'gt_depth_map', 'pred_depth_map', 1, 0, False,
                 True),
        TaskSpec('normals', 'gt_normals', 'pred_normals', 3, 0, False, True),
    )
}


def check_tasks(tasks: Sequence[str],
                allowed: Sequence[str] = tuple(TASK_SPECS),
                field: str = 'tasks') -> List[str]:
    """Validate a task list from a config and return it as a list.

    Raises:
        ValueError: naming ``field`` when the list is empty, has duplicates or
            names a task outside ``allowed``.
    """
    if isinstance(tasks, str):
        tasks = [tasks]
    tasks = list(tasks)
    if not tasks:
        raise ValueError(f'`{field}` must name at least one task; '
                         f'choose from {list(allowed)}')
    unknown = [t for t in tasks if t not in allowed]
    if unknown:
        raise ValueError(f'`{field}` names unknown task(s) {unknown}; '
                         f'choose from {list(allowed)}')
    if len(set(tasks)) != len(tasks):
        raise ValueError(f'`{field}` lists a task twice: {tasks}')
    return tasks
