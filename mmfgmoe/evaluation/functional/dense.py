# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Per-image sufficient statistics of the dense tasks (segmentation, depth,
surface normals) and the dataset-level scores computed from their sums.

Every ``*_stats`` function turns one image into a handful of numbers (a
confusion matrix, a few sums, a sparse histogram) whose element-wise sum over
the images of a dataset gives the dataset-level metric exactly; this is what
keeps :class:`MultiTaskMetric` bounded in memory and exact when results are
gathered from several ranks. Statistics are computed with torch on the device
the prediction lives on and returned as small numpy arrays on the CPU.
"""
import math
from typing import Dict, Sequence, Tuple

import numpy as np
import torch

__all__ = [
    'confusion_matrix', 'iou_scores', 'depth_stats', 'depth_scores',
    'angular_error', 'normals_stats', 'normals_scores'
]


def confusion_matrix(pred: torch.Tensor, gt: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> np.ndarray:
    """Confusion matrix of one label map.

    Args:
        pred (Tensor): Predicted class ids, any integer shape (e.g. [1, H, W]).
        gt (Tensor): Label ids, same shape; ``ignore_index`` pixels are
            skipped.
        num_classes (int): Number of classes ``C``.
        ignore_index (int): Label value to skip. Defaults to 255.

    Returns:
        np.ndarray: int64 [C, C]; entry ``[g, p]`` counts pixels of label
        ``g`` predicted as ``p``.

    Raises:
        ValueError: if shapes differ or a valid label / prediction is outside
            ``[0, C)``.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {tuple(pred.shape)} differs from '
                         f'label shape {tuple(gt.shape)}')
    gt = gt.reshape(-1).long()
    pred = pred.reshape(-1).long().to(gt.device)
    valid = gt != ignore_index
    # Whole-tensor ops (no boolean gathers): invalid pixels go to an extra
    # bin that is dropped.
    gt_v = torch.where(valid, gt, 0)
    pred_v = torch.where(valid, pred, 0)
    if bool(((gt_v < 0) | (gt_v >= num_classes)).any()):
        raise ValueError(f'label ids must be in [0, {num_classes}) or '
                         f'{ignore_index}; got range [{int(gt_v.min())}, '
                         f'{int(gt_v.max())}]')
    if bool(((pred_v < 0) | (pred_v >= num_classes)).any()):
        raise ValueError(f'predicted ids must be in [0, {num_classes}); got '
                         f'range [{int(pred_v.min())}, {int(pred_v.max())}]')
    flat = torch.where(valid, gt_v * num_classes + pred_v,
                       num_classes * num_classes)
    counts = torch.bincount(flat, minlength=num_classes * num_classes + 1)
    return counts[:-1].reshape(num_classes, num_classes).cpu().numpy(
    ).astype(np.int64)


def iou_scores(conf: np.ndarray) -> Dict[str, np.ndarray]:
    """Scores of a (dataset-level) confusion matrix.

    Classes that appear neither in the labels nor in the predictions have an
    undefined IoU (NaN) and are left out of the mean (mmseg convention).

    Args:
        conf (np.ndarray): [C, C] confusion matrix (rows: label).

    Returns:
        dict: ``IoU`` [C] and ``Acc`` [C] per class (fractions, NaN where
        undefined), ``mIoU``, ``mAcc``, ``aAcc`` (fractions; NaN when nothing
        was counted).
    """
    conf = conf.astype(np.float64)
    tp = np.diag(conf)
    gt_count = conf.sum(axis=1)
    pred_count = conf.sum(axis=0)
    union = gt_count + pred_count - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt_count > 0, tp / gt_count, np.nan)
    total = conf.sum()
    return dict(
        IoU=iou,
        Acc=acc,
        mIoU=_nanmean(iou),
        mAcc=_nanmean(acc),
        aAcc=float(tp.sum() / total) if total > 0 else float('nan'))


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float('nan')


def depth_stats(pred: torch.Tensor,
                gt: torch.Tensor,
                min_depth: float = 1e-9,
                delta_base: float = 1.25,
                num_deltas: int = 3) -> np.ndarray:
    """Sums over the valid pixels of one depth map.

    A pixel is valid when its label is finite and > 0 (0 marks missing
    depth). The prediction is clamped to ``min_depth`` before the log and
    ratio terms, as in the InvPT/MTI-Net depth meter.

    Args:
        pred (Tensor): Predicted depth in metres, [1, H, W] or [H, W].
        gt (Tensor): Label depth in metres, same shape.
        min_depth (float): Lower clamp of the prediction for ``log`` and
            ratios. Defaults to 1e-9.
        delta_base (float): Base of the δ accuracy thresholds
            ``base**k, k = 1..num_deltas``. Defaults to 1.25.
        num_deltas (int): Number of δ thresholds. Defaults to 3.

    Returns:
        np.ndarray: float64 [4 + num_deltas]: number of valid pixels, sum of
        squared errors, sum of ``|pred - gt| / gt``, sum of squared log
        errors, then the count of pixels with ``max(pred/gt, gt/pred) <
        delta_base**k`` for each k.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'depth prediction shape {tuple(pred.shape)} differs '
                         f'from label shape {tuple(gt.shape)}')
    gt = gt.double()
    pred = pred.double().to(gt.device)
    valid = torch.isfinite(gt) & (gt > 0)
    gt, pred = gt[valid], pred[valid]
    clamped = pred.clamp(min=min_depth)
    ratio = torch.maximum(clamped / gt, gt / clamped)
    out = [
        float(gt.numel()),
        float(((pred - gt)**2).sum()),
        float(((pred - gt).abs() / gt).sum()),
        float(((torch.log(clamped) - torch.log(gt))**2).sum()),
    ]
    out += [
        float((ratio < delta_base**k).sum()) for k in range(1, num_deltas + 1)
    ]
    return np.asarray(out, dtype=np.float64)


def depth_scores(stats: np.ndarray) -> Dict[str, float]:
    """Dataset-level depth scores from summed :func:`depth_stats`.

    Args:
        stats (np.ndarray): [4 + K] sums.

    Returns:
        dict: ``rmse`` (metres, sqrt of total squared error / total valid
        pixels), ``abs_rel``, ``log_rmse``, ``delta1`` .. ``deltaK``
        (fractions). NaN when no pixel was valid.
    """
    n = stats[0]
    if n <= 0:
        nan = float('nan')
        out = dict(rmse=nan, abs_rel=nan, log_rmse=nan)
        out.update({f'delta{k}': nan for k in range(1, len(stats) - 3)})
        return out
    out = dict(
        rmse=math.sqrt(stats[1] / n),
        abs_rel=stats[2] / n,
        log_rmse=math.sqrt(stats[3] / n))
    out.update(
        {f'delta{k}': stats[3 + k] / n
         for k in range(1, len(stats) - 3)})
    return {k: float(v) for k, v in out.items()}


def angular_error(pred: torch.Tensor,
                  gt: torch.Tensor,
                  eps: float = 1e-12) -> Tuple[torch.Tensor, torch.Tensor]:
    """Angle in degrees between predicted and label normals.

    Both are normalised first. A label pixel whose vector is all zero (or
    not finite) is invalid.

    Args:
        pred (Tensor): [3, H, W] predicted normals.
        gt (Tensor): [3, H, W] label normals.
        eps (float): Guard against dividing by a zero-length prediction.
            Defaults to 1e-12.

    Returns:
        tuple[Tensor, Tensor]: float64 angles [N] of the N valid pixels, and
        the bool validity mask [H, W].
    """
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[0] != 3:
        raise ValueError('normals must be [3, H, W] and of equal shape; got '
                         f'prediction {tuple(pred.shape)}, label '
                         f'{tuple(gt.shape)}')
    gx, gy, gz = gt.double().unbind(0)
    px, py, pz = pred.double().to(gt.device).unbind(0)
    # Per-channel element-wise ops, one gather at the end: reductions over
    # the channel dim and boolean gathers of [3, N] are slow on CPU.
    gt_sq = gx * gx + gy * gy + gz * gz
    pred_sq = px * px + py * py + pz * pz
    valid = torch.isfinite(gt_sq) & (gt_sq > 0)  # NaN / inf propagate
    cos = (gx * px + gy * py + gz * pz) / (
        gt_sq.sqrt().clamp(min=eps) * pred_sq.sqrt().clamp(min=eps))
    cos = cos[valid].clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos)), valid


def normals_stats(pred: torch.Tensor,
                  gt: torch.Tensor,
                  thresholds: Sequence[float] = (11.25, 22.5, 30.0),
                  bin_width: float = 0.01) -> Dict[str, np.ndarray]:
    """Sums and a sparse histogram of the angular errors of one image.

    Args:
        pred (Tensor): [3, H, W] predicted normals.
        gt (Tensor): [3, H, W] label normals (all-zero vector = invalid).
        thresholds (Sequence[float]): Angles (degrees) for the "% within"
            scores. Defaults to (11.25, 22.5, 30.0).
        bin_width (float): Histogram bin width in degrees, used only for the
            median. Defaults to 0.01.

    Returns:
        dict: ``sums`` float64 [3 + len(thresholds)]: number of valid pixels,
        sum of errors, sum of squared errors, then the count of errors
        strictly below each threshold; ``bins`` int32 [K] and ``counts``
        int64 [K]: the non-empty histogram bins (bin ``i`` holds errors in
        ``[i * bin_width, (i + 1) * bin_width)``) and their counts.
    """
    err, _ = angular_error(pred, gt)
    sums = [float(err.numel()), float(err.sum()), float((err**2).sum())]
    sums += [float((err < t).sum()) for t in thresholds]
    hist = np.bincount(
        np.floor(err.cpu().numpy() / bin_width).astype(np.int64))
    bins = np.flatnonzero(hist)
    return dict(
        sums=np.asarray(sums, dtype=np.float64),
        bins=bins.astype(np.int32),
        counts=hist[bins].astype(np.int64))


def normals_scores(sums: np.ndarray, bins: np.ndarray, counts: np.ndarray,
                   thresholds: Sequence[float],
                   bin_width: float) -> Dict[str, float]:
    """Dataset-level normal scores.

    Args:
        sums (np.ndarray): Summed ``sums`` of :func:`normals_stats`.
        bins (np.ndarray): Concatenated ``bins`` of all images.
        counts (np.ndarray): Concatenated ``counts`` (same length).
        thresholds (Sequence[float]): The thresholds used for ``sums``.
        bin_width (float): The histogram bin width used (degrees).

    Returns:
        dict: ``mean``, ``rmse`` (exact), ``median`` (within ``bin_width /
        2`` of the exact median: the centres of the bins holding the middle
        element(s), averaged as :func:`numpy.median` averages the two middle
        values), ``within_<t>`` (fractions of valid pixels below each
        threshold ``t``). NaN when no pixel was valid.
    """
    n = sums[0]
    names = [f'within_{t:g}' for t in thresholds]
    if n <= 0:
        return {k: float('nan') for k in ['mean', 'median', 'rmse'] + names}
    out = dict(mean=sums[1] / n, rmse=math.sqrt(sums[2] / n))
    hist = np.bincount(
        bins.astype(np.int64), weights=counts.astype(np.float64))
    cum = np.cumsum(hist)
    total = int(round(cum[-1]))
    # 0-based ranks of the middle element(s) of the sorted errors.
    lo_rank, hi_rank = (total - 1) // 2, total // 2
    lo_bin = int(np.searchsorted(cum, lo_rank + 1))
    hi_bin = int(np.searchsorted(cum, hi_rank + 1))
    out['median'] = (lo_bin + hi_bin + 1) * bin_width / 2
    for name, count in zip(names, sums[3:]):
        out[name] = count / n
    return {k: float(v) for k, v in out.items()}
