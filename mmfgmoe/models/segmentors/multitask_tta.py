# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Test-time augmentation for multi-task segmentors (flip averaging)."""
from typing import Dict, List

import torch
import torch.nn.functional as F
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from torch import Tensor

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList
from ...utils import TASK_SPECS


def _average_task(task: str, samples: SampleList) -> Dict[str, PixelData]:
    """Average one task over the augmented views of one image.

    The wrapped segmentor has already stripped padding, undone the flip
    (negating the normals' component along the flip axis) and resized to
    ``ori_shape``, so the views are aligned. Classification tasks average
    softmax probabilities of their stored logits, edge/saliency their
    probabilities, depth its values and normals their vectors (renormalised
    afterwards).

    Args:
        task (str): Task name.
        samples (list[SegDataSample]): Predictions of the views.

    Returns:
        dict[str, PixelData]: Fields to set on the merged sample.
    """
    spec = TASK_SPECS[task]
    pred_field = spec.pred_field
    if spec.logits_field:
        probs = torch.stack([
            s.get(spec.logits_field).data.float().softmax(dim=0)
            for s in samples
        ]).mean(dim=0)  # [C, H, W]
        return {pred_field: PixelData(data=probs.argmax(dim=0, keepdim=True))}
    mean: Tensor = torch.stack([
        s.get(pred_field).data.float() for s in samples
    ]).mean(dim=0)  # [C, H, W]
    if task == 'normals':
        mean = F.normalize(mean, dim=0)
    return {pred_field: PixelData(data=mean)}


@MODELS.register_module()
class MultiTaskTTAModel(BaseTTAModel):
    """Merge the predictions of augmented views (e.g. flips) of each image.

    Use with ``tta_model = dict(type='MultiTaskTTAModel')`` and a
    ``TestTimeAug`` pipeline; every view goes through the wrapped
    :class:`MultiTaskEncoderDecoder`'s ``predict`` first.
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Merge the views of each image.

        Args:
            data_samples_list (list[list[SegDataSample]]): Per image, the
                predictions of its views.

        Returns:
            list[SegDataSample]: One merged sample per image (metainfo and
            ground truth of the first view).
        """
        merged = []
        for samples in data_samples_list:
            first = samples[0]
            out = SegDataSample(metainfo=first.metainfo)
            for task in self.module.tasks:
                gt_field = TASK_SPECS[task].gt_field
                if gt_field in first:
                    out.set_data({gt_field: first.get(gt_field)})
                out.set_data(_average_task(task, samples))
            merged.append(out)
        return merged
