# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Saliency maxF and mIoU (ASTMT / MTI-Net / InvPT protocol).

Per image, for every threshold ``t`` the binarised prediction ``p >= t`` is
compared with the label over the valid pixels: true positives, predicted
positives and actual positives are summed over the dataset, and maxF is the
best F-measure (β² = 0.3) over the thresholds of the *dataset-level*
precision and recall. mIoU is the best, over thresholds, of the per-image
foreground IoU averaged over images.

The legacy variant reproduces what the published InvPT / TaskPrompter /
MLoRE code (``evaluation/eval_sal.py``, ``SaliencyMeter``) computes: their
network already turns the saliency logits into probabilities (softmax or
sigmoid, times 255), and the meter divides by 255 and applies
``torch.sigmoid`` *again*, so the thresholds ``torch.arange(0.05, 1, 0.05)``
(float32) are compared with ``sigmoid(p)`` which lies in ``[0.5, 0.731]``:
every threshold <= 0.5 marks all pixels salient, every threshold >= 0.75
marks none, and only 0.55 .. 0.70 (i.e. probabilities ``p >= logit(t)`` =
0.20, 0.41, 0.62, 0.85) discriminate. Precision, recall and F carry ``1e-8``
in their denominators there. Known differences from that code: we compute
in float64 (the original accumulates counts in float32 tensors, which
rounds once a count passes 2**24) and the legacy mIoU averages the IoU per
image (the original computes one IoU per *batch* of its loader).
"""
from typing import Dict, Sequence, Union

import numpy as np
import torch

__all__ = [
    'saliency_thresholds', 'saliency_stats', 'saliency_scores',
    'LEGACY_EPS'
]

#: Denominator guard of the published ``SaliencyMeter`` (legacy mode only).
LEGACY_EPS = 1e-8


def saliency_thresholds(step: float = 0.05,
                        legacy: bool = False) -> np.ndarray:
    """The thresholds ``step, 2 step, ... < 1``.

    Args:
        step (float): Threshold step. Defaults to 0.05 (19 thresholds).
        legacy (bool): Return the float32 values of
            ``torch.arange(step, 1, step)`` exactly as the published code
            builds them. Defaults to False (float64 ``k * step``).

    Returns:
        np.ndarray: [T] thresholds (float32 when ``legacy``, else float64).
    """
    if not 0 < step < 1:
        raise ValueError(f'saliency threshold step must be in (0, 1); got '
                         f'{step}')
    if legacy:
        return torch.arange(step, 1, step).numpy()
    num = int(np.ceil(1.0 / step - 1e-9)) - 1
    return np.arange(1, num + 1, dtype=np.float64) * step


def saliency_stats(prob: torch.Tensor,
                   gt: torch.Tensor,
                   thresholds: Union[np.ndarray, Sequence[float]],
                   ignore_index: int = 255,
                   legacy: bool = False) -> np.ndarray:
    """Per-threshold counts and IoU of one saliency map.

    Args:
        prob (Tensor): Salient-class probability in [0, 1], [1, H, W] or
            [H, W].
        gt (Tensor): Label (0 / 1, ``ignore_index`` skipped), same shape.
        thresholds (np.ndarray | Sequence[float]): [T] thresholds.
        ignore_index (int): Label value to skip. Defaults to 255.
        legacy (bool): Threshold ``sigmoid(prob)`` in float32 like the
            published code instead of ``prob``. Defaults to False.

    Returns:
        np.ndarray: float64 [T, 4]: true positives, predicted positives,
        actual positives (same for every row) and the foreground IoU of this
        image (1 when both the label and the prediction are empty).
    """
    if prob.shape != gt.shape:
        raise ValueError(f'saliency prediction shape {tuple(prob.shape)} '
                         f'differs from label shape {tuple(gt.shape)}')
    valid = gt != ignore_index
    target = gt[valid] == 1
    if legacy:
        score = torch.sigmoid(prob.float().to(gt.device)[valid])
        thr = torch.as_tensor(np.asarray(thresholds), dtype=torch.float32,
                              device=gt.device)
    else:
        score = prob.double().to(gt.device)[valid]
        thr = torch.as_tensor(np.asarray(thresholds), dtype=torch.float64,
                              device=gt.device)
    pos = score[None, :] >= thr[:, None]  # [T, N]
    tp = (pos & target[None, :]).sum(dim=1).double()
    pp = pos.sum(dim=1).double()
    ap = target.sum().double().expand_as(tp)
    union = pp + ap - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.ones_like(tp))
    return torch.stack([tp, pp, ap, iou], dim=1).cpu().numpy()


def saliency_scores(stats: Sequence[np.ndarray],
                    beta2: float = 0.3,
                    legacy: bool = False) -> Dict[str, float]:
    """maxF and mIoU over a dataset.

    Args:
        stats (Sequence[np.ndarray]): One [T, 4] array of
            :func:`saliency_stats` per image.
        beta2 (float): β² of the F-measure. Defaults to 0.3.
        legacy (bool): Use the published ``1e-8``-guarded formulas.
            Defaults to False: precision (recall) is 0 when nothing is
            predicted (labelled) salient and F is 0 when P + R is 0.

    Returns:
        dict: ``maxF``, ``mIoU`` (fractions), ``F`` [T] per threshold, and
        ``best_threshold_index``.
    """
    if len(stats) == 0:
        return dict(maxF=float('nan'), mIoU=float('nan'))
    stats = np.stack(stats)  # [N, T, 4]
    tp, pp, ap = (stats[..., i].sum(axis=0) for i in range(3))
    if legacy:
        precision = tp / (pp + LEGACY_EPS)
        recall = tp / (ap + LEGACY_EPS)
        f = (1 + beta2) * precision * recall / (
            beta2 * precision + recall + LEGACY_EPS)
    else:
        precision = np.divide(tp, pp, out=np.zeros_like(tp), where=pp > 0)
        recall = np.divide(tp, ap, out=np.zeros_like(tp), where=ap > 0)
        denom = beta2 * precision + recall
        f = np.divide((1 + beta2) * precision * recall, denom,
                      out=np.zeros_like(tp), where=denom > 0)
    f = np.nan_to_num(f, nan=0.0)
    miou = stats[..., 3].mean(axis=0)
    return dict(
        maxF=float(f.max()),
        mIoU=float(miou.max()),
        F=f,
        best_threshold_index=int(f.argmax()))
