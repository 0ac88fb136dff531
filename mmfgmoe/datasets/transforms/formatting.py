# Copyright (c) mmfgmoe contributors. All rights reserved.
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData

from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample
from ...utils import TASK_SPECS

__all__ = ['PackMultiTaskInputs']

DEFAULT_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                     'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                     'reduce_zero_label', 'tasks')


def _label_tensor(label: np.ndarray, discrete: bool, channels: int,
                  where: str = 'label') -> torch.Tensor:
    """[H, W] or [H, W, C] numpy label -> [C, H, W] tensor.

    Args:
        label (np.ndarray): The label.
        discrete (bool): Integer label (int64) or continuous (float32).
        channels (int): Required ``C``.
        where (str): Field and file named in errors.

    Returns:
        torch.Tensor: ``[C, H, W]`` int64 or float32.

    Raises:
        ValueError: wrong number of channels, or a continuous label with
            NaN/Inf values (0 marks invalid depth / normals, never NaN).
    """
    if label.ndim == 2:
        label = label[None]
    else:
        label = label.transpose(2, 0, 1)
    if label.shape[0] != channels:
        raise ValueError(f'{where}: expected a label with {channels} '
                         f'channel(s), got shape {label.shape} (C, H, W)')
    if not discrete and not np.isfinite(label).all():
        raise ValueError(f'{where}: label has NaN/Inf values; invalid '
                         'pixels must be stored as 0')
    label = np.ascontiguousarray(label)
    if discrete:
        return torch.from_numpy(label.astype(np.int64))
    return torch.from_numpy(label.astype(np.float32))


@TRANSFORMS.register_module()
class PackMultiTaskInputs(BaseTransform):
    """Pack the image and every task's label into a ``SegDataSample``.

    The image becomes ``inputs`` (uint8/float [3, H, W] tensor, as mmseg's
    ``PackSegInputs``); the ``gt_*`` field of each task in
    ``results['tasks']`` (of every :data:`TASK_SPECS` task present when the
    key is absent) becomes a ``PixelData(data=tensor)`` of the same name on
    the data sample: discrete labels int64 [1, H, W], ``gt_depth_map`` float32
    [1, H, W], ``gt_normals`` float32 [3, H, W].

    Args:
        meta_keys (Sequence[str]): Results keys copied to the sample's
            metainfo. Defaults to mmseg's keys plus ``tasks``.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack one sample.

        Args:
            results (dict): Pipeline results.

        Returns:
            dict: ``inputs`` (torch.Tensor [C, H, W]) and ``data_samples``
            (SegDataSample).
        """
        packed = dict()
        if 'img' in results:
            img = results['img']
            if img.ndim < 3:
                img = img[..., None]
            packed['inputs'] = torch.from_numpy(
                np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = SegDataSample()
        img_shape = results['img'].shape[:2] if 'img' in results else None
        # Labels loaded only to guide the transforms (``guide_tasks``) are
        # not packed: ``tasks`` names what the model trains on.
        packed_tasks = results.get('tasks', TASK_SPECS)
        for task, spec in TASK_SPECS.items():
            if task in packed_tasks and spec.gt_field in results:
                where = (f'{type(self).__name__}: `{spec.gt_field}` of '
                         f'{results.get("img_path")}')
                label = results[spec.gt_field]
                if img_shape is not None and \
                        tuple(label.shape[:2]) != tuple(img_shape):
                    raise ValueError(
                        f'{where}: label shape {tuple(label.shape[:2])} '
                        f'differs from the image shape {tuple(img_shape)}')
                data = _label_tensor(label, spec.discrete,
                                     spec.label_channels, where)
                sample.set_field(PixelData(data=data), spec.gt_field)
        meta = {k: results[k] for k in self.meta_keys if k in results}
        meta.setdefault('seg_map_path', None)
        meta.setdefault('reduce_zero_label', False)
        sample.set_metainfo(meta)
        packed['data_samples'] = sample
        return packed

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
