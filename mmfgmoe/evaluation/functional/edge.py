# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Boundary detection scores of the BSDS protocol (odsF / oisF / AP).

Per image and threshold ``t``, the prediction is (optionally) non-maximum
suppressed, binarised with ``pred >= t``, thinned to one pixel, and matched
one-to-one to the label boundary pixels with the BSDS ``correspondPixels``
bipartite matching, pixels matching within ``max_dist`` times the image
diagonal. That yields four integer counts per threshold (``cntR`` matched
label pixels, ``sumR`` label pixels, ``cntP`` matched predicted pixels,
``sumP`` predicted pixels) whose sums over the images give the dataset
precision/recall curve. The work is done by pyEdgeEval (MIT licence; Cython
port of the BSDS500 benchmark and of Dollár's edge NMS):
``pyEdgeEval.common.binary_label.evaluate_boundaries_threshold`` calls
``pyEdgeEval.preprocess.fast_nms`` (r=1, s=5, m=1.01), ``binary_thin`` and
``pyEdgeEval._lib.correspond_pixels`` (outlier cost 100). The aggregation in
:func:`edge_scores` follows
``pyEdgeEval.common.binary_label.calculate_metrics`` (interpolated ODS,
per-image best threshold for OIS, its 100-point AP).

Not deterministic: ``correspond_pixels`` (the BSDS benchmark's ``match.cc``)
connects outlier nodes to random partners drawn from a global RNG seeded from
the clock, and its CSA assignment solver now and then leaves a matchable pair
unmatched (measured: 9 % of calls on a 55-pixel straight line lose 1-2
pixels; odsF of a 425x560 synthetic map varies by about 0.1 points between
runs). The MATLAB benchmark and SEISM share the code and the behaviour. The
aggregation of the counts is exact; only the per-image counts vary.

Cost: about 0.26 s per threshold on a 425x560 image on one core, so the
default 99 thresholds make this the slowest part of an evaluation; see the
``edge_workers`` and ``edge_backend`` options of ``MultiTaskMetric``.
"""
from typing import Dict, Sequence, Union

import numpy as np
import torch

from .boundary_fast import NMS_KWARGS, fast_edge_counts

__all__ = [
    'EDGE_BACKENDS', 'edge_thresholds', 'edge_counts', 'edge_scores',
    'edge_bce_stats', 'edge_bce_score'
]

#: Backends of :func:`edge_counts`.
EDGE_BACKENDS = ('pyedgeeval', 'fast')


def edge_thresholds(thresholds: Union[int, Sequence[float],
                                      np.ndarray]) -> np.ndarray:
    """Turn a threshold spec into an array (pyEdgeEval convention).

    Args:
        thresholds (int | Sequence[float] | np.ndarray): An int ``T`` means
            ``T`` evenly spaced thresholds ``linspace(1/(T+1), 1-1/(T+1), T)``
            (99 -> 0.01 .. 0.99, the BSDS default); otherwise the thresholds
            themselves.

    Returns:
        np.ndarray: float64 [T], strictly increasing, inside (0, 1].
    """
    if isinstance(thresholds, (int, np.integer)) and not isinstance(
            thresholds, bool):
        if thresholds < 1:
            raise ValueError(f'edge_thresholds must be >= 1; got {thresholds}')
        t = int(thresholds)
        return np.linspace(1.0 / (t + 1), 1.0 - 1.0 / (t + 1), t)
    arr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if arr.size == 0 or np.any(np.diff(arr) <= 0) or arr[0] <= 0 or arr[
            -1] > 1:
        raise ValueError('edge_thresholds must be an int or a strictly '
                         f'increasing sequence in (0, 1]; got {thresholds}')
    return arr


def edge_counts(pred: np.ndarray,
                gt: np.ndarray,
                thresholds: np.ndarray,
                max_dist: float = 0.011,
                nms: bool = True,
                backend: str = 'pyedgeeval') -> np.ndarray:
    """BSDS correspondence counts of one image at every threshold.

    Args:
        pred (np.ndarray): [H, W] boundary probability in [0, 1].
        gt (np.ndarray): [H, W] label boundary map (non-zero = boundary).
            Ignored pixels must have been removed by the caller (set to 0
            both here and in ``pred``).
        thresholds (np.ndarray): [T] thresholds (see :func:`edge_thresholds`).
        max_dist (float): Matching tolerance as a fraction of the image
            diagonal (0.011 NYUD, 0.0075 PASCAL / BSDS). Defaults to 0.011.
        nms (bool): Apply fast edge NMS before thresholding. Thinning is
            always applied. Defaults to True.
        backend (str): ``'pyedgeeval'`` or ``'fast'`` (our own
            implementation, ``boundary_fast.fast_edge_counts``). Defaults to
            ``'pyedgeeval'``.

    Returns:
        np.ndarray: int64 [T, 4] ``(cntR, sumR, cntP, sumP)`` per threshold.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError('edge prediction and label must be [H, W] of equal '
                         f'shape; got {pred.shape} and {gt.shape}')
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if backend == 'fast':
        counts = fast_edge_counts(pred, gt, thresholds, max_dist, nms)
        return np.asarray(counts, dtype=np.int64).reshape(len(thresholds), 4)
    if backend != 'pyedgeeval':
        raise ValueError(f'edge backend must be one of {EDGE_BACKENDS}; got '
                         f'{backend!r}')
    from pyEdgeEval.common.binary_label.evaluate_boundaries import \
        evaluate_boundaries_threshold
    count_r, sum_r, count_p, sum_p = evaluate_boundaries_threshold(
        thresholds=thresholds,
        pred=np.ascontiguousarray(pred, dtype=np.float64),
        gt=np.ascontiguousarray(gt != 0),
        max_dist=max_dist,
        apply_thinning=True,
        apply_nms=nms,
        nms_kwargs=NMS_KWARGS)
    counts = np.stack([count_r, sum_r, count_p, sum_p], axis=1)
    return np.rint(counts).astype(np.int64)


def _edge_counts_job(args: tuple) -> np.ndarray:
    """Pool entry point: ``edge_counts(*args)``."""
    return edge_counts(*args)


def edge_scores(counts: Sequence[np.ndarray],
                thresholds: np.ndarray) -> Dict[str, float]:
    """Dataset-level odsF, oisF and AP from per-image counts.

    Args:
        counts (Sequence[np.ndarray]): One int64 [T, 4] array of
            :func:`edge_counts` per image.
        thresholds (np.ndarray): The [T] thresholds used.

    Returns:
        dict: ``odsF``, ``ods_precision``, ``ods_recall``, ``ods_threshold``
        (optimal dataset scale, linearly interpolated between thresholds as
        the BSDS benchmark does), ``oisF``, ``ois_precision``, ``ois_recall``
        (optimal image scale), ``AP`` (pyEdgeEval/BSDS: mean over recall
        levels 0, 0.01, .., 0.99 of the best precision at that recall or
        above, divided by 101) and ``AUC``. Fractions in [0, 1].
    """
    from pyEdgeEval.common.metrics import (compute_rec_prec_f1,
                                           interpolated_max_scores)
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if len(counts) == 0:
        return dict(odsF=float('nan'), oisF=float('nan'), AP=float('nan'))
    stacked = np.stack([np.asarray(c, dtype=np.float64) for c in counts])
    if stacked.shape[1:] != (len(thresholds), 4):
        raise ValueError(f'edge counts must be [T={len(thresholds)}, 4] per '
                         f'image; got {stacked.shape[1:]}')
    # OIS: every image at its own best threshold.
    _, _, f1_img = compute_rec_prec_f1(stacked[..., 0], stacked[..., 1],
                                       stacked[..., 2], stacked[..., 3])
    best = np.argmax(f1_img, axis=1)
    best_counts = stacked[np.arange(len(stacked)), best].sum(axis=0)
    ois_r, ois_p, ois_f = compute_rec_prec_f1(*[float(v) for v in best_counts])
    # ODS: one threshold for the dataset.
    total = stacked.sum(axis=0)
    rec, prec, _ = compute_rec_prec_f1(total[:, 0], total[:, 1], total[:, 2],
                                       total[:, 3])
    ods_t, ods_r, ods_p, ods_f = interpolated_max_scores(thresholds, rec, prec)
    # AP and AUC exactly as pyEdgeEval's calculate_metrics computes them.
    ap = 0.0
    for level in np.arange(0, 1, 0.01):
        ap += np.max(prec[rec >= level], initial=0) / 101
    rec_unique, idx = np.unique(rec, return_index=True)
    if rec_unique.shape[0] > 1:
        prec_inc = 0.01
        auc = np.interp(np.arange(0, 1, prec_inc), rec_unique, prec[idx],
                        left=0.0, right=0.0).sum() * prec_inc
    else:
        auc = 0.0
    return dict(
        odsF=float(ods_f),
        ods_precision=float(ods_p),
        ods_recall=float(ods_r),
        ods_threshold=float(ods_t),
        oisF=float(ois_f),
        ois_precision=float(ois_p),
        ois_recall=float(ois_r),
        AP=float(ap),
        AUC=float(auc))


def edge_bce_stats(prob: torch.Tensor,
                   gt: torch.Tensor,
                   ignore_index: int = 255,
                   eps: float = 1e-7) -> np.ndarray:
    """Sums for the dataset-level class-balanced BCE of boundary maps.

    A cheap stand-in for odsF during training-time validation.

    Args:
        prob (Tensor): Boundary probability in [0, 1], [1, H, W] or [H, W].
        gt (Tensor): Label (0 / 1, ``ignore_index`` skipped), same shape.
        ignore_index (int): Label value to skip. Defaults to 255.
        eps (float): Probabilities are clamped to ``[eps, 1 - eps]`` before
            the log. Defaults to 1e-7.

    Returns:
        np.ndarray: float64 [4]: ``sum -log p`` over boundary pixels,
        ``sum -log(1 - p)`` over non-boundary pixels, and the two pixel
        counts.
    """
    if prob.shape != gt.shape:
        raise ValueError(f'edge prediction shape {tuple(prob.shape)} differs '
                         f'from label shape {tuple(gt.shape)}')
    valid = gt != ignore_index
    target = gt[valid] == 1
    p = prob.double().to(gt.device)[valid].clamp(eps, 1 - eps)
    return np.asarray([
        float(-torch.log(p[target]).sum()),
        float(-torch.log1p(-p[~target]).sum()),
        float(target.sum()),
        float((~target).sum())
    ], dtype=np.float64)


def edge_bce_score(stats: np.ndarray) -> float:
    """Class-balanced BCE (HED weighting) from summed :func:`edge_bce_stats`.

    ``L = (β · S_pos + (1 - β) · S_neg) / N`` with ``β = N_neg / N`` the
    fraction of non-boundary pixels in the dataset.

    Args:
        stats (np.ndarray): [4] summed statistics.

    Returns:
        float: The loss (lower is better); NaN when nothing was valid.
    """
    s_pos, s_neg, n_pos, n_neg = [float(v) for v in stats]
    n = n_pos + n_neg
    if n <= 0:
        return float('nan')
    beta = n_neg / n
    return (beta * s_pos + (1 - beta) * s_neg) / n
