# Copyright (c) mmfgmoe contributors. All rights reserved.
import logging
import math
import multiprocessing
import os.path as osp
from collections import OrderedDict, deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from mmengine.utils import mkdir_or_exist
from prettytable import PrettyTable

from mmseg.registry import METRICS
from ...datasets.transforms.loading import encode_normals_png
from ...utils.tasks import TASK_SPECS, check_tasks
from ..functional import (confusion_matrix, depth_scores, depth_stats,
                          edge_bce_score, edge_bce_stats, edge_counts,
                          edge_scores, edge_thresholds, iou_scores,
                          normals_scores, normals_stats, saliency_scores,
                          saliency_stats, saliency_thresholds)
from ..functional.edge import EDGE_BACKENDS, _edge_counts_job

#: Metrics (the part after ``task.``) where lower is better, for Δm.
LOWER_IS_BETTER = frozenset(
    {'rmse', 'abs_rel', 'log_rmse', 'mean', 'median', 'loss'})


def relative_gain(value: float, baseline: float, metric: str) -> float:
    """Gain (%) of ``value`` over ``baseline`` for one metric, positive
    when better: the term of Δm (Maninis et al., 2019), its sign flipped for
    the metrics of :data:`LOWER_IS_BETTER`.

    Args:
        value (float): The multi-task model's value.
        baseline (float): The single-task model's value (non-zero).
        metric (str): Metric name without the task (``'rmse'``).

    Returns:
        float: ``±(value - baseline) / baseline * 100``.
    """
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    return sign * (value - baseline) / baseline * 100


#: Scores reported as percentages (fractions × 100); the rest keep units
#: (metres, degrees, loss).
_PERCENT = frozenset({
    'mIoU', 'mAcc', 'aAcc', 'maxF', 'odsF', 'oisF', 'AP', 'delta1', 'delta2',
    'delta3'
})


def _as_dict(sample: Union[dict, BaseDataElement]) -> dict:
    """Data samples reach ``process`` as dicts (mmengine's Evaluator calls
    ``to_dict``); accept ``SegDataSample`` too for direct use."""
    if isinstance(sample, BaseDataElement):
        return sample.to_dict()
    return sample


def _pixel_data(sample: dict, field: str) -> Optional[torch.Tensor]:
    value = sample.get(field)
    if value is None:
        return None
    if isinstance(value, BaseDataElement):
        value = value.to_dict()
    if isinstance(value, dict):
        value = value.get('data')
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    return value


def _sample_name(sample: dict, count: int) -> str:
    """The output file stem of a sample: its image's name, else the number
    of samples this process processed before it (with the rank in a
    distributed run, where each rank counts from 0)."""
    path = sample.get('img_path')
    if path:
        return osp.splitext(osp.basename(path))[0]
    rank, world_size = get_dist_info()
    return f'{count:06d}' if world_size == 1 else f'rank{rank}_{count:06d}'


def _to_uint8(prob: torch.Tensor) -> np.ndarray:
    """[1, H, W] probability -> [H, W] uint8 ``round(255 p)``."""
    arr = prob.detach().float().cpu().numpy().reshape(prob.shape[-2:])
    return np.rint(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)


def _write_prediction(out_dir: str, task: str, name: str,
                      pred: torch.Tensor) -> None:
    """Write one prediction in the format other tools expect.

    semseg / human_parts: uint8 PNG label map (class ids); depth: float32
    ``.npy`` [H, W] metres; normals: RGB PNG ``round((n + 1) / 2 * 255)``
    (x, y, z -> R, G, B); edge: uint8 PNG ``round(255 p)`` (read by the
    MATLAB SEISM / BSDS tools as ``p``); saliency: uint8 PNG ``round(255 p)``.
    """
    task_dir = osp.join(out_dir, task)
    mkdir_or_exist(task_dir)
    if task == 'depth':
        np.save(
            osp.join(task_dir, f'{name}.npy'),
            pred.detach().float().cpu().numpy().reshape(pred.shape[-2:]))
        return
    if TASK_SPECS[task].classes_key:
        img = pred.detach().cpu().numpy().reshape(pred.shape[-2:])
        if img.min() < 0 or img.max() > 255:
            raise ValueError(f'{task} prediction {name} has class ids outside '
                             '[0, 255]; cannot store them as a uint8 PNG')
        img = img.astype(np.uint8)
    elif task == 'normals':
        arr = pred.detach().float().cpu().numpy()  # [3, H, W]
        img = encode_normals_png(arr.transpose(1, 2, 0))[..., ::-1]  # BGR
    else:  # edge, saliency
        img = _to_uint8(pred)
    path = osp.join(task_dir, f'{name}.png')
    if not cv2.imwrite(path, np.ascontiguousarray(img)):
        raise OSError(f'MultiTaskMetric: could not write the {task} '
                      f'prediction {path}')


def _edge_thresholds(spec: Union[int, Sequence[float]]) -> np.ndarray:
    try:
        return edge_thresholds(spec)
    except ValueError as err:
        raise ValueError(f'MultiTaskMetric.edge_thresholds: {err}') from None


def _fmt(value: float) -> str:
    return 'nan' if value != value else f'{value:.4f}'


@METRICS.register_module()
class MultiTaskMetric(BaseMetric):
    """Evaluate any set of dense-prediction tasks at once.

    Each processed image is reduced to small sufficient statistics (see
    :mod:`mmfgmoe.evaluation.functional`): a confusion matrix for label maps,
    a few sums for depth, sums and a sparse 0.01° histogram for normals,
    per-threshold counts for saliency, ``[T, 4]`` BSDS counts for edges.
    Prediction maps are never kept, so memory stays bounded and the
    dataset-level scores are exact when mmengine gathers the per-image
    results of several ranks (the padding samples of the distributed sampler
    are dropped by ``collect_results`` because there is one result per
    image).

    Reported scores (flat keys ``<task>.<name>``; fractions as percentages):

    - ``semseg`` / ``human_parts``: ``mIoU`` from the dataset confusion
      matrix (labels ``ignore_index`` skipped; classes absent from both
      labels and predictions left out of the mean, as mmseg does), ``mAcc``,
      ``aAcc`` (pixel accuracy); a per-class IoU table is logged.
    - ``depth``: ``rmse`` (metres, ``sqrt(Σ err² / Σ valid)`` over the whole
      dataset), ``abs_rel``, ``log_rmse``, ``delta1..3`` (% of pixels with
      ``max(p/g, g/p) < 1.25^k``); label 0 = invalid.
    - ``normals``: ``mean``, ``rmse`` (exact) and ``median`` (within 0.005°,
      from a 0.01° histogram) angular error in degrees after normalising
      both vectors, ``within_11.25/22.5/30`` (%); an all-zero label = invalid.
    - ``saliency``: ``maxF`` (β² = 0.3, thresholds 0.05 .. 0.95, dataset
      precision/recall) and ``mIoU`` (best over thresholds of the mean
      per-image IoU). ``legacy_maxf=True`` reproduces the published
      double-sigmoid numbers (see
      :mod:`mmfgmoe.evaluation.functional.saliency`).
    - ``edge``: ``odsF``, ``oisF``, ``AP`` through pyEdgeEval (BSDS
      correspondence, optional NMS, thinning); or ``loss`` (class-balanced
      BCE) with ``edge_backend='loss'``. Label pixels equal to
      ``ignore_index`` are removed from both maps before matching. The BSDS
      matching of pyEdgeEval is randomised (see
      :mod:`mmfgmoe.evaluation.functional.edge`): its per-image counts, and
      so odsF, vary slightly between runs; ``edge_backend='fast'`` computes
      the exact optimum deterministically.
    - ``multi_task.delta_m``: Δm = mean over tasks of
      ``(-1)^l (M - B) / B × 100`` against ``single_task_baselines``
      (``l = 1`` for lower-is-better metrics: rmse, abs_rel, log_rmse, mean,
      median, loss). When a task lists several metrics their terms are
      averaged first. Also ``multi_task.delta.<task>`` per task.

    Args:
        tasks (Sequence[str], optional): Tasks to evaluate. None: every task
            whose label and prediction fields are both present in a sample,
            and every task of ``dataset_meta['tasks']`` whose label is
            present. A configured task whose label is missing in a sample is
            skipped for that sample; a missing prediction is an error, and
            so is a NaN/Inf prediction.
        ignore_index (int): Ignored label of semseg, human_parts, saliency
            and edge. Defaults to 255.
        edge_max_dist (float): BSDS matching tolerance as a fraction of the
            image diagonal: 0.011 for NYUD, 0.0075 for PASCAL. Defaults to
            0.011.
        edge_thresholds (int | Sequence[float]): Number of evenly spaced
            edge thresholds (99 -> 0.01 .. 0.99) or the thresholds.
            Defaults to 99.
        edge_nms (bool): Apply fast edge NMS before thresholding. Defaults
            to True.
        edge_backend (str): ``'pyedgeeval'``, ``'fast'`` (our own counts,
            ``boundary_fast.fast_edge_counts``) or ``'loss'`` (class-balanced
            BCE only, for cheap validation during training). Defaults to
            ``'pyedgeeval'``.
        edge_workers (int): Processes computing edge counts in the
            background while the model runs (fork). 1 computes them inline.
            Defaults to 1.
        legacy_maxf (bool): Reproduce the published double-sigmoid saliency
            maxF / mIoU. Defaults to False.
        single_task_baselines (dict, optional): ``{task: {metric: value}}``
            in the units reported here (e.g. ``dict(semseg=dict(mIoU=50.0),
            depth=dict(rmse=0.55))``). Defaults to None (no Δm).
        output_dir (str, optional): Write every prediction below
            ``output_dir/<task>/<image name>.<png|npy>``. Defaults to None.
        format_only (bool): Only write predictions, compute no metric.
            Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to None.
        num_classes (dict, optional): ``{task: C}`` overriding the class
            counts read from ``dataset_meta`` (``classes``,
            ``human_parts_classes``). Defaults to None.
        saliency_beta2 (float): β² of maxF. Defaults to 0.3.
        saliency_threshold_step (float): Step of the saliency thresholds.
            Defaults to 0.05.
        depth_min (float): Clamp of the predicted depth for log and ratio
            terms. Defaults to 1e-9.
        depth_delta_base (float): δ threshold base. Defaults to 1.25.
        normals_thresholds (Sequence[float]): "within" angles in degrees.
            Defaults to (11.25, 22.5, 30.0).
        normals_bin_width (float): Histogram bin (degrees) for the median.
            Defaults to 0.01.
        edge_loss_eps (float): Probability clamp of the edge loss. Defaults
            to 1e-7.
        collect_dir (str, optional): See mmengine ``BaseMetric``.
    """
    # An empty (not None) prefix: no "prefix is not set" warning and plain
    # ``task.metric`` keys unless the user asks for a prefix.
    default_prefix: Optional[str] = ''

    def __init__(self,
                 tasks: Optional[Sequence[str]] = None,
                 ignore_index: int = 255,
                 edge_max_dist: float = 0.011,
                 edge_thresholds: Union[int, Sequence[float]] = 99,
                 edge_nms: bool = True,
                 edge_backend: str = 'pyedgeeval',
                 edge_workers: int = 1,
                 legacy_maxf: bool = False,
                 single_task_baselines: Optional[Dict[str, Dict[
                     str, float]]] = None,
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 saliency_beta2: float = 0.3,
                 saliency_threshold_step: float = 0.05,
                 depth_min: float = 1e-9,
                 depth_delta_base: float = 1.25,
                 normals_thresholds: Sequence[float] = (11.25, 22.5, 30.0),
                 normals_bin_width: float = 0.01,
                 edge_loss_eps: float = 1e-7,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        self.tasks = None if tasks is None else check_tasks(
            tasks, field='MultiTaskMetric.tasks')
        self.ignore_index = ignore_index
        if edge_backend not in EDGE_BACKENDS + ('loss', ):
            raise ValueError('MultiTaskMetric.edge_backend must be one of '
                             f'{EDGE_BACKENDS + ("loss", )}; got '
                             f'{edge_backend!r}')
        if not edge_max_dist > 0:
            raise ValueError('MultiTaskMetric.edge_max_dist must be > 0; got '
                             f'{edge_max_dist}')
        if int(edge_workers) < 1:
            raise ValueError('MultiTaskMetric.edge_workers must be >= 1; got '
                             f'{edge_workers}')
        self.edge_max_dist = float(edge_max_dist)
        self.edge_thresholds = _edge_thresholds(edge_thresholds)
        self.edge_nms = bool(edge_nms)
        self.edge_backend = edge_backend
        self.edge_workers = int(edge_workers)
        self.legacy_maxf = bool(legacy_maxf)
        self.single_task_baselines = self._check_baselines(
            single_task_baselines)
        self.output_dir = output_dir
        self.format_only = bool(format_only)
        if self.format_only and not self.output_dir:
            raise ValueError('MultiTaskMetric.format_only=True writes the '
                             'predictions only: set output_dir as well')
        self.num_classes = dict(num_classes or {})
        self.saliency_beta2 = float(saliency_beta2)
        self.saliency_thresholds = saliency_thresholds(
            saliency_threshold_step, legacy=self.legacy_maxf)
        self.depth_min = float(depth_min)
        self.depth_delta_base = float(depth_delta_base)
        self.normals_thresholds = tuple(float(t) for t in normals_thresholds)
        self.normals_bin_width = float(normals_bin_width)
        self.edge_loss_eps = float(edge_loss_eps)
        self._num_processed = 0
        self._executor: Optional[ProcessPoolExecutor] = None
        self._pending: deque = deque()
        self._job_names: Dict[Future, str] = {}  # edge job -> sample name

    # ------------------------------------------------------------------ #
    # configuration helpers
    # ------------------------------------------------------------------ #
    @staticmethod
    def _check_baselines(baselines: Optional[dict]) -> Optional[dict]:
        if baselines is None:
            return None
        if not isinstance(baselines, dict) or not baselines:
            raise ValueError('MultiTaskMetric.single_task_baselines must be a '
                             'non-empty dict {task: {metric: value}}; got '
                             f'{baselines!r}')
        check_tasks(list(baselines), field='single_task_baselines')
        for task, metrics in baselines.items():
            if not isinstance(metrics, dict) or not metrics:
                raise ValueError(f'single_task_baselines[{task!r}] must be a '
                                 f'non-empty dict {{metric: value}}; got '
                                 f'{metrics!r}')
            for name, value in metrics.items():
                if not isinstance(value, (int, float)) or value == 0 or \
                        not math.isfinite(value):
                    raise ValueError(
                        f'single_task_baselines[{task!r}][{name!r}] must be '
                        f'a finite non-zero number; got {value!r}')
        return {t: dict(m) for t, m in baselines.items()}

    def _class_count(self, task: str) -> int:
        if task in self.num_classes:
            return int(self.num_classes[task])
        key = TASK_SPECS[task].classes_key
        classes = (self.dataset_meta or {}).get(key)
        if not classes:
            raise ValueError(
                f'MultiTaskMetric needs the number of {task} classes: set '
                f'dataset_meta[{key!r}] (the dataset metainfo) or '
                f'num_classes={{{task!r}: C}}')
        return len(classes)

    def _class_names(self, task: str, count: int) -> List[str]:
        classes = (self.dataset_meta or {}).get(TASK_SPECS[task].classes_key)
        if classes and len(classes) == count:
            return [str(c) for c in classes]
        return [str(i) for i in range(count)]

    # ------------------------------------------------------------------ #
    # per-batch processing
    # ------------------------------------------------------------------ #
    def _sample_tasks(self, sample: dict) -> List[str]:
        if self.tasks is None:
            # A task of the dataset (``dataset_meta['tasks']``) whose label is
            # present is evaluated even without a prediction, so that a model
            # that does not predict it fails loudly instead of being skipped.
            meta_tasks = (self.dataset_meta or {}).get('tasks') or []
            return [
                t for t, spec in TASK_SPECS.items()
                if spec.gt_field in sample and (spec.pred_field in sample
                                                or t in meta_tasks)
            ]
        return [t for t in self.tasks if TASK_SPECS[t].gt_field in sample]

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Reduce each sample to its per-task statistics.

        Args:
            data_batch (Any): The loader batch (unused).
            data_samples (Sequence[dict]): Model outputs (dicts or
                ``SegDataSample``) with ``pred_*`` and ``gt_*`` fields.
        """
        for sample in data_samples:
            sample = _as_dict(sample)
            name = _sample_name(sample, self._num_processed)
            self._num_processed += 1
            result: Dict[str, Any] = {}
            if self.output_dir:
                self._write(sample, name)
            if self.format_only:
                # One (empty) record per image all the same: mmengine warns
                # of a metric that processed nothing, and the distributed
                # collection counts records against the dataset size.
                self.results.append(result)
                continue
            for task in self._sample_tasks(sample):
                spec = TASK_SPECS[task]
                gt = _pixel_data(sample, spec.gt_field)
                pred = _pixel_data(sample, spec.pred_field)
                if pred is None:
                    raise ValueError(
                        f'MultiTaskMetric: sample {name!r} has the {task} '
                        f'label `{spec.gt_field}` but no prediction '
                        f'`{spec.pred_field}`')
                if pred.is_floating_point() and \
                        not bool(torch.isfinite(pred).all()):
                    raise ValueError(
                        f'MultiTaskMetric: {task} prediction '
                        f'`{spec.pred_field}` of sample {name!r} has NaN/Inf '
                        'values (a diverged model?)')
                try:
                    result[task] = self._stats(task, pred, gt, name)
                except ValueError as err:
                    raise ValueError(
                        f'MultiTaskMetric: {task} of sample {name!r} '
                        f'(`{spec.pred_field}` vs `{spec.gt_field}`): '
                        f'{err}') from None
            self.results.append(result)

    def _write(self, sample: dict, name: str) -> None:
        tasks = self.tasks or list(TASK_SPECS)
        for task in tasks:
            pred = _pixel_data(sample, TASK_SPECS[task].pred_field)
            if pred is not None:
                _write_prediction(self.output_dir, task, name, pred)

    def _stats(self, task: str, pred: torch.Tensor, gt: torch.Tensor,
               name: str) -> Any:
        if TASK_SPECS[task].classes_key:
            return confusion_matrix(pred, gt, self._class_count(task),
                                    self.ignore_index)
        if task == 'depth':
            return depth_stats(pred, gt, self.depth_min,
                               self.depth_delta_base)
        if task == 'normals':
            return normals_stats(pred, gt, self.normals_thresholds,
                                 self.normals_bin_width)
        if task == 'saliency':
            return saliency_stats(pred, gt, self.saliency_thresholds,
                                  self.ignore_index, self.legacy_maxf)
        if task == 'edge':
            if self.edge_backend == 'loss':
                return edge_bce_stats(pred, gt, self.ignore_index,
                                      self.edge_loss_eps)
            return self._edge(pred, gt, name)
        raise ValueError(f'unknown task {task!r}')

    def _edge(self, pred: torch.Tensor, gt: torch.Tensor, name: str) -> Any:
        if pred.shape != gt.shape:
            raise ValueError(f'prediction shape {tuple(pred.shape)} differs '
                             f'from label shape {tuple(gt.shape)}')
        pred_np = pred.detach().double().cpu().numpy().reshape(
            pred.shape[-2:])
        gt_np = gt.detach().cpu().numpy().reshape(gt.shape[-2:])
        ignore = gt_np == self.ignore_index
        pred_np = np.where(ignore, 0.0, pred_np)
        gt_np = np.where(ignore, 0, gt_np != 0).astype(np.uint8)
        args = (pred_np, gt_np, self.edge_thresholds, self.edge_max_dist,
                self.edge_nms, self.edge_backend)
        if self.edge_workers == 1:
            return edge_counts(*args)
        if self._executor is None:
            # fork: workers inherit the imported modules and start at once;
            # they run only numpy / pyEdgeEval code.
            self._executor = ProcessPoolExecutor(
                max_workers=self.edge_workers,
                mp_context=multiprocessing.get_context('fork'))
        # Keep at most two queued images per worker so memory stays bounded.
        while len(self._pending) >= 2 * self.edge_workers:
            self._edge_result(self._pending.popleft())
        future = self._executor.submit(_edge_counts_job, args)
        self._pending.append(future)
        self._job_names[future] = name
        return future

    def _edge_result(self, future: Future) -> Any:
        """The counts of a background edge job; its error names the
        sample."""
        try:
            return future.result()
        except Exception as err:
            raise RuntimeError(
                f'MultiTaskMetric: edge evaluation of sample '
                f'{self._job_names[future]!r} failed: {err!r}') from err

    def _resolve_pending(self) -> None:
        """Replace edge futures in ``self.results`` by their counts."""
        try:
            for result in self.results:
                if isinstance(result.get('edge'), Future):
                    result['edge'] = self._edge_result(result['edge'])
        finally:
            self._pending.clear()
            self._job_names.clear()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def evaluate(self, size: int) -> dict:
        """Finish background edge work, then gather and compute (see
        :meth:`mmengine.evaluator.BaseMetric.evaluate`).

        Args:
            size (int): Length of the whole evaluation dataset; the results
                of the padding samples the distributed sampler adds beyond
                it are dropped when gathering.

        Returns:
            dict: The same dict on every rank: flat
            ``{'<task>.<metric>': value}`` scores (see the class doc;
            ``'<prefix>/'`` prepended to every key when ``prefix`` is set),
            empty with ``format_only``.

        Raises:
            RuntimeError: When a background edge job (``edge_workers > 1``)
                failed; the message names the sample.
        """
        self._resolve_pending()
        self._num_processed = 0
        return super().evaluate(size)

    # ------------------------------------------------------------------ #
    # dataset-level scores
    # ------------------------------------------------------------------ #
    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute every task's scores from the gathered per-image results.

        Args:
            results (list): One dict ``{task: statistics}`` per image.

        Returns:
            dict: Flat ``{'<task>.<metric>': value}`` (see the class doc).
        """
        if self.format_only:
            print_log(f'MultiTaskMetric: predictions written to '
                      f'{self.output_dir}; no metric computed (format_only)',
                      logger='current')
            return OrderedDict()
        metrics: Dict[str, float] = OrderedDict()
        meta_tasks = [
            t for t in (self.dataset_meta or {}).get('tasks') or []
            if t in TASK_SPECS
        ]
        order = self.tasks or meta_tasks + [
            t for t in TASK_SPECS if t not in meta_tasks
        ]
        for task in order:
            stats = [r[task] for r in results if task in r]
            if not stats:
                if self.tasks is not None:
                    print_log(f'MultiTaskMetric: no sample carried the '
                              f'{task} label `{TASK_SPECS[task].gt_field}`',
                              logger='current', level=logging.WARNING)
                continue
            scores = self._task_scores(task, stats)
            self._log_table(task, scores, len(stats))
            for key, value in scores.items():
                metrics[f'{task}.{key}'] = value
        metrics.update(self._delta_m(metrics))
        return metrics

    def _task_scores(self, task: str, stats: list) -> Dict[str, float]:
        if TASK_SPECS[task].classes_key:
            scores = iou_scores(np.sum(stats, axis=0))
            self._log_class_table(task, scores)
            out = {k: scores[k] for k in ('mIoU', 'mAcc', 'aAcc')}
        elif task == 'depth':
            out = depth_scores(np.sum(stats, axis=0))
        elif task == 'normals':
            out = normals_scores(
                np.sum([s['sums'] for s in stats], axis=0),
                np.concatenate([s['bins'] for s in stats]),
                np.concatenate([s['counts'] for s in stats]),
                self.normals_thresholds, self.normals_bin_width)
            return {
                k: (v * 100 if k.startswith('within_') else v)
                for k, v in out.items()
            }
        elif task == 'saliency':
            res = saliency_scores(stats, self.saliency_beta2,
                                  self.legacy_maxf)
            out = dict(maxF=res['maxF'], mIoU=res['mIoU'])
        elif self.edge_backend == 'loss':
            out = dict(loss=edge_bce_score(np.sum(stats, axis=0)))
        else:
            res = edge_scores(stats, self.edge_thresholds)
            out = {k: res[k] for k in ('odsF', 'oisF', 'AP')}
        return {
            k: float(v * 100 if k in _PERCENT else v)
            for k, v in out.items()
        }

    def _delta_m(self, metrics: Dict[str, float]) -> Dict[str, float]:
        if not self.single_task_baselines:
            return {}
        out: Dict[str, float] = OrderedDict()
        missing = []
        for task, baseline in self.single_task_baselines.items():
            terms = []
            for name, base in baseline.items():
                value = metrics.get(f'{task}.{name}')
                if value is None or value != value:
                    missing.append(f'{task}.{name}')
                    continue
                terms.append(relative_gain(value, base, name))
            if terms and len(terms) == len(baseline):
                out[f'multi_task.delta.{task}'] = float(np.mean(terms))
        if missing:
            print_log(
                'MultiTaskMetric: Δm not computed, these baseline metrics '
                f'were not evaluated: {missing}',
                logger='current',
                level=logging.WARNING)
            return out
        out['multi_task.delta_m'] = float(
            np.mean([v for v in out.values()]))
        print_log(f'MultiTaskMetric: Δm = {out["multi_task.delta_m"]:+.2f}% '
                  f'against {self.single_task_baselines}', logger='current')
        return out

    def _log_table(self, task: str, scores: Dict[str, float],
                   count: int) -> None:
        table = PrettyTable()
        table.field_names = ['task', 'images'] + list(scores)
        table.add_row([task, count] + [_fmt(v) for v in scores.values()])
        print_log(f'{task} results:\n' + table.get_string(), logger='current')

    def _log_class_table(self, task: str, scores: Dict[str, Any]) -> None:
        names = self._class_names(task, len(scores['IoU']))
        table = PrettyTable()
        table.field_names = ['class', 'IoU', 'Acc']
        for name, iou, acc in zip(names, scores['IoU'], scores['Acc']):
            table.add_row([name, _fmt(iou * 100), _fmt(acc * 100)])
        print_log(f'{task} per-class results:\n' + table.get_string(),
                  logger='current')
