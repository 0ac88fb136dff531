# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Shared machinery of the multi-task datasets (split files, file checks)."""
import os
import os.path as osp
from typing import Any, Callable, List, Optional, Sequence, Union

from mmseg.datasets import BaseSegDataset
from ..utils import cfg_type_name, check_tasks

__all__ = ['BaseMultiTaskDataset', 'voc_colormap']


def voc_colormap(num: int) -> List[List[int]]:
    """The PASCAL VOC colour map (bit-interleaved ids) for ``num`` classes.

    Returns:
        list[list[int]]: ``num`` RGB triples; the first 21 are VOC's palette.
    """
    palette = []
    for i in range(num):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append([r, g, b])
    return palette


def _names_transform(pipeline: Any, name: str) -> bool:
    """Whether a (possibly nested, e.g. ``TestTimeAug``) pipeline holds a
    transform registered as ``name``, as a config dict or an instance."""
    if isinstance(pipeline, dict):
        return cfg_type_name(pipeline.get('type')) == name or any(
            _names_transform(value, name) for value in pipeline.values())
    if isinstance(pipeline, (list, tuple)):
        return any(_names_transform(item, name) for item in pipeline)
    return type(pipeline).__name__ == name


class BaseMultiTaskDataset(BaseSegDataset):
    """A split of ids, each id with one image and one label file per task.

    Subclasses set ``TASKS`` (the tasks the data set provides) and implement
    :meth:`split_file` and :meth:`sample_info`. Construction checks that the
    split file exists and lists ids, and that every listed id has its image
    and the files of every configured task (errors name the file); the
    contents are checked at load time by ``LoadMultiTaskAnnotations``.

    Args:
        data_root (str): Data set root folder.
        split (str): Split name (``train`` / ``val``). Defaults to 'train'.
        tasks (Sequence[str], optional): Any non-empty subset of ``TASKS``.
            Defaults to None (all of ``TASKS``).
        guide_tasks (Sequence[str], optional): Tasks of ``TASKS`` whose
            labels are loaded for the transforms only, then dropped by
            ``PackMultiTaskInputs`` (neither trained nor evaluated). The
            crop's class-ratio rule (``cat_max_ratio``) reads the semseg map:
            with ``guide_tasks=['semseg']`` (our train configs) a run on a
            task subset without semseg draws its crops by the same rule as
            the multi-task run. Tasks already in ``tasks`` are skipped.
            Defaults to None.
        pipeline (list): Transforms. Defaults to [].
        metainfo (dict, optional): Extra / overriding metainfo.
        **kwargs: Other ``BaseSegDataset`` arguments (``test_mode``,
            ``indices``, ``serialize_data``, ``lazy_init``, ...).
    """
    TASKS: Sequence[str] = ()

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 tasks: Optional[Sequence[str]] = None,
                 guide_tasks: Optional[Sequence[str]] = None,
                 pipeline: List[Union[dict, Callable]] = [],
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if not isinstance(data_root, (str, os.PathLike)):
            raise TypeError(f'{type(self).__name__}: data_root must be a '
                            f'path, got {data_root!r}')
        data_root = os.fspath(data_root)
        if kwargs.get('test_mode') and _names_transform(
                pipeline, 'MultiTaskPad'):
            raise ValueError(
                f'{type(self).__name__} (test_mode=True): the pipeline holds '
                'a MultiTaskPad, whose padding the predictions would be '
                'resized over (the model strips only the padding of its '
                'data_preprocessor); pad test images with '
                'data_preprocessor.test_cfg (size or size_divisor) instead')
        self.split = split
        self.tasks = check_tasks(
            list(self.TASKS) if tasks is None else tasks,
            allowed=self.TASKS,
            field=f'{type(self).__name__}.tasks')
        guide_tasks = check_tasks(
            guide_tasks, allowed=self.TASKS,
            field=f'{type(self).__name__}.guide_tasks') if guide_tasks else []
        self.guide_tasks = [t for t in guide_tasks if t not in self.tasks]
        metainfo = dict(metainfo or {})
        metainfo['tasks'] = list(self.tasks)
        for key in ('ann_file', 'data_prefix', 'img_suffix',
                    'seg_map_suffix', 'reduce_zero_label'):
            if key in kwargs:
                raise TypeError(f'{type(self).__name__} does not take '
                                f'`{key}`: files follow the data set layout')
        super().__init__(
            ann_file='',
            data_root=data_root,
            data_prefix=dict(img_path='', seg_map_path=''),
            pipeline=pipeline,
            metainfo=metainfo,
            reduce_zero_label=False,
            **kwargs)

    # --- to implement ----------------------------------------------------
    def split_file(self) -> str:
        """Path of the split's id list (read by :meth:`read_split`).

        Returns:
            str: A text file under ``data_root`` naming ``self.split``'s ids,
            one per line.
        """
        raise NotImplementedError

    def sample_info(self, sample_id: str) -> dict:
        """Where the image and every label of one id live.

        Args:
            sample_id (str): An id of the split file.

        Returns:
            dict: ``img_path`` (str), ``seg_map_path`` (str or None, mmseg's
            field) and ``ann_info``: for every task of the dataset (at least
            ``tasks`` and ``guide_tasks``), ``dict(path=..., reader=...,
            **options)``, a reader of
            :data:`~mmfgmoe.datasets.transforms.loading.LABEL_READERS` and its
            keyword arguments. Every key ending in ``path`` that is not None
            must name an existing file: :meth:`load_data_list` checks them
            when the dataset is built.
        """
        raise NotImplementedError

    # --- shared ------------------------------------------------------------
    @property
    def loaded_tasks(self) -> List[str]:
        """``tasks`` then ``guide_tasks``: every label the loader reads."""
        return list(self.tasks) + list(self.guide_tasks)

    def read_split(self) -> List[str]:
        """Ids listed in the split file (one per line, blanks skipped).

        Raises:
            FileNotFoundError: the split file does not exist.
            ValueError: the split file lists no id.
        """
        if not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f'{type(self).__name__}: data_root {self.data_root!r} is not '
                'a folder')
        path = self.split_file()
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{type(self).__name__}: split file not found: {path} '
                f'(split={self.split!r})')
        with open(path) as f:
            ids = [line.strip() for line in f if line.strip()]
        if not ids:
            raise ValueError(f'{type(self).__name__}: split file {path} '
                             'lists no image id')
        return ids

    def load_data_list(self) -> List[dict]:
        """One dict per id with the image path and per-task label files.

        Returns:
            list[dict]: ``img_path``, ``seg_map_path``, ``ann_info``
            (task -> reader arguments, for ``tasks`` and ``guide_tasks``),
            ``tasks``, ``guide_tasks``, ``sample_id``, ``label_map``,
            ``reduce_zero_label``, ``seg_fields``.
        """
        split_path = self.split_file()
        loaded = self.loaded_tasks
        data_list = []
        for sample_id in self.read_split():
            info = self.sample_info(sample_id)
            paths = [('image', info['img_path'])]
            for task in loaded:
                for key, value in info['ann_info'][task].items():
                    if key.endswith('path') and value is not None:
                        paths.append((task, value))
            for what, path in paths:
                if not osp.isfile(path):
                    raise FileNotFoundError(
                        f'{type(self).__name__}: {what} file not found: '
                        f'{path} (id {sample_id!r} listed in {split_path})')
            info['ann_info'] = {t: info['ann_info'][t] for t in loaded}
            info.update(
                tasks=list(self.tasks),
                guide_tasks=list(self.guide_tasks),
                sample_id=sample_id,
                label_map=self.label_map,
                reduce_zero_label=False,
                seg_fields=[])
            data_list.append(info)
        return data_list
