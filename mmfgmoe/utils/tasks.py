# Copyright (c) mmfgmoe contributors. All rights reserved.
"""The dense-prediction tasks mmfgmoe knows, in one table.

Every module that needs to know how a task is stored (data-sample field names,
value used for padding/ignore, number of channels of the label, which tasks
are class maps and where their class names live) reads it from
here, so a task set is configuration (``tasks=[...]``) and never hard-coded.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = [
    'TaskSpec', 'TASK_SPECS', 'NORMALS_FLIP_AXIS', 'check_tasks',
    'check_config_tasks'
]


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
        classes_key (str, optional): ``dataset_meta`` key of the class names
            of a class-map task (decoded by argmax over ``num_classes``
            logits, scored by IoU); None for the other tasks, whose output
            width is ``label_channels``.
        palette_key (str, optional): ``dataset_meta`` key of a class-map
            task's colours.
        logits_field (str, optional): Data-sample field keeping a class-map
            task's raw logits (the flip TTA averages their softmax);
            ``seg_logits`` is mmseg's.
    """
    name: str
    gt_field: str
    pred_field: str
    label_channels: int
    pad_value: float
    discrete: bool
    classes_key: Optional[str] = None
    palette_key: Optional[str] = None
    logits_field: Optional[str] = None


TASK_SPECS: Dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec('semseg', 'gt_sem_seg', 'pred_sem_seg', 1, 255, True,
                 'classes', 'palette', 'seg_logits'),
        TaskSpec('human_parts', 'gt_human_parts', 'pred_human_parts', 1, 255,
                 True, 'human_parts_classes', 'human_parts_palette',
                 'human_parts_logits'),
        TaskSpec('saliency', 'gt_saliency', 'pred_saliency', 1, 255, True),
        TaskSpec('edge', 'gt_edge', 'pred_edge', 1, 255, True),
        TaskSpec('depth', 'gt_depth_map', 'pred_depth_map', 1, 0, False),
        TaskSpec('normals', 'gt_normals', 'pred_normals', 3, 0, False),
    )
}


#: Normal-map component (x right, y down) that a flip in each direction
#: negates: the vectors live in the camera frame, which the flip mirrors.
NORMALS_FLIP_AXIS: Dict[str, int] = {'horizontal': 0, 'vertical': 1}


def check_tasks(tasks: Sequence[str],
                allowed: Sequence[str] = tuple(TASK_SPECS),
                field: str = 'tasks') -> List[str]:
    """Validate a task list from a config and return it as a list.

    Args:
        tasks (Sequence[str]): Task names; a single string is taken as a
            list of one task.
        allowed (Sequence[str]): Valid task names. Defaults to all of
            :data:`TASK_SPECS`.
        field (str): The config field the list comes from, named in the
            error messages. Defaults to ``'tasks'``.

    Returns:
        list[str]: The tasks, in the given order.

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


#: Config keys of the dataloaders whose datasets must match the model's tasks.
DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _dataset_tasks(dataset: Any, where: str) -> List[Tuple[str, List[str]]]:
    """``(config field, tasks)`` of each multi-task dataset in a dataset
    config, looking through wrappers (``dataset=`` / ``datasets=[...]``).

    A dataset without ``tasks`` loads its class's ``TASKS``; a dataset type
    without ``TASKS`` is not a multi-task dataset and is not compared.
    """
    if not isinstance(dataset, dict):
        return []
    if dataset.get('datasets') is not None:  # ConcatDataset
        return [
            found for i, child in enumerate(dataset['datasets'])
            for found in _dataset_tasks(child, f'{where}.datasets[{i}]')
        ]
    if dataset.get('dataset') is not None:  # RepeatDataset and the like
        return _dataset_tasks(dataset['dataset'], f'{where}.dataset')
    if dataset.get('tasks') is not None:
        return [(f'{where}.tasks', list(dataset['tasks']))]
    dataset_type = dataset.get('type')
    if isinstance(dataset_type, str):
        from mmseg.registry import DATASETS

        import mmfgmoe.datasets  # noqa: F401  (registers our datasets)
        dataset_type = DATASETS.get(dataset_type)
    default = getattr(dataset_type, 'TASKS', None)
    if default is None:
        return []
    return [(f'{where}.tasks (unset: all of {dataset_type.__name__}.TASKS)',
             list(default))]


def check_config_tasks(cfg: Any) -> None:
    """Check that a config's model, dataloaders and evaluators agree on the
    tasks, before anything is built.

    A config that inherits ours and changes ``model.decode_head.tasks`` but
    not a dataloader's ``dataset.tasks`` (a top-level ``tasks = [...]`` in a
    child config reaches neither: the base's dicts were filled when the base
    was read) would otherwise fail only at the first validation, possibly
    hours into training, or at the first loss.

    Rules: every dataloader's dataset loads exactly the tasks the decoder
    predicts (in any order); an evaluator's explicit ``tasks`` is a subset of
    them; a top-level ``tasks`` (our configs' one list) names the same tasks,
    so a child config that sets only that list is caught too. Configs without
    ``model.decode_head.tasks`` are not checked.

    Args:
        cfg (Config | dict): The full config (after ``--cfg-options``).

    Raises:
        ValueError: Listing every disagreeing field with its tasks and the
            child-config lines that set all of them.
    """
    head = (cfg.get('model') or {}).get('decode_head') or {}
    if head.get('tasks') is None:
        return
    model_tasks = check_tasks(head['tasks'], field='model.decode_head.tasks')
    problems = []
    top_level = cfg.get('tasks')
    if top_level is not None and sorted(top_level) != sorted(model_tasks):
        problems.append(f'tasks = {list(top_level)} (the top-level list, '
                        'which reaches no other field from a child config)')
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if not isinstance(loader, dict):
            continue
        for where, tasks in _dataset_tasks(loader.get('dataset'),
                                           f'{key}.dataset'):
            if sorted(tasks) != sorted(model_tasks):
                problems.append(f'{where} = {tasks}')
    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(key)
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for i, evaluator in enumerate(evaluators or []):
            tasks = evaluator.get('tasks') if isinstance(evaluator,
                                                         dict) else None
            if tasks is not None and not set(tasks) <= set(model_tasks):
                where = key if len(evaluators) == 1 else f'{key}[{i}]'
                problems.append(f'{where}.tasks = {list(tasks)} (must be a '
                                'subset)')
    if problems:
        raise ValueError(
            f'the config\'s task lists disagree: model.decode_head.tasks = '
            f'{model_tasks}, but ' + '; '.join(problems) + '. Every '
            'dataloader must load exactly the tasks the model predicts. In a '
            'child config set them together:\n'
            f'    tasks = {model_tasks}\n'
            '    model = dict(decode_head=dict(tasks=tasks))\n'
            '    train_dataloader = dict(dataset=dict(tasks=tasks))\n'
            '    val_dataloader = dict(dataset=dict(tasks=tasks))\n'
            '    test_dataloader = val_dataloader')
