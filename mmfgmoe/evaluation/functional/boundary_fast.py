# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Fast BSDS boundary correspondence counts (``edge_backend='fast'``).

Computes the same per-threshold counts ``(cntR, sumR, cntP, sumP)`` as the
pyEdgeEval path of :func:`mmfgmoe.evaluation.functional.edge.edge_counts`
(``pyEdgeEval.common.binary_label.evaluate_boundaries_threshold`` with
``apply_thinning=True``), by better algorithms rather than a different metric:

1. **NMS**: pyEdgeEval's own ``fast_nms`` (Dollár's ``edgesNmsMex``, r=1, s=5,
   m=1.01) on the float64 prediction, once per image, unchanged — its result
   is sensitive to the last bits of the smoothing, so it is not re-implemented.
2. **Thresholds**: the binarised maps ``pred >= t`` are nested, so two
   thresholds with the same number of pixels above them give the same map;
   each distinct map is thinned and matched once. Map ``t`` is the first
   ``count(pred >= t)`` pixels in order of decreasing value (one sort per
   image), so no per-threshold pass over the image is needed.
3. **Thinning**: the same two-sub-iteration Guo-Hall lookup-table thinning as
   ``pyEdgeEval.preprocess.binary_thin`` (same tables, same stopping rule,
   including its early stop after a first sub-iteration that deletes
   nothing), but on pixel lists and incrementally over the nested maps: the
   neighbourhood codes of the unthinned map are updated as pixels are added,
   the pixels either table would delete are tracked, and later
   sub-iterations re-evaluate only the neighbours of the pixels just
   deleted (nothing else can change), instead of every pixel of the image
   in every sub-iteration of every threshold. Identical pixel for pixel.
4. **Matching**: BSDS ``correspondPixels`` solves a min-cost assignment in
   which every unmatched pixel costs ``oc = 100 x max_dist x diagonal`` and a
   matched pair its distance (at most ``d = max_dist x diagonal``); the
   counts only use *how many* pixels are matched (``cntR == cntP``). Growing
   a matching along an augmenting path changes its cost by (length of the
   new pairs) - (length of the pairs it replaces) - ``oc``, which is
   negative unless the new pairs add up to at least ``oc`` = 100 ``d`` of
   distance (so at least 100 new pairs). Hence the optimal assignment is a
   maximum-cardinality matching of the graph linking pixels within ``d``,
   except where the only augmenting paths are that long; we compute the
   maximum matching exactly with Dinic's maximum flow
   (``scipy.sparse.csgraph.maximum_flow``) on the sparse candidate graph,
   built once per image for the union of all thinned maps (pixels with no
   partner within reach dropped) and sliced per threshold; consecutive maps
   bound each other's matching size, which settles many thresholds without
   a flow (:func:`_matching_sizes`). SciPy's ``maximum_bipartite_matching``
   is not used: its Hopcroft-Karp DFS takes exponential time on layered
   graphs such as parallel edge chains (scipy/scipy#26147); it hangs on
   real edge maps.
   Known limit: a prediction lying on a label contour but shifted along it
   by one pixel is matched one pixel more than the BSDS optimum when the
   contour is longer than 100 ``d`` (777 px on a 425x560 NYUD image, more
   than its 706 px diagonal, so no straight line; a long curved contour
   could), see ``tests/test_evaluation/test_boundary_fast.py::
   test_long_augmenting_path_limit``. Never seen on the test and benchmark
   images, where every disagreement checked against an exact dense solver
   was pyEdgeEval's.

Agreement with pyEdgeEval: ``sumR`` and ``sumP`` are identical; ``cntR`` /
``cntP`` are the exact optimum, while pyEdgeEval's CSA solver is randomised
(outlier edges drawn from a clock-seeded RNG) and now and then returns a
matching a few pixels short of it (1-2 on 64x80 images, up to ~10 on
425x560 ones), so its counts are ``<=`` ours and vary between runs; odsF /
oisF / AP differ by about 1e-3. Speed: about 0.05-0.75 s per 425x560 image
at 99 thresholds on one core (pyEdgeEval's NMS alone takes 0.05-0.15 s of
it), 13x to 300x faster than pyEdgeEval. See
``tests/test_evaluation/test_boundary_fast.py`` and
``tools/analysis_tools/benchmark_boundary.py``.
"""
import math
from typing import Dict, List, Tuple

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import maximum_flow

__all__ = ['fast_edge_counts', 'binary_thin', 'match_count']

#: Fast-NMS arguments of the BSDS / pyEdgeEval protocol (Dollár's
#: ``edgesNmsMex``: suppression radius, boundary radius, multiplier), used by
#: both edge backends.
NMS_KWARGS = dict(r=1, s=5, m=1.01, half_prec=False)

# 3x3 neighbourhood code of pyEdgeEval's thinning: bit value of each
# neighbour, row-major from the north-west corner (centre = 16).
_NEIGH_BITS = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=np.int32)

#: Pixels whose neighbourhood codes are computed per vectorised chunk
#: (bounds the [n, 9] temporary to a few tens of MB).
_CODE_CHUNK = 1 << 20


def _thin_delete_luts() -> Tuple[np.ndarray, np.ndarray]:
    """Deletion tables of the two Guo-Hall thinning sub-iterations.

    Built from the conditions G1, G2, G3 / G3' exactly as
    ``pyEdgeEval.preprocess.thin.thin`` builds its lookup tables (neighbour
    ``k`` = 1..8 counter-clockwise from east).

    Returns:
        tuple[np.ndarray, np.ndarray]: Two bool [512] tables, True where the
        centre pixel of that neighbourhood code is deleted in the first /
        second sub-iteration.
    """
    codes = np.arange(512)
    # centre, then E, NE, N, NW, W, SW, S, SE (bit values of _NEIGH_BITS)
    bits = [16, 32, 4, 2, 1, 8, 64, 128, 256]

    def one(k: int) -> np.ndarray:
        return (codes & bits[k - 8 if k > 8 else k]) != 0

    g1 = sum((~one(2 * i - 1) & (one(2 * i) | one(2 * i + 1))).astype(int)
             for i in range(1, 5)) == 1
    n1 = sum((one(2 * k - 1) | one(2 * k)).astype(int) for k in range(1, 5))
    n2 = sum((one(2 * k) | one(2 * k + 1)).astype(int) for k in range(1, 5))
    g2 = (np.minimum(n1, n2) >= 2) & (np.minimum(n1, n2) <= 3)
    g3 = ~((one(2) | one(3) | ~one(8)) & one(1))
    g3p = ~((one(6) | one(7) | ~one(4)) & one(5))
    centre = one(0)
    return centre & g1 & g2 & g3, centre & g1 & g2 & g3p


_THIN_DELETE = _thin_delete_luts()


def _neighbourhood_codes(padded: np.ndarray, pixels: np.ndarray,
                         offsets: np.ndarray) -> np.ndarray:
    """3x3 neighbourhood codes (pyEdgeEval's bit order) of some pixels.

    Args:
        padded (np.ndarray): Flat bool image(s) with a zero border.
        pixels (np.ndarray): [n] flat indices (not on the border).
        offsets (np.ndarray): [9] flat offsets in ``_NEIGH_BITS`` order.

    Returns:
        np.ndarray: int32 [n] codes in [0, 512).
    """
    codes = np.empty(len(pixels), dtype=np.int32)
    for start in range(0, len(pixels), _CODE_CHUNK):
        chunk = pixels[start:start + _CODE_CHUNK]
        # [n, 9] neighbourhoods -> [n] codes
        codes[start:start +
              _CODE_CHUNK] = padded[chunk[:, None] + offsets].astype(
                  np.int32) @ _NEIGH_BITS
    return codes


class _Thinner:
    """Thinning of a growing binary image, kept as pixel lists.

    Implements the two-sub-iteration lookup-table thinning of pyEdgeEval's
    ``binary_thin`` (same tables; it stops as soon as a sub-iteration would
    delete nothing, even the first of a pair) for the nested maps
    ``pred >= t`` of decreasing ``t``: pixels are added with :meth:`grow`
    and the current map is thinned with :meth:`thin` (which leaves the map
    itself unchanged). Work is proportional to what changes, not to the
    image: the 3x3 neighbourhood codes of the unthinned map are updated when
    pixels are added, and the pixels that either table would delete from it
    are tracked, so the first two sub-iterations cost nothing where nothing
    changed; afterwards a pixel's code can only change when a neighbour was
    deleted, so only the foreground neighbours of the pixels deleted in the
    previous two sub-iterations are re-evaluated. The deletions are exactly
    those of evaluating every pixel of the image in every sub-iteration.

    Args:
        height (int): Image height H.
        width (int): Image width W.
    """

    def __init__(self, height: int, width: int) -> None:
        self.width = width
        wp = width + 2
        self.padded_width = wp
        size = (height + 2) * wp
        self.padded = np.zeros(size, dtype=bool)  # the current map
        self.code = np.zeros(size, dtype=np.int16)  # its neighbourhood codes
        self.stamp = np.empty(size, dtype=np.int32)  # de-duplication scratch
        # per table: a superset of the map pixels it deletes (membership
        # flags avoid repeats)
        self.deletable = [np.empty(0, dtype=np.intp) for _ in _THIN_DELETE]
        self.listed = [np.zeros(size, dtype=bool) for _ in _THIN_DELETE]
        # flat offsets of the 3x3 neighbourhood, in _NEIGH_BITS order
        self.offsets = np.array(
            [-wp - 1, -wp, -wp + 1, -1, 0, 1, wp - 1, wp, wp + 1],
            dtype=np.intp)
        self.ring = np.delete(self.offsets, 4)

    def to_padded(self, flat: np.ndarray) -> np.ndarray:
        """Flat [H, W] indices -> flat indices of the padded buffer."""
        y, x = np.divmod(flat, self.width)
        return (y + 1) * self.padded_width + (x + 1)

    def to_flat(self, padded: np.ndarray) -> np.ndarray:
        """Flat indices of the padded buffer -> flat [H, W] indices."""
        y, x = np.divmod(padded, self.padded_width)
        return (y - 1) * self.width + (x - 1)

    def _unique(self, pixels: np.ndarray) -> np.ndarray:
        """Drop repeated indices in O(n) (one writer wins the stamp)."""
        order = np.arange(len(pixels), dtype=np.int32)
        self.stamp[pixels] = order
        return pixels[self.stamp[pixels] == order]

    def _foreground_around(self, pixels: np.ndarray,
                           offsets: np.ndarray) -> np.ndarray:
        """Distinct foreground pixels among ``pixels + offsets``."""
        around = (pixels[:, None] + offsets).ravel()
        return self._unique(around[self.padded[around]])

    def grow(self, pixels: np.ndarray) -> None:
        """Add pixels to the map.

        Args:
            pixels (np.ndarray): [n] distinct padded-buffer indices (see
                :meth:`to_padded`), not in the map yet.
        """
        self.padded[pixels] = True
        # pixel p is neighbour ``offset`` of pixel p - offset
        for offset, bit in zip(self.offsets, _NEIGH_BITS):
            self.code[pixels - offset] += bit
        changed = self._foreground_around(pixels, self.offsets)
        for table, listed, lut in zip(range(2), self.listed, _THIN_DELETE):
            new = changed[lut[self.code[changed]] & ~listed[changed]]
            listed[new] = True
            self.deletable[table] = np.concatenate(
                [self.deletable[table], new])

    def _deleted_from_map(self, table: int) -> np.ndarray:
        """Pixels of the (unthinned) map that ``table`` deletes."""
        cand = self.deletable[table]
        keep = _THIN_DELETE[table][self.code[cand]]
        self.listed[table][cand[~keep]] = False
        self.deletable[table] = cand[keep]
        return self.deletable[table]

    def thin(self, pixels: np.ndarray) -> np.ndarray:
        """Thin the current map; the map itself is left unchanged.

        Args:
            pixels (np.ndarray): [n] padded-buffer indices of all the pixels
                of the map.

        Returns:
            np.ndarray: The padded-buffer indices of the pixels that remain,
            a subset of ``pixels`` in the same order.
        """
        padded = self.padded
        deleted = self._deleted_from_map(0)
        if len(deleted) == 0:
            return pixels
        padded[deleted] = False
        removed = [deleted]
        recent = [deleted]  # deletions of the last two sub-iterations
        # second table, first use: codes unchanged except next to deletions
        cand = self._unique(
            np.concatenate([
                self._deleted_from_map(1),
                (deleted[:, None] + self.ring).ravel()
            ]))
        cand = cand[padded[cand]]
        step = 1
        while True:
            delete = _THIN_DELETE[step % 2][_neighbourhood_codes(
                padded, cand, self.offsets)]
            deleted = cand[delete]
            if len(deleted) == 0:
                break
            padded[deleted] = False
            removed.append(deleted)
            recent = [deleted] + recent[:1]
            step += 1
            cand = self._foreground_around(np.concatenate(recent), self.ring)
        kept = pixels[padded[pixels]]
        padded[np.concatenate(removed)] = True
        return kept


def binary_thin(mask: np.ndarray) -> np.ndarray:
    """Morphological thinning, identical to ``pyEdgeEval``'s ``binary_thin``.

    See :class:`_Thinner` for how it is computed.

    Args:
        mask (np.ndarray): [H, W] binary image (non-zero = foreground).

    Returns:
        np.ndarray: bool [H, W] thinned image.
    """
    if mask.ndim != 2:
        raise ValueError(f'binary_thin expects an [H, W] image; got shape '
                         f'{mask.shape}')
    thinner = _Thinner(*mask.shape)
    pixels = thinner.to_padded(np.flatnonzero(mask))
    thinner.grow(pixels)
    kept = thinner.to_flat(thinner.thin(pixels))
    out = np.zeros(mask.size, dtype=bool)
    out[kept] = True
    return out.reshape(mask.shape)


def _candidate_graph(pred_yx: Tuple[np.ndarray, np.ndarray], gt: np.ndarray,
                     radius: float) -> sparse.csr_matrix:
    """Pixel pairs of ``correspondPixels`` that may be matched.

    A predicted pixel and a label pixel are linked when their squared
    offset ``u*u + v*v`` is at most ``radius * radius`` (the test of BSDS
    ``match.cc``, in float64).

    Args:
        pred_yx (tuple[np.ndarray, np.ndarray]): Row and column [P] of the
            predicted pixels (graph rows, in this order).
        gt (np.ndarray): bool [H, W] label boundary map; its pixels in
            row-major order are the graph columns.
        radius (float): Matching distance in pixels.

    Returns:
        scipy.sparse.csr_matrix: int32 [P, G] canonical adjacency matrix.
    """
    h, w = gt.shape
    r = int(math.ceil(radius))
    wr = w + 2 * r
    gt_id = np.full((h + 2 * r, wr), -1, dtype=np.int64)
    gy, gx = np.nonzero(gt)
    gt_id[gy + r, gx + r] = np.arange(len(gy))
    gt_id = gt_id.ravel()
    py, px = pred_yx
    base = (py + r) * wr + (px + r)
    rows: List[np.ndarray] = []
    cols: List[np.ndarray] = []
    for v in range(-r, r + 1):
        for u in range(-r, r + 1):
            if u * u + v * v > radius * radius:
                continue
            j = gt_id[base + (v * wr + u)]
            hit = np.flatnonzero(j >= 0)
            rows.append(hit)
            cols.append(j[hit])
    rows_a = np.concatenate(rows)
    cols_a = np.concatenate(cols)
    return sparse.csr_matrix(
        (np.ones(len(rows_a), dtype=np.int32), (rows_a, cols_a)),
        shape=(len(py), len(gy)))


def match_count(adjacency: sparse.csr_matrix) -> int:
    """Size of a maximum matching of a bipartite graph.

    Dinic's maximum flow on source -> rows -> columns -> sink with unit
    capacities (``O(E sqrt(V))``).

    Args:
        adjacency (scipy.sparse.csr_matrix): [P, G] canonical CSR adjacency
            (row ``i`` linked to column ``j`` where stored).

    Returns:
        int: Number of matched pairs.
    """
    n_rows, n_cols = adjacency.shape
    if adjacency.nnz == 0:
        return 0
    nnz = adjacency.nnz
    n = n_rows + n_cols + 2
    sink = n - 1
    # node 0 = source, 1..P = rows, P+1..P+G = columns, P+G+1 = sink
    indptr = np.empty(n + 1, dtype=np.int32)
    indptr[0] = 0
    indptr[1:n_rows + 2] = n_rows + adjacency.indptr
    indptr[n_rows + 2:n_rows + n_cols + 2] = (n_rows + nnz +
                                              np.arange(1, n_cols + 1))
    indptr[-1] = indptr[-2]
    indices = np.concatenate([
        np.arange(1, n_rows + 1, dtype=np.int32),
        adjacency.indices.astype(np.int32) + (n_rows + 1),
        np.full(n_cols, sink, dtype=np.int32)
    ])
    flow_graph = sparse.csr_matrix(
        (np.ones(len(indices), dtype=np.int32), indices, indptr), shape=(n, n))
    return int(maximum_flow(flow_graph, 0, sink, method='dinic').flow_value)


def _matching_sizes(graph: sparse.csr_matrix,
                    rows: List[np.ndarray]) -> List[int]:
    """Maximum matching sizes of a sequence of row subsets of one graph.

    Adding or removing one row changes the size of a maximum matching by at
    most one, so the previous subset ``A`` brackets the next one ``B``:
    ``k_A - |A \\ B| <= k_B <= k_A + |B \\ A|``; also ``k_B <= min(|B|,
    number of columns linked to B)``. A flow is run only where the bounds
    do not meet. With the thinned maps from the lowest threshold up they
    meet mostly at high thresholds, where every predicted pixel is matched
    and a map is a subset of the previous one (a quarter to two thirds of
    the flows on the benchmark images).

    Args:
        graph (scipy.sparse.csr_matrix): [P, G] adjacency.
        rows (list[np.ndarray]): Row subsets (distinct row ids each).

    Returns:
        list[int]: Maximum matching size of each subset.
    """
    sizes: List[int] = []
    in_prev = np.zeros(graph.shape[0], dtype=bool)
    prev, prev_size = np.empty(0, dtype=np.int64), 0
    for cur in rows:
        sub = graph[cur]
        common = int(np.count_nonzero(in_prev[cur]))
        linked = np.count_nonzero(
            np.bincount(sub.indices, minlength=sub.shape[1]))
        lower = prev_size - (len(prev) - common)
        upper = min(len(cur), int(linked), prev_size + len(cur) - common)
        sizes.append(lower if lower == upper else match_count(sub))
        in_prev[prev] = False
        in_prev[cur] = True
        prev, prev_size = cur, sizes[-1]
    return sizes


def fast_edge_counts(pred: np.ndarray, gt: np.ndarray, thresholds: np.ndarray,
                     max_dist: float, nms: bool) -> np.ndarray:
    """BSDS correspondence counts of one image at every threshold.

    Same inputs, options and result as
    ``edge_counts(..., backend='pyedgeeval')``: optional fast NMS, then per
    threshold ``t``: ``pred >= t``, thinning, one-to-one matching of the
    thinned pixels to the label pixels within ``max_dist`` x image diagonal.

    Args:
        pred (np.ndarray): [H, W] boundary probability in [0, 1] (any float
            dtype; converted to float64 as the pyEdgeEval path does).
        gt (np.ndarray): [H, W] label boundary map (non-zero = boundary).
        thresholds (np.ndarray): [T] thresholds.
        max_dist (float): Matching tolerance as a fraction of the image
            diagonal (0.011 NYUD, 0.0075 PASCAL / BSDS).
        nms (bool): Apply pyEdgeEval's fast edge NMS before thresholding.

    Returns:
        np.ndarray: int64 [T, 4] ``(cntR, sumR, cntP, sumP)`` per threshold:
        matched label pixels, label pixels, matched predicted pixels,
        predicted (thinned) pixels. ``cntR == cntP``.

    Raises:
        ValueError: if the shapes are wrong, ``pred`` is not finite or
            ``max_dist`` is not positive.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError('fast_edge_counts: pred and gt must be [H, W] of '
                         f'equal shape; got {pred.shape} and {gt.shape}')
    thresholds = np.asarray(thresholds).reshape(-1)
    if not max_dist > 0:
        raise ValueError(f'fast_edge_counts: max_dist must be > 0; got '
                         f'{max_dist}')
    pred = np.ascontiguousarray(pred, dtype=np.float64)
    if not np.isfinite(pred).all():
        raise ValueError('fast_edge_counts: pred contains NaN or inf')
    gt = gt != 0
    if nms and pred.any():  # (the NMS of an all-zero map is all zero)
        from pyEdgeEval.preprocess import fast_nms
        pred = fast_nms(img=pred, **NMS_KWARGS)

    num_t = len(thresholds)
    counts = np.zeros((num_t, 4), dtype=np.int64)
    # The maps pred >= t are nested: map t is the first keys[t] pixels in
    # order of decreasing value, and each distinct map is thinned once.
    flat = pred.ravel()
    order = np.argsort(-flat, kind='stable')
    ascending = flat[order[::-1]]
    keys = [
        len(flat) - int(np.searchsorted(ascending, t, side='left'))
        for t in thresholds
    ]
    thinner = _Thinner(*pred.shape)
    order_padded = thinner.to_padded(order)
    thinned: Dict[int, np.ndarray] = {}  # key -> sorted flat pixel indices
    grown = 0
    for key in sorted(set(keys)):
        thinner.grow(order_padded[grown:key])
        grown = key
        kept = thinner.thin(order_padded[:key])
        thinned[key] = np.sort(thinner.to_flat(kept))
    num_gt = int(np.count_nonzero(gt))
    counts[:, 1] = num_gt
    counts[:, 3] = [len(thinned[k]) for k in keys]
    if num_gt == 0:
        return counts

    in_union = np.zeros(pred.size, dtype=bool)
    for pixels in thinned.values():
        in_union[pixels] = True
    union = np.flatnonzero(in_union)
    h, w = gt.shape
    radius = max_dist * math.sqrt(h * h + w * w)
    graph = _candidate_graph(np.unravel_index(union, gt.shape), gt, radius)
    # pixels with no label pixel within reach can never be matched (and
    # label pixels with no predicted one around): leave them out
    reachable = np.diff(graph.indptr) > 0
    union, graph = union[reachable], graph[reachable]
    graph = graph[:,
                  np.flatnonzero(np.bincount(graph.indices, minlength=num_gt))]
    node = np.full(pred.size, -1, dtype=np.int64)
    node[union] = np.arange(len(union))

    maps = sorted(thinned, reverse=True)  # largest (lowest threshold) first
    rows = []
    for key in maps:
        r = node[thinned[key]]
        rows.append(r[r >= 0])
    sizes = _matching_sizes(graph, rows)
    matched = dict(zip(maps, sizes))
    counts[:, 0] = counts[:, 2] = [matched[k] for k in keys]
    return counts
