# Copyright (c) mmfgmoe contributors. All rights reserved.
from numbers import Number
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from ..utils import TASK_SPECS

__all__ = ['MultiTaskDataPreProcessor']


def _padding_sizes(shapes: List[Tuple[int, int]], size: Optional[tuple],
                   size_divisor: Optional[int]) -> List[Tuple[int, int, int,
                                                              int]]:
    """(left, right, top, bottom) padding of each [H, W], mmseg's rule."""
    if size is not None:
        th, tw = size[-2], size[-1]
    else:
        th = max(s[0] for s in shapes)
        tw = max(s[1] for s in shapes)
        if size_divisor is not None and size_divisor > 1:
            th = -(-th // size_divisor) * size_divisor
            tw = -(-tw // size_divisor) * size_divisor
    return [(0, max(tw - w, 0), 0, max(th - h, 0)) for h, w in shapes]


@MODELS.register_module()
class MultiTaskDataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` that pads every task's label correctly.

    mmseg's pre-processor pads ``gt_sem_seg``, ``gt_edge_map`` and
    ``gt_depth_map`` with ``seg_pad_val`` (so padded depth would read as
    255 m) and ignores other fields. In training this one pads the image with
    ``pad_val`` and every ``gt_*`` field of :data:`mmfgmoe.utils.TASK_SPECS`
    on the sample with its own value: discrete tasks with ``seg_pad_val``
    (255 = ignore, the ``TASK_SPECS`` value), depth with 0 (invalid),
    normals with 0 (an invalid all-zero vector), and records the padding as
    ``padding_size`` ([left, right, top, bottom]). Test time is mmseg's
    behaviour: inputs padded per ``test_cfg``, the padding recorded as
    ``img_padding_size``, labels untouched.

    Arguments are those of ``SegDataPreProcessor``.
    """

    def _label_pad_value(self, task: str) -> Number:
        spec = TASK_SPECS[task]
        return self.seg_pad_val if spec.discrete else spec.pad_value

    def _pad_samples(self, inputs: List[torch.Tensor],
                     data_samples: Sequence[SegDataSample]
                     ) -> Tuple[torch.Tensor, Sequence[SegDataSample]]:
        shapes = [tuple(x.shape[-2:]) for x in inputs]
        paddings = _padding_sizes(shapes, self.size, self.size_divisor)
        padded = []
        for x, sample, pad in zip(inputs, data_samples, paddings):
            padded.append(F.pad(x, pad, value=self.pad_val))
            for task, spec in TASK_SPECS.items():
                if spec.gt_field not in sample:
                    continue
                label = sample.get(spec.gt_field)
                if tuple(label.shape) != tuple(x.shape[-2:]):
                    raise ValueError(
                        f'{spec.gt_field} of {sample.metainfo.get("img_path")}'
                        f' has shape {tuple(label.shape)}, the image '
                        f'{tuple(x.shape[-2:])}')
                data = F.pad(label.data, pad,
                             value=self._label_pad_value(task))
                del label.data
                label.data = data
            sample.set_metainfo({
                'img_shape': tuple(x.shape[-2:]),
                'pad_shape': tuple(padded[-1].shape[-2:]),
                'padding_size': list(pad),
            })
        return torch.stack(padded, dim=0), data_samples

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Normalise, convert colour order, pad and batch.

        Args:
            data (dict): ``inputs`` (list of [3, H, W] tensors) and
                ``data_samples`` from the dataloader.
            training (bool): Whether this is a training step.

        Returns:
            dict: ``inputs`` [B, 3, H', W'] float and ``data_samples``.
        """
        if not training:
            return super().forward(data, training=False)
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples', None)
        if data_samples is None:
            raise ValueError('MultiTaskDataPreProcessor: training needs '
                             '`data_samples`')
        if self.channel_conversion and inputs[0].size(0) == 3:
            inputs = [x[[2, 1, 0], ...] for x in inputs]
        inputs = [x.float() for x in inputs]
        if self._enable_normalize:
            inputs = [(x - self.mean) / self.std for x in inputs]
        inputs, data_samples = self._pad_samples(inputs, data_samples)
        if self.batch_augments is not None:
            inputs, data_samples = self.batch_augments(inputs, data_samples)
        return dict(inputs=inputs, data_samples=data_samples)

