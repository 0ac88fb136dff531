# Copyright (c) mmfgmoe contributors. All rights reserved.
"""MultiTaskMetric against straightforward implementations of each metric's
definition (tests/test_evaluation/_reference.py)."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from _reference import (IGNORE, LegacySaliencyMeter, make_sample, random_case,
                        ref_depth, ref_miou, ref_normals, ref_saliency)

from mmseg.registry import METRICS
from mmfgmoe.evaluation import MultiTaskMetric

TOL = 1e-6
N_SEM, N_PARTS = 5, 7
META = dict(classes=[f'c{i}' for i in range(N_SEM)],
            human_parts_classes=[f'p{i}' for i in range(N_PARTS)])
DENSE = ('semseg', 'human_parts', 'depth', 'normals', 'saliency')


def _evaluate(metric, samples, batch=2):
    metric.dataset_meta = META
    for i in range(0, len(samples), batch):
        metric.process({}, [s.to_dict() for s in samples[i:i + batch]])
    return metric.evaluate(len(samples))


def _check(res, ref, task):
    for key, value in ref.items():
        assert res[f'{task}.{key}'] == pytest.approx(value, abs=TOL), key


@pytest.fixture(scope='module')
def random_dataset():
    rng = np.random.default_rng(0)
    cases = [random_case(rng, 12 + i, 17 - i, N_SEM, N_PARTS)
             for i in range(4)]
    return cases


def test_registered():
    metric = METRICS.build(dict(type='MultiTaskMetric', edge_max_dist=0.0075))
    assert isinstance(metric, MultiTaskMetric)


def test_random_against_reference(random_dataset):
    samples = [make_sample(g, p, f'im{i}')
               for i, (g, p) in enumerate(random_dataset)]
    res = _evaluate(MultiTaskMetric(tasks=list(DENSE)), samples)
    gts = {t: [g[t] for g, _ in random_dataset] for t in DENSE}
    preds = {t: [p[t] for _, p in random_dataset] for t in DENSE}
    _check(res, ref_miou(gts['semseg'], preds['semseg'], N_SEM), 'semseg')
    _check(res, ref_miou(gts['human_parts'], preds['human_parts'], N_PARTS),
           'human_parts')
    _check(res, ref_depth(gts['depth'], preds['depth']), 'depth')
    ref_n = ref_normals(gts['normals'], preds['normals'])
    median = ref_n.pop('median')
    _check(res, ref_n, 'normals')
    # histogram median: documented to be within half a 0.01° bin
    assert abs(res['normals.median'] - median) <= 0.005 + 1e-9
    _check(res, ref_saliency(gts['saliency'], preds['saliency']), 'saliency')


def test_task_inference_and_batching_do_not_matter(random_dataset):
    samples = [make_sample(g, p, f'im{i}')
               for i, (g, p) in enumerate(random_dataset)]
    a = _evaluate(MultiTaskMetric(), samples, batch=1)
    b = _evaluate(MultiTaskMetric(tasks=list(DENSE)), samples, batch=3)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-12)
    assert 'edge.odsF' not in a


def test_perfect_and_all_wrong_segmentation():
    g = np.array([[0, 1, 2], [2, IGNORE, 1]], dtype=np.int64)
    perfect = make_sample(dict(semseg=g), dict(semseg=np.where(g == IGNORE, 0,
                                                               g)))
    res = _evaluate(MultiTaskMetric(num_classes=dict(semseg=4)), [perfect])
    # class 3 never occurs: left out of the mean, not counted as 0
    assert res['semseg.mIoU'] == pytest.approx(100.0)
    assert res['semseg.aAcc'] == pytest.approx(100.0)
    wrong = make_sample(dict(semseg=g), dict(semseg=(g + 1) % 3))
    res = _evaluate(MultiTaskMetric(num_classes=dict(semseg=4)), [wrong])
    assert res['semseg.mIoU'] == 0.0 and res['semseg.aAcc'] == 0.0


def test_empty_class_only_predicted_counts_as_zero():
    g = np.zeros((2, 2), dtype=np.int64)
    p = np.array([[0, 0], [0, 2]], dtype=np.int64)
    res = _evaluate(MultiTaskMetric(num_classes=dict(semseg=3)),
                    [make_sample(dict(semseg=g), dict(semseg=p))])
    # class 0: 3/4, class 1 absent (skipped), class 2: 0/1
    assert res['semseg.mIoU'] == pytest.approx(100 * (0.75 + 0.0) / 2)


def test_depth_and_normals_hand_made():
    gt = np.array([[1.0, 2.0], [0.0, 4.0]], dtype=np.float32)
    pred = np.array([[1.0, 1.0], [7.0, 5.0]], dtype=np.float32)
    n_gt = np.zeros((3, 1, 3), dtype=np.float32)
    n_gt[2] = 1  # +z everywhere ...
    n_gt[:, 0, 2] = 0  # ... except an invalid pixel
    n_pred = np.zeros((3, 1, 3), dtype=np.float32)
    n_pred[2, 0, 0] = 5.0  # same direction, not unit: 0°
    n_pred[0, 0, 1] = 1.0  # 90°
    n_pred[0, 0, 2] = 1.0  # invalid label: ignored
    res = _evaluate(MultiTaskMetric(), [make_sample(
        dict(depth=gt, normals=n_gt), dict(depth=pred, normals=n_pred))])
    assert res['depth.rmse'] == pytest.approx(np.sqrt((0 + 1 + 1) / 3))
    assert res['depth.abs_rel'] == pytest.approx((0 + 0.5 + 0.25) / 3)
    # ratios 1, 2, 1.25: only the first is < 1.25; 1.25 < 1.25**2
    assert res['depth.delta1'] == pytest.approx(100 / 3)
    assert res['depth.delta2'] == pytest.approx(100 * 2 / 3)
    assert res['normals.mean'] == pytest.approx(45.0)
    assert res['normals.rmse'] == pytest.approx(np.sqrt(90.0**2 / 2))
    assert res['normals.within_11.25'] == pytest.approx(50.0)
    assert abs(res['normals.median'] - 45.0) <= 0.005 + 1e-9


def test_dataset_level_rmse_is_not_mean_of_per_image_rmse():
    a = make_sample(dict(depth=np.ones((1, 1), np.float32)),
                    dict(depth=np.full((1, 1), 3.0, np.float32)))
    b = make_sample(dict(depth=np.ones((2, 2), np.float32)),
                    dict(depth=np.ones((2, 2), np.float32)))
    res = _evaluate(MultiTaskMetric(), [a, b])
    assert res['depth.rmse'] == pytest.approx(np.sqrt(4 / 5))


def test_saliency_perfect_and_empty():
    g = np.array([[1, 0], [IGNORE, 1]], dtype=np.int64)
    p = np.array([[0.9, 0.1], [0.99, 0.8]], dtype=np.float32)
    res = _evaluate(MultiTaskMetric(),
                    [make_sample(dict(saliency=g), dict(saliency=p))])
    assert res['saliency.maxF'] == pytest.approx(100.0)
    assert res['saliency.mIoU'] == pytest.approx(100.0)
    # no salient pixel anywhere, nothing predicted: F undefined -> 0, IoU 1
    g0 = np.zeros((2, 2), dtype=np.int64)
    res = _evaluate(MultiTaskMetric(), [make_sample(
        dict(saliency=g0), dict(saliency=np.zeros((2, 2), np.float32)))])
    assert res['saliency.maxF'] == 0.0
    assert res['saliency.mIoU'] == pytest.approx(100.0)


def test_legacy_maxf_reproduces_published_meter(random_dataset):
    meter = LegacySaliencyMeter()
    samples = []
    for i, (g, p) in enumerate(random_dataset):
        prob = (np.round(p['saliency'] * 256) / 256).astype(np.float32)
        samples.append(make_sample(dict(saliency=g['saliency']),
                                   dict(saliency=prob), f'im{i}'))
        meter.update(torch.from_numpy(prob) * 255,
                     torch.from_numpy(g['saliency']))
    legacy = _evaluate(MultiTaskMetric(legacy_maxf=True), samples)
    ref = meter.get_score()
    assert legacy['saliency.maxF'] == pytest.approx(ref['maxF'], abs=TOL)
    assert legacy['saliency.mIoU'] == pytest.approx(ref['mIoU'], abs=TOL)
    correct = _evaluate(MultiTaskMetric(), samples)
    assert legacy['saliency.maxF'] != pytest.approx(correct['saliency.maxF'])


def test_legacy_thresholds_below_half_mark_everything_salient():
    # sigmoid(p) >= 0.5 for every p >= 0: with all thresholds <= 0.5 active,
    # a map of zeros is "all salient" in the legacy meter.
    g = np.array([[1, 0, 0, 0]], dtype=np.int64)
    p = np.zeros((1, 4), dtype=np.float32)
    res = _evaluate(MultiTaskMetric(legacy_maxf=True),
                    [make_sample(dict(saliency=g), dict(saliency=p))])
    prec, rec = 0.25, 1.0
    f = 1.3 * prec * rec / (0.3 * prec + rec)
    assert res['saliency.maxF'] == pytest.approx(100 * f, abs=1e-4)


def test_delta_m():
    g = np.array([[0, 1], [1, 1]], dtype=np.int64)
    d = np.array([[1.0, 2.0]], dtype=np.float32)
    sample = make_sample(dict(semseg=g, depth=d),
                         dict(semseg=g, depth=d + 1))
    baselines = dict(semseg=dict(mIoU=80.0), depth=dict(rmse=0.5))
    res = _evaluate(MultiTaskMetric(num_classes=dict(semseg=2),
                                    single_task_baselines=baselines),
                    [sample])
    # semseg 100 vs 80: +25 %; depth rmse 1.0 vs 0.5 (lower better): -100 %
    assert res['multi_task.delta.semseg'] == pytest.approx(25.0)
    assert res['multi_task.delta.depth'] == pytest.approx(-100.0)
    assert res['multi_task.delta_m'] == pytest.approx(-37.5)
    # a baseline metric that was not evaluated: no Δm
    res = _evaluate(MultiTaskMetric(
        num_classes=dict(semseg=2),
        single_task_baselines=dict(semseg=dict(mIoU=80.0),
                                   normals=dict(mean=20.0))), [sample])
    assert 'multi_task.delta_m' not in res


def test_delta_m_lower_is_better_normals_and_depth():
    """Δm of lower-is-better metrics (normals mean angle, depth rmse and
    abs_rel) by hand: ``-(M - B) / B × 100``, several metrics of one task
    averaged first."""
    g = np.array([[0, 1]], dtype=np.int64)
    d = np.array([[1.0, 2.0]], dtype=np.float32)
    up = np.zeros((3, 1, 2), dtype=np.float32)
    up[2] = 1.  # both label normals +z
    rad = np.deg2rad([30., 60.])  # predictions 30° and 60° off: mean 45°
    tilted = np.stack([np.sin(rad), np.zeros(2), np.cos(rad)])[:, None]
    sample = make_sample(dict(semseg=g, depth=d, normals=up),
                         dict(semseg=g, depth=d + 1,
                              normals=tilted.astype(np.float32)))

    def run(baselines):
        return _evaluate(MultiTaskMetric(num_classes=dict(semseg=2),
                                         single_task_baselines=baselines),
                         [sample])

    res = run(dict(semseg=dict(mIoU=80.0),
                   depth=dict(rmse=2.0, abs_rel=1.0),
                   normals=dict(mean=30.0)))
    assert res['normals.mean'] == pytest.approx(45.0, abs=1e-4)
    assert res['depth.rmse'] == pytest.approx(1.0)
    assert res['depth.abs_rel'] == pytest.approx(0.75)  # (1/1 + 1/2) / 2
    # mean angle 45° vs 30°: worse, -(45 - 30) / 30 = -50 %
    assert res['multi_task.delta.normals'] == pytest.approx(-50.0, abs=1e-3)
    # rmse 1.0 vs 2.0: +50 %; abs_rel 0.75 vs 1.0: +25 %; averaged: 37.5 %
    assert res['multi_task.delta.depth'] == pytest.approx(37.5)
    assert res['multi_task.delta.semseg'] == pytest.approx(25.0)
    assert res['multi_task.delta_m'] == pytest.approx(
        (25.0 + 37.5 - 50.0) / 3, abs=1e-3)
    # a better (lower) mean angle than the baseline: positive
    res = run(dict(normals=dict(mean=60.0)))
    assert res['multi_task.delta.normals'] == pytest.approx(25.0, abs=1e-3)
    assert res['multi_task.delta_m'] == pytest.approx(25.0, abs=1e-3)
    # a worse (higher) rmse than the baseline alone: negative
    res = run(dict(depth=dict(rmse=0.8)))
    assert res['multi_task.delta_m'] == pytest.approx(-25.0)


def test_distributed_padding_is_dropped(random_dataset):
    """One result per image: the sampler's padding duplicates are cut."""
    samples = [make_sample(g, p, f'im{i}')
               for i, (g, p) in enumerate(random_dataset)]
    metric = MultiTaskMetric(tasks=list(DENSE))
    metric.dataset_meta = META
    metric.process({}, [s.to_dict() for s in samples + samples[:1]])
    padded = metric.evaluate(len(samples))
    plain = _evaluate(MultiTaskMetric(tasks=list(DENSE)), samples)
    for k in plain:
        assert padded[k] == pytest.approx(plain[k], abs=1e-12)


def test_output_dir_and_format_only(tmp_path, random_dataset):
    g, p = random_dataset[0]
    p = dict(p)
    h, w = g['semseg'].shape
    p['edge'] = np.linspace(0, 1, h * w, dtype=np.float32).reshape(h, w)
    g = dict(g, edge=np.zeros((h, w), np.int64))
    sample = make_sample(g, p, 'room_0001')
    out = str(tmp_path / 'preds')
    metric = MultiTaskMetric(output_dir=out, format_only=True)
    metric.dataset_meta = META
    metric.process({}, [sample.to_dict()])
    assert metric.results == [{}]  # one record per image, no statistics
    assert metric.evaluate(1) == {}
    sem = cv2.imread(osp.join(out, 'semseg', 'room_0001.png'),
                     cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(sem, p['semseg'])
    np.testing.assert_array_equal(
        np.load(osp.join(out, 'depth', 'room_0001.npy')), p['depth'])
    edge = cv2.imread(osp.join(out, 'edge', 'room_0001.png'),
                      cv2.IMREAD_UNCHANGED)
    assert edge.dtype == np.uint8
    np.testing.assert_array_equal(edge, np.rint(p['edge'] * 255))
    nrm = cv2.imread(osp.join(out, 'normals', 'room_0001.png'))[..., ::-1]
    expect = np.rint(np.clip((p['normals'] + 1) / 2, 0, 1) * 255)
    np.testing.assert_array_equal(nrm, expect.transpose(1, 2, 0))
    assert osp.isfile(osp.join(out, 'saliency', 'room_0001.png'))
    assert osp.isfile(osp.join(out, 'human_parts', 'room_0001.png'))


def test_output_names_without_image_path(tmp_path, random_dataset):
    """Samples without ``img_path`` are numbered (distributed runs prefix
    the rank: test_distributed_eval.py)."""
    g, p = random_dataset[0]
    sample = make_sample(g, p).to_dict()
    del sample['img_path']
    metric = MultiTaskMetric(output_dir=str(tmp_path), format_only=True)
    metric.dataset_meta = META
    metric.process({}, [sample, sample])
    assert sorted(os.listdir(tmp_path / 'semseg')) == [
        '000000.png', '000001.png']


def test_failed_prediction_write_is_an_error(tmp_path, random_dataset):
    g, p = random_dataset[0]
    out = tmp_path / 'preds'
    (out / 'semseg' / 'room_0001.png').mkdir(parents=True)  # not writable
    metric = MultiTaskMetric(output_dir=str(out), format_only=True)
    metric.dataset_meta = META
    with pytest.raises(OSError, match=r'semseg.*room_0001\.png'):
        metric.process({}, [make_sample(g, p, 'room_0001').to_dict()])


def test_clear_errors():
    with pytest.raises(ValueError, match='edge_backend'):
        MultiTaskMetric(edge_backend='matlab')
    with pytest.raises(ValueError, match='tasks'):
        MultiTaskMetric(tasks=['semseg', 'depthh'])
    with pytest.raises(ValueError, match='single_task_baselines'):
        MultiTaskMetric(single_task_baselines=dict(depth=dict(rmse=0)))
    with pytest.raises(ValueError, match='output_dir'):
        MultiTaskMetric(format_only=True)
    g = np.zeros((2, 2), np.int64)
    metric = MultiTaskMetric(tasks=['semseg'])
    with pytest.raises(ValueError, match='human_parts|classes'):
        metric.process({}, [make_sample(dict(semseg=g),
                                        dict(semseg=g)).to_dict()])
    metric.dataset_meta = META
    with pytest.raises(ValueError, match='pred_sem_seg'):
        metric.process({}, [make_sample(dict(semseg=g), {}).to_dict()])
    with pytest.raises(ValueError, match='label ids'):
        metric.process({}, [make_sample(dict(semseg=g + 9),
                                        dict(semseg=g)).to_dict()])
    with pytest.raises(ValueError, match='shape'):
        bad = make_sample(dict(semseg=g),
                          dict(semseg=np.zeros((3, 2), np.int64)))
        metric.process({}, [bad.to_dict()])


def test_all_invalid_and_missing_labels_do_not_crash():
    g = np.zeros((2, 3), np.int64)
    no_depth = make_sample(
        dict(semseg=g, depth=np.zeros((2, 3), np.float32)),
        dict(semseg=g, depth=np.ones((2, 3), np.float32)), 'a')
    # a configured task whose label is absent in a sample is skipped there
    metric = MultiTaskMetric(tasks=['semseg', 'depth', 'human_parts'],
                             num_classes=dict(semseg=2, human_parts=7))
    parts = make_sample(dict(human_parts=np.full((2, 3), IGNORE, np.int64)),
                        dict(human_parts=g), 'b')
    metric.process({}, [no_depth.to_dict(), parts.to_dict()])
    res = metric.evaluate(2)
    assert res['semseg.mIoU'] == 100.0
    assert np.isnan(res['depth.rmse'])
    assert np.isnan(res['human_parts.mIoU'])  # every pixel ignored
