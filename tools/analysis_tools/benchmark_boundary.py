# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Side-by-side speed and agreement of the two edge evaluation backends.

    python tools/analysis_tools/benchmark_boundary.py [--num-images 6]
        [--shape 425 560] [--thresholds 99] [--max-dist 0.011] [--no-nms]
        [--kinds exact blurred shifted noisy empty all_edge] [--seed 0]
        [--workers 1] [--skip-reference] [--verify-exact 2]

Times ``edge_counts(..., backend='pyedgeeval')`` (pyEdgeEval 0.2.8, the
reference) and ``edge_counts(..., backend='fast')``
(:mod:`mmfgmoe.evaluation.functional.boundary_fast`) one after the other on
the same images in one process, then compares per-threshold counts and the
odsF / oisF / AP of :func:`edge_scores` on the whole set and on each kind of
prediction. Label edges come from SynthRoom (rendered into a temporary
folder with ``generate_synth_room``) or, if that module cannot be imported,
from the boundaries of random rectangles and discs. Each label map gets one
kind of prediction, in turn:

* ``exact``: the label map itself;
* ``blurred``: Gaussian-blurred label map, rescaled to a maximum of 1;
* ``shifted``: the blurred map shifted by a few pixels;
* ``noisy``: the blurred map plus smooth noise;
* ``empty``: all zeros;
* ``all_edge``: all ones (slow for pyEdgeEval: its thinning then needs
  hundreds of iterations per threshold).

The last line is ``speedup=<x> max_abs_diff_odsF=<d> max_abs_diff_AP=<a>``
where ``speedup`` is the total pyEdgeEval time over the total fast time (one
process, image after image) and the differences are the largest over the
whole set and the per-kind subsets. ``--workers N`` (N > 1) also times the
fast backend over all images with N worker processes and projects the time
of the NYUD validation set (654 images). ``--verify-exact K`` re-solves, for
up to K thresholds per image where the two backends disagree, the BSDS
assignment exactly (dense ``linear_sum_assignment`` with a complete outlier
graph) and reports whether it agrees with pyEdgeEval or with the fast
backend. ``--skip-reference`` runs only the throughput measurement (last
line ``fast_images_per_s=<x> nyud_val_minutes=<m>``).
"""
import argparse
import glob
import math
import multiprocessing
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional

import cv2
import numpy as np
from pyEdgeEval.preprocess import binary_thin, fast_nms
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment

from mmfgmoe.evaluation.functional.boundary_fast import NMS_KWARGS
from mmfgmoe.evaluation.functional.edge import (edge_counts, edge_scores,
                                                edge_thresholds)

KINDS = ('exact', 'blurred', 'shifted', 'noisy', 'empty', 'all_edge')
NYUD_VAL_IMAGES = 654  # size of the NYUDv2 validation split
#: Largest dense assignment matrix (entries) solved by --verify-exact.
MAX_DENSE_ENTRIES = 25_000_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Time pyEdgeEval and the fast edge backend side by side')
    parser.add_argument('--num-images',
                        type=int,
                        default=6,
                        help='number of label maps')
    parser.add_argument('--shape',
                        type=int,
                        nargs=2,
                        default=[425, 560],
                        metavar=('H', 'W'),
                        help='image size (NYUD: 425 560)')
    parser.add_argument('--thresholds',
                        type=int,
                        default=99,
                        help='number of evenly spaced thresholds (BSDS: 99)')
    parser.add_argument(
        '--max-dist',
        type=float,
        default=0.011,
        help='matching tolerance, fraction of the diagonal (NYUD 0.011)')
    parser.add_argument('--no-nms',
                        action='store_true',
                        help='skip the edge NMS')
    parser.add_argument(
        '--kinds',
        nargs='+',
        default=list(KINDS),
        choices=KINDS,
        help='prediction kinds, assigned to the images in turn')
    parser.add_argument(
        '--blur-sigma',
        type=float,
        default=1.5,
        help='Gaussian sigma (pixels) of the blurred predictions')
    parser.add_argument(
        '--max-shift',
        type=int,
        default=4,
        help='largest shift (pixels) of the shifted predictions')
    parser.add_argument(
        '--noise',
        type=float,
        default=0.3,
        help='weight of the smooth noise of the noisy predictions')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--workers',
        type=int,
        default=1,
        help='also time the fast backend with this many worker processes')
    parser.add_argument(
        '--verify-exact',
        type=int,
        default=0,
        metavar='K',
        help='solve the BSDS assignment exactly at up to K disagreeing '
        'thresholds per image')
    parser.add_argument('--skip-reference',
                        action='store_true',
                        help='only measure the throughput of the fast backend')
    return parser.parse_args()


def bsds_optimum(pred: np.ndarray, gt: np.ndarray,
                 max_dist: float) -> Optional[int]:
    """Matches of an exact optimum of BSDS ``match.cc``'s assignment.

    Same costs as ``match.cc`` (``rint(100 * distance)`` per pair within
    ``max_dist`` x diagonal, ``ceil(100 * outlier cost)`` per unmatched
    pixel with outlier cost 100 x ``max_dist`` x diagonal) but a complete
    outlier graph, solved densely over the pixels that have a partner within
    reach.

    Returns:
        int | None: The number of matched pairs; None when the problem is
        larger than ``MAX_DENSE_ENTRIES``.
    """
    h, w = gt.shape
    radius = max_dist * math.sqrt(h * h + w * w)
    outlier = math.ceil(100 * 100 * radius)
    reach = int(math.ceil(radius)) * 2 + 1
    near_gt = ndi.maximum_filter(gt, size=reach)
    near_pred = ndi.maximum_filter(pred, size=reach)
    py, px = np.nonzero(pred & near_gt)
    gy, gx = np.nonzero(gt & near_pred)
    if len(py) == 0 or len(gy) == 0:
        return 0
    if len(py) * len(gy) > MAX_DENSE_ENTRIES:
        return None
    d2 = (py[:, None] - gy[None])**2 + (px[:, None] - gx[None])**2
    # cost = outlier * (P + G) + sum over pairs of (pair cost - outlier)
    gain = np.where(d2 <= radius * radius,
                    np.rint(100 * np.sqrt(d2)) - outlier, 0).astype(np.int64)
    del d2
    rows, cols = linear_sum_assignment(gain)
    return int((gain[rows, cols] < 0).sum())


def verify_exact(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray,
                 ref: np.ndarray, ours: np.ndarray, args: argparse.Namespace,
                 nms: bool) -> Dict[str, int]:
    """Exact BSDS optimum at up to ``args.verify_exact`` thresholds where
    the backends disagree: which of the two equals it."""
    result = dict(checked=0, fast_exact=0, ref_exact=0, too_large=0)
    diff = np.flatnonzero(ref[:, 0] != ours[:, 0])[:args.verify_exact]
    if len(diff) == 0:
        return result
    pred = pred.astype(np.float64)
    if nms:
        pred = fast_nms(img=pred, **NMS_KWARGS)
    for k in diff:
        best = bsds_optimum(binary_thin(pred >= thresholds[k]), gt != 0,
                            args.max_dist)
        if best is None:
            result['too_large'] += 1
            continue
        result['checked'] += 1
        result['fast_exact'] += int(best == ours[k, 0])
        result['ref_exact'] += int(best == ref[k, 0])
    return result


def _fast_job(job: tuple) -> np.ndarray:
    """Pool entry point: fast ``edge_counts`` of one image."""
    return edge_counts(*job, backend='fast')


def fast_throughput(jobs: List[tuple], workers: int) -> float:
    """Images per second of the fast backend over ``jobs`` with ``workers``
    processes (one process when ``workers <= 1``)."""
    start = time.perf_counter()
    if workers <= 1:
        for job in jobs:
            _fast_job(job)
    else:
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            pool.map(_fast_job, jobs, chunksize=1)
    return len(jobs) / (time.perf_counter() - start)


def _random_shapes_edges(rng: np.random.Generator, height: int,
                         width: int) -> np.ndarray:
    """Boundaries of a random label map of rectangles and discs.

    Returns:
        np.ndarray: uint8 [H, W] 0/1.
    """
    label = np.zeros((height, width), dtype=np.int32)
    yy, xx = np.mgrid[:height, :width]
    for k in range(1, 13):
        if k % 3:  # rectangle
            y0, x0 = rng.integers(0, height), rng.integers(0, width)
            label[y0:y0 + rng.integers(4, height // 2 + 5),
                  x0:x0 + rng.integers(4, width // 2 + 5)] = k
        else:  # disc
            cy, cx = rng.integers(0, height), rng.integers(0, width)
            r = rng.integers(3, min(height, width) // 4 + 4)
            label[(yy - cy)**2 + (xx - cx)**2 <= r * r] = k
    edge = np.zeros(label.shape, dtype=bool)
    edge[:, :-1] |= label[:, :-1] != label[:, 1:]
    edge[:-1, :] |= label[:-1, :] != label[1:, :]
    return edge.astype(np.uint8)


def load_label_edges(num: int, height: int, width: int,
                     seed: int) -> List[np.ndarray]:
    """SynthRoom label edges (or random shapes if SynthRoom is missing).

    Returns:
        list[np.ndarray]: ``num`` uint8 [H, W] 0/1 maps.
    """
    try:
        from mmfgmoe.datasets.synth_room import generate_synth_room
    except ImportError as err:
        print(f'SynthRoom unavailable ({err}); using random shapes')
        rng = np.random.default_rng(seed)
        return [_random_shapes_edges(rng, height, width) for _ in range(num)]
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synth_room(tmp,
                                   layout='nyud',
                                   num_train=0,
                                   num_val=num,
                                   height=height,
                                   width=width,
                                   seed=seed)
        files = sorted(glob.glob(osp.join(root, 'edge', '*.png')))
        edges = [(cv2.imread(f, cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8)
                 for f in files]
    if len(edges) != num:
        raise RuntimeError(f'expected {num} SynthRoom edge maps, found '
                           f'{len(edges)}')
    return edges


def make_prediction(gt: np.ndarray, kind: str, rng: np.random.Generator,
                    args: argparse.Namespace) -> np.ndarray:
    """A perturbed boundary probability map of one label map.

    Returns:
        np.ndarray: float32 [H, W] in [0, 1].
    """
    g = gt.astype(np.float64)

    def blurred(x: np.ndarray) -> np.ndarray:
        x = ndi.gaussian_filter(x, args.blur_sigma)
        return x / max(float(x.max()), np.finfo(np.float64).tiny)

    if kind == 'exact':
        pred = g
    elif kind == 'blurred':
        pred = blurred(g)
    elif kind == 'shifted':
        shift = rng.integers(-args.max_shift, args.max_shift + 1, size=2)
        pred = blurred(np.roll(g, tuple(shift), axis=(0, 1)))
    elif kind == 'noisy':
        noise = ndi.gaussian_filter(rng.random(g.shape), args.blur_sigma)
        noise = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-12)
        pred = (1 - args.noise) * blurred(g) + args.noise * noise
    elif kind == 'empty':
        pred = np.zeros_like(g)
    elif kind == 'all_edge':
        pred = np.ones_like(g)
    else:
        raise ValueError(f'unknown prediction kind {kind!r}')
    return np.clip(pred, 0, 1).astype(np.float32)


def main() -> None:
    args = parse_args()
    height, width = args.shape
    thresholds = edge_thresholds(args.thresholds)
    nms = not args.no_nms
    gts = load_label_edges(args.num_images, height, width, args.seed)
    rng = np.random.default_rng(args.seed)
    kinds = [args.kinds[i % len(args.kinds)] for i in range(len(gts))]
    preds = [make_prediction(g, k, rng, args) for g, k in zip(gts, kinds)]

    # warm-up: imports and first calls are not what we want to time
    for backend in ('pyedgeeval', 'fast'):
        edge_counts(preds[0][:32, :32], gts[0][:32, :32], thresholds[:2],
                    args.max_dist, nms, backend)

    print(f'{len(gts)} images {height}x{width}, {len(thresholds)} '
          f'thresholds, max_dist={args.max_dist}, nms={nms}')
    jobs = [(p, g, thresholds, args.max_dist, nms) for p, g in zip(preds, gts)]
    if args.skip_reference:
        rate = fast_throughput(jobs, args.workers)
        print(f'fast_images_per_s={rate:.2f} nyud_val_minutes='
              f'{NYUD_VAL_IMAGES / rate / 60:.1f}')
        return
    print(f'{"image":>5} {"kind":>9} {"gt_px":>6} {"pyEdgeEval_s":>12} '
          f'{"fast_s":>8} {"ratio":>7} {"equal_thr":>9} {"max_dcnt":>8}')
    verified = dict(checked=0, fast_exact=0, ref_exact=0, too_large=0)
    counts: Dict[str, List[np.ndarray]] = dict(pyedgeeval=[], fast=[])
    times: Dict[str, List[float]] = dict(pyedgeeval=[], fast=[])
    for i, (pred, gt, kind) in enumerate(zip(preds, gts, kinds)):
        for backend in ('pyedgeeval', 'fast'):
            start = time.perf_counter()
            c = edge_counts(pred, gt, thresholds, args.max_dist, nms, backend)
            times[backend].append(time.perf_counter() - start)
            counts[backend].append(c)
        ref, ours = counts['pyedgeeval'][-1], counts['fast'][-1]
        equal = int((ref == ours).all(axis=1).sum())
        print(f'{i:>5} {kind:>9} {int(gt.sum()):>6} '
              f'{times["pyedgeeval"][-1]:>12.2f} {times["fast"][-1]:>8.3f} '
              f'{times["pyedgeeval"][-1] / times["fast"][-1]:>7.1f} '
              f'{equal:>5}/{len(thresholds):<3} '
              f'{int(np.abs(ref - ours).max()):>8}')
        if args.verify_exact > 0:
            v = verify_exact(pred, gt, thresholds, ref, ours, args, nms)
            for key, value in v.items():
                verified[key] += value
    if args.verify_exact > 0:
        print(f'exact BSDS optimum at {verified["checked"]} disagreeing '
              f'thresholds: equals fast {verified["fast_exact"]}, equals '
              f'pyEdgeEval {verified["ref_exact"]} (too large to check: '
              f'{verified["too_large"]})')

    groups = {'all': list(range(len(gts)))}
    for kind in args.kinds:
        groups[kind] = [i for i, k in enumerate(kinds) if k == kind]
    max_diff = dict(odsF=0.0, oisF=0.0, AP=0.0)
    for name, idx in groups.items():
        if not idx:
            continue
        ref = edge_scores([counts['pyedgeeval'][i] for i in idx], thresholds)
        ours = edge_scores([counts['fast'][i] for i in idx], thresholds)
        line = [f'{name:>9} ({len(idx)} img):']
        for metric in max_diff:
            diff = abs(ref[metric] - ours[metric])
            max_diff[metric] = max(max_diff[metric], diff)
            line.append(f'{metric} {ref[metric]:.4f} / {ours[metric]:.4f}')
        print(' '.join(line) + '  (pyEdgeEval / fast)')
    ratios = np.array(times['pyedgeeval']) / np.array(times['fast'])
    print(f'pyEdgeEval {sum(times["pyedgeeval"]):.2f} s, fast '
          f'{sum(times["fast"]):.2f} s; per-image ratio min '
          f'{ratios.min():.1f} median {np.median(ratios):.1f}; '
          f'max_abs_diff_oisF={max_diff["oisF"]:.5f}')
    if args.workers > 1:
        rate = fast_throughput(jobs, args.workers)
        print(f'fast backend with {args.workers} workers: {rate:.2f} images/s'
              f', {NYUD_VAL_IMAGES} images in '
              f'{NYUD_VAL_IMAGES / rate / 60:.1f} min')
    speedup = sum(times['pyedgeeval']) / sum(times['fast'])
    print(f'speedup={speedup:.1f} max_abs_diff_odsF={max_diff["odsF"]:.5f} '
          f'max_abs_diff_AP={max_diff["AP"]:.5f}')


if __name__ == '__main__':
    main()
