# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Straightforward implementations of the metric definitions, written from
the definitions (loops and numpy one-liners), to check ``MultiTaskMetric``
against, plus a builder of hand-made / random ``SegDataSample``s."""
import math
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.structures import PixelData

from mmseg.structures import SegDataSample

IGNORE = 255


def make_sample(gt: Dict[str, np.ndarray],
                pred: Dict[str, np.ndarray],
                name: str = 'img') -> SegDataSample:
    """A data sample with ``gt_*`` / ``pred_*`` PixelData, as the model and
    the data pipeline write them (contract table)."""
    from mmfgmoe.utils.tasks import TASK_SPECS
    sample = SegDataSample()
    any_map = next(iter(gt.values()))
    h, w = any_map.shape[-2:]
    sample.set_metainfo(
        dict(img_path=f'/data/{name}.jpg', ori_shape=(h, w),
             img_shape=(h, w), tasks=list(gt)))
    for task, arr in gt.items():
        arr = arr if arr.ndim == 3 else arr[None]
        sample.set_field(PixelData(data=torch.from_numpy(arr)),
                         TASK_SPECS[task].gt_field)
    for task, arr in pred.items():
        arr = arr if arr.ndim == 3 else arr[None]
        sample.set_field(PixelData(data=torch.from_numpy(arr)),
                         TASK_SPECS[task].pred_field)
    return sample


def random_case(rng: np.random.Generator, h: int, w: int, n_sem: int = 5,
                n_parts: int = 7) -> tuple:
    """Random labels with ignore / invalid regions and random predictions."""
    gt, pred = {}, {}
    for task, n in (('semseg', n_sem), ('human_parts', n_parts)):
        g = rng.integers(0, n, (h, w)).astype(np.int64)
        g[rng.random((h, w)) < 0.1] = IGNORE
        gt[task] = g
        # half right, half random
        p = np.where(rng.random((h, w)) < 0.5, np.where(g == IGNORE, 0, g),
                     rng.integers(0, n, (h, w)))
        pred[task] = p.astype(np.int64)
    d = rng.uniform(0.5, 10.0, (h, w)).astype(np.float32)
    d[rng.random((h, w)) < 0.1] = 0
    gt['depth'] = d
    pd = (d + rng.normal(0, 0.5, (h, w))).clip(min=0).astype(np.float32)
    pd[0, 0] = 0.0  # a zero prediction exercises the clamp
    pred['depth'] = pd
    n = rng.normal(size=(3, h, w))
    n /= np.linalg.norm(n, axis=0, keepdims=True)
    n[:, rng.random((h, w)) < 0.1] = 0
    gt['normals'] = n.astype(np.float32)
    pred['normals'] = (n + rng.normal(0, 0.4, (3, h, w))).astype(np.float32)
    s = (rng.random((h, w)) < 0.3).astype(np.int64)
    s[rng.random((h, w)) < 0.05] = IGNORE
    gt['saliency'] = s
    pred['saliency'] = np.clip(
        0.6 * (s == 1) + 0.5 * rng.random((h, w)), 0, 1).astype(np.float32)
    return gt, pred


def ref_miou(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray],
             n: int) -> dict:
    """Per-class loop over the dataset; classes with empty union skipped."""
    ious, accs = [], []
    inter_all = valid_all = 0
    for c in range(n):
        inter = union = gt_c = 0
        for g, p in zip(gts, preds):
            valid = g != IGNORE
            inter += np.sum((g == c) & (p == c) & valid)
            union += np.sum(((g == c) | (p == c)) & valid)
            gt_c += np.sum((g == c) & valid)
        if union > 0:
            ious.append(inter / union)
        if gt_c > 0:
            accs.append(inter / gt_c)
    for g, p in zip(gts, preds):
        valid = g != IGNORE
        inter_all += np.sum((g == p) & valid)
        valid_all += np.sum(valid)
    return dict(mIoU=100 * np.mean(ious), mAcc=100 * np.mean(accs),
                aAcc=100 * inter_all / valid_all)


def ref_depth(gts, preds, min_depth=1e-9) -> dict:
    g = np.concatenate([x[x > 0].astype(np.float64) for x in gts])
    p = np.concatenate([
        y[x > 0].astype(np.float64) for x, y in zip(gts, preds)
    ])
    pc = np.maximum(p, min_depth)
    ratio = np.maximum(pc / g, g / pc)
    out = dict(rmse=math.sqrt(np.mean((p - g)**2)),
               abs_rel=np.mean(np.abs(p - g) / g),
               log_rmse=math.sqrt(np.mean((np.log(pc) - np.log(g))**2)))
    for k in (1, 2, 3):
        out[f'delta{k}'] = 100 * np.mean(ratio < 1.25**k)
    return out


def ref_normals(gts, preds) -> dict:
    errs: List[float] = []
    for g, p in zip(gts, preds):
        g = g.astype(np.float64).reshape(3, -1)
        p = p.astype(np.float64).reshape(3, -1)
        for i in range(g.shape[1]):
            gn = np.linalg.norm(g[:, i])
            if gn == 0:
                continue
            cos = np.dot(g[:, i] / gn, p[:, i] / np.linalg.norm(p[:, i]))
            errs.append(math.degrees(math.acos(min(1.0, max(-1.0, cos)))))
    e = np.asarray(errs)
    return dict(mean=e.mean(), median=np.median(e),
                rmse=math.sqrt(np.mean(e**2)),
                **{f'within_{t:g}': 100 * np.mean(e < t)
                   for t in (11.25, 22.5, 30.0)})


def ref_saliency(gts, preds, beta2=0.3) -> dict:
    """maxF on dataset-accumulated counts; mIoU = best over thresholds of the
    mean per-image IoU (1 for an image where both sets are empty)."""
    thresholds = [0.05 * k for k in range(1, 20)]
    fs, mious = [], []
    for t in thresholds:
        tp = pp = ap = 0
        ious = []
        for g, p in zip(gts, preds):
            valid = g != IGNORE
            pos = (p.astype(np.float64) >= t) & valid
            lab = (g == 1) & valid
            tp += np.sum(pos & lab)
            pp += np.sum(pos)
            ap += np.sum(lab)
            union = np.sum(pos | lab)
            ious.append(np.sum(pos & lab) / union if union else 1.0)
        prec = tp / pp if pp else 0.0
        rec = tp / ap if ap else 0.0
        fs.append((1 + beta2) * prec * rec / (beta2 * prec + rec)
                  if prec + rec > 0 else 0.0)
        mious.append(np.mean(ious))
    return dict(maxF=100 * max(fs), mIoU=100 * max(mious))


class LegacySaliencyMeter:
    """The published InvPT ``evaluation/eval_sal.py`` ``SaliencyMeter``
    re-typed from its logic (one image per ``update``): the prediction is the
    network's probability times 255; the meter divides by 255 and applies a
    sigmoid again, thresholds with ``torch.arange(0.05, 1, 0.05)``, and uses
    1e-8 guards."""

    def __init__(self, beta_squared=0.3):
        self.beta_squared = beta_squared
        self.thresholds = torch.arange(0.05, 1, 0.05)
        self.tp = torch.zeros(len(self.thresholds), dtype=torch.float64)
        self.pp = torch.zeros(len(self.thresholds), dtype=torch.float64)
        self.ap = torch.zeros(len(self.thresholds), dtype=torch.float64)
        self.all_jacs = []

    def update(self, prob255: torch.Tensor, target: torch.Tensor):
        preds = torch.sigmoid(prob255.float() / 255.)
        valid = target != IGNORE
        jacs = np.zeros(len(self.thresholds))
        for idx, thresh in enumerate(self.thresholds):
            f_preds = (preds >= thresh).long()
            f_target = target.long()
            g = (f_target.numpy() == 1) & valid.numpy()
            q = f_preds.numpy().astype(bool) & valid.numpy()
            if g.sum() == 0 and q.sum() == 0:
                jacs[idx] = 1
            else:
                jacs[idx] = np.sum(g & q) / np.sum(g | q)
            f_preds = torch.masked_select(f_preds, valid)
            f_target = torch.masked_select(f_target, valid)
            self.tp[idx] += torch.sum(f_preds * f_target)
            self.pp[idx] += torch.sum(f_preds)
            self.ap[idx] += torch.sum(f_target)
        self.all_jacs.append(jacs)

    def get_score(self):
        precision = self.tp / (self.pp + 1e-8)
        recall = self.tp / (self.ap + 1e-8)
        num = (1 + self.beta_squared) * precision * recall
        denom = self.beta_squared * precision + recall
        fscore = num / (denom + 1e-8)
        fscore[fscore != fscore] = 0
        return dict(maxF=fscore.max().item() * 100,
                    mIoU=np.max(np.mean(np.array(self.all_jacs), 0)) * 100)
