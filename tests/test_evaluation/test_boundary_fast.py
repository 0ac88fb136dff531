# Copyright (c) mmfgmoe contributors. All rights reserved.
"""The fast BSDS boundary counts (``edge_backend='fast'``) against pyEdgeEval.

pyEdgeEval's ``correspond_pixels`` is randomised (outlier graph drawn from a
clock-seeded RNG) and its CSA solver now and then returns an assignment one
or two matches short of the optimum, so its counts vary between runs. The
fast backend computes the optimum exactly. Where the two differ, the tests
check that ours equals an independent exact solution of the BSDS assignment
objective (a dense ``linear_sum_assignment`` with a complete outlier graph)
and that pyEdgeEval's count is the smaller one.
"""
import glob
import math
import os.path as osp

import cv2
import numpy as np
import pytest
from pyEdgeEval.preprocess import binary_thin as ref_binary_thin
from pyEdgeEval.preprocess import fast_nms
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment

from mmfgmoe.evaluation.functional.boundary_fast import (_THIN_DELETE,
                                                         _candidate_graph,
                                                         binary_thin,
                                                         fast_edge_counts,
                                                         match_count)
from mmfgmoe.evaluation.functional.edge import (edge_counts, edge_scores,
                                                edge_thresholds)

MAX_DIST = 0.011  # NYUD tolerance: 1.1 px on 64x80, 1.8 px on 96x128
THR = edge_thresholds(11)
KINDS = ('exact', 'blurred', 'shifted', 'noisy', 'empty', 'all_edge')
SCORE_TOL = 0.002  # odsF / oisF / AP agreement required by issue 8


def _bsds_optimum(pred: np.ndarray, gt: np.ndarray, max_dist: float) -> int:
    """Matches in an exact optimum of BSDS ``match.cc``'s assignment.

    Costs as in ``match.cc``: a pair within ``max_dist`` x diagonal costs
    ``rint(100 * distance)``, every unmatched pixel ``ceil(100 * 100 *
    max_dist * diagonal)``; the outlier graph is complete (match.cc samples
    6 random outlier partners per pixel instead).
    """
    h, w = gt.shape
    radius = max_dist * math.sqrt(h * h + w * w)
    outlier = math.ceil(100 * 100 * radius)
    py, px = np.nonzero(pred)
    gy, gx = np.nonzero(gt)
    if len(py) == 0 or len(gy) == 0:
        return 0
    d2 = (py[:, None] - gy[None])**2 + (px[:, None] - gx[None])**2
    # total cost = outlier * (P + G) + sum over matched pairs of
    # (pair cost - outlier); non-pairs get 0, i.e. "leave both unmatched"
    gain = np.where(d2 <= radius * radius,
                    np.rint(100 * np.sqrt(d2)) - outlier, 0)
    rows, cols = linear_sum_assignment(gain)
    return int((gain[rows, cols] < 0).sum())


def _shapes_edges(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Boundaries of random rectangles and discs, uint8 [H, W] 0/1."""
    label = np.zeros((h, w), np.int32)
    yy, xx = np.mgrid[:h, :w]
    for k in range(1, 7):
        if k % 3:
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            label[y0:y0 + rng.integers(4, h // 2),
                  x0:x0 + rng.integers(4, w // 2)] = k
        else:
            cy, cx, r = rng.integers(0, h), rng.integers(0, w), \
                rng.integers(3, h // 4)
            label[(yy - cy)**2 + (xx - cx)**2 <= r * r] = k
    edge = np.zeros((h, w), bool)
    edge[:, :-1] |= label[:, :-1] != label[:, 1:]
    edge[:-1, :] |= label[:-1, :] != label[1:, :]
    return edge.astype(np.uint8)


def _prediction(gt: np.ndarray, kind: str,
                rng: np.random.Generator) -> np.ndarray:
    """Perturbed float32 prediction of a label edge map."""
    g = gt.astype(np.float64)

    def blur(x):
        x = ndi.gaussian_filter(x, 1.5)
        return x / max(x.max(), 1e-12)

    pred = {
        'exact':
        lambda: g,
        'blurred':
        lambda: blur(g),
        'shifted':
        lambda: blur(np.roll(g, tuple(rng.integers(-3, 4, 2)), (0, 1))),
        'noisy':
        lambda: 0.7 * blur(g) + 0.3 * ndi.gaussian_filter(
            rng.random(g.shape), 1.0),
        'empty':
        lambda: np.zeros_like(g),
        'all_edge':
        lambda: np.ones_like(g),
    }[kind]()
    return np.clip(pred, 0, 1).astype(np.float32)


@pytest.fixture(scope='module')
def edge_images(synth_nyud_root):
    """24 (pred, gt, kind): 9 SynthRoom label maps (96x128) and 15 random
    shape maps (64x80), predictions of every kind in turn."""
    files = sorted(glob.glob(osp.join(synth_nyud_root, 'edge', '*.png')))
    assert len(files) == 9, files
    gts = [(cv2.imread(f, cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8)
           for f in files]
    rng = np.random.default_rng(0)
    gts += [_shapes_edges(rng, 64, 80) for _ in range(15)]
    return [(_prediction(g, KINDS[i % len(KINDS)],
                         rng), g, KINDS[i % len(KINDS)])
            for i, g in enumerate(gts)]


def test_thinning_tables_are_pyedgeeval_tables():
    from pyEdgeEval.preprocess.thin.thin import (_thin_iter_1_lut,
                                                 _thin_iter_2_lut,
                                                 identity_lut)
    for ours, ref in zip(_THIN_DELETE,
                         (_thin_iter_1_lut(), _thin_iter_2_lut())):
        np.testing.assert_array_equal(ours, identity_lut() & ~ref)


def test_thinning_identical_to_pyedgeeval():
    rng = np.random.default_rng(1)
    masks = [
        ndi.gaussian_filter(rng.random((37, 53)), s) > q
        for s in (0.5, 1.0, 2.0, 3.0) for q in (0.45, 0.5, 0.55)
    ]
    masks += [
        np.ones((30, 41), bool),
        np.zeros((5, 6), bool),
        np.eye(12, dtype=bool),
        rng.random((20, 20)) > 0.3,
        np.indices((16, 16)).sum(0) % 2 == 0
    ]
    for m in masks:
        np.testing.assert_array_equal(binary_thin(m), ref_binary_thin(m))
    with pytest.raises(ValueError, match='binary_thin'):
        binary_thin(np.zeros((2, 3, 4), bool))


def test_match_count_is_the_exact_bsds_optimum():
    rng = np.random.default_rng(2)
    for trial in range(12):
        h, w = 24, 30
        pred = rng.random((h, w)) < rng.uniform(0.02, 0.3)
        gt = rng.random((h, w)) < rng.uniform(0.02, 0.3)
        yx = np.nonzero(pred)
        radius = 0.05 * math.hypot(h, w)
        n = match_count(_candidate_graph(yx, gt, radius)) if len(yx[0]) else 0
        assert n == _bsds_optimum(pred, gt, 0.05), trial


def test_counts_agree_with_pyedgeeval(edge_images):
    ref, ours = [], []
    equal_images = []
    for i, (pred, gt, kind) in enumerate(edge_images):
        r = edge_counts(pred, gt, THR, MAX_DIST, True, 'pyedgeeval')
        o = fast_edge_counts(pred, gt, THR, MAX_DIST, True)
        assert o.dtype == np.int64 and o.shape == (len(THR), 4)
        # label and thinned-prediction pixel counts are identical
        np.testing.assert_array_equal(o[:, [1, 3]], r[:, [1, 3]])
        assert (o[:, 0] == o[:, 2]).all()  # one-to-one matching
        assert (o[:, 0] >= r[:, 0]).all(), (i, kind)
        diff = np.flatnonzero(o[:, 0] != r[:, 0])
        if len(diff) == 0:
            equal_images.append(i)
        nmsed = fast_nms(pred.astype(np.float64), r=1, s=5, m=1.01)
        for k in diff:  # pyEdgeEval short of the optimum: ours is it
            thin = ref_binary_thin(nmsed >= THR[k])
            assert o[k, 0] == _bsds_optimum(thin, gt != 0, MAX_DIST), (i, k)
        ref.append(r)
        ours.append(o)
    print(f'per-threshold counts identical on {len(equal_images)} / '
          f'{len(edge_images)} images')
    # pyEdgeEval misses a match somewhere on ~1/6 to ~1/2 of these images
    assert len(equal_images) >= len(edge_images) // 3
    s_ref, s_ours = edge_scores(ref, THR), edge_scores(ours, THR)
    for metric in ('odsF', 'oisF', 'AP'):
        assert abs(s_ref[metric] - s_ours[metric]) <= SCORE_TOL, metric


def test_without_nms_and_through_edge_counts(edge_images):
    for pred, gt, kind in edge_images[::4]:
        r = edge_counts(pred, gt, THR, MAX_DIST, False, 'pyedgeeval')
        o = edge_counts(pred, gt, THR, MAX_DIST, False, 'fast')
        np.testing.assert_array_equal(
            o,
            fast_edge_counts(pred.astype(np.float64), gt, THR, MAX_DIST,
                             False))
        np.testing.assert_array_equal(o[:, [1, 3]], r[:, [1, 3]])
        assert (o[:, 0] >= r[:, 0]).all() and (o[:, 0] == o[:, 2]).all()


def test_edge_cases():
    rng = np.random.default_rng(3)
    gt = _shapes_edges(rng, 40, 50)
    pred = _prediction(gt, 'blurred', rng)
    empty = np.zeros_like(gt)
    # no label pixels: nothing to recall, every thinned pixel is a false
    # positive (pyEdgeEval's convention)
    o = fast_edge_counts(pred, empty, THR, MAX_DIST, True)
    r = edge_counts(pred, empty, THR, MAX_DIST, True, 'pyedgeeval')
    np.testing.assert_array_equal(o, r)
    assert (o[:, :3] == 0).all() and o[0, 3] > 0
    # no prediction: nothing matched, label pixels all counted (the NMS is
    # skipped for an all-zero map: it would return zeros)
    assert not fast_nms(np.zeros(gt.shape), r=1, s=5, m=1.01).any()
    o = fast_edge_counts(np.zeros(gt.shape), gt, THR, MAX_DIST, True)
    assert (o[:, [0, 2, 3]] == 0).all() and (o[:, 1] == gt.sum()).all()
    # thresholds above every value and a single threshold
    o = fast_edge_counts(pred, gt, np.array([1.5]), MAX_DIST, False)
    np.testing.assert_array_equal(o, [[0, gt.sum(), 0, 0]])
    # label given as 0/255 is the same boundary map
    np.testing.assert_array_equal(
        fast_edge_counts(pred, gt * 255, THR, MAX_DIST, True),
        fast_edge_counts(pred, gt, THR, MAX_DIST, True))


@pytest.mark.parametrize('pred, gt, thr, max_dist, match', [
    (np.zeros((4, 5)), np.zeros((4, 6)), THR, MAX_DIST, 'equal shape'),
    (np.zeros((2, 4, 5)), np.zeros((2, 4, 5)), THR, MAX_DIST, r'\[H, W\]'),
    (np.full((4, 5), np.nan), np.zeros((4, 5)), THR, MAX_DIST, 'NaN'),
    (np.zeros((4, 5)), np.zeros((4, 5)), THR, 0.0, 'max_dist'),
])
def test_invalid_inputs(pred, gt, thr, max_dist, match):
    with pytest.raises(ValueError, match=match):
        fast_edge_counts(pred, gt, thr, max_dist, True)


def test_long_augmenting_path_limit():
    """The documented limit of "maximum matching == BSDS optimum": a label
    line and a prediction shifted along it by one pixel. Matching every
    pixel costs 1 px per pair; leaving the two end pixels unmatched costs
    ``2 * oc / 2`` = 100 x tolerance (here 150 px). Below that length both
    agree; above it the BSDS optimum leaves the ends out and we do not."""
    h, w = 3, 400
    max_dist = 1.5 / math.hypot(h, w)  # tolerance 1.5 px, outlier cost 150
    for length, excess in ((100, 0), (140, 0), (300, 1)):
        gt = np.zeros((h, w), bool)
        gt[1, :length] = True
        pred = np.zeros((h, w), bool)
        pred[1, 1:length + 1] = True
        ours = fast_edge_counts(pred.astype(float), gt, np.array([0.5]),
                                max_dist, False)[0, 0]
        assert ours == length
        assert ours - _bsds_optimum(pred, gt, max_dist) == excess


def test_benchmark_script(monkeypatch, capsys):
    """tools/analysis_tools/benchmark_boundary.py runs and ends with the
    summary line."""
    import re
    import runpy
    tool = osp.join(osp.dirname(__file__), '..', '..', 'tools',
                    'analysis_tools', 'benchmark_boundary.py')
    monkeypatch.setattr('sys.argv', [
        tool, '--num-images', '3', '--shape', '48', '64', '--thresholds', '3',
        '--kinds', 'blurred', 'noisy', 'empty', '--verify-exact', '1'
    ])
    runpy.run_path(tool, run_name='__main__')
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(
        r'speedup=[0-9.]+ max_abs_diff_odsF=[0-9.]+ max_abs_diff_AP=[0-9.]+',
        lines[-1]), lines[-1]
    assert any(line.startswith('exact BSDS optimum at') for line in lines)
