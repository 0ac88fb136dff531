# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Invalid normals end to end: a label vector too short to be a normal
(``min_norm`` of the readers) is read as all-zero, and both the loss and
the metric leave that pixel out."""
import cv2
import numpy as np
import pytest
import torch
from _reference import make_sample

from mmfgmoe.datasets.transforms.loading import (read_normals_npy,
                                                 read_normals_png)
from mmfgmoe.evaluation import MultiTaskMetric
from mmfgmoe.models.losses import NormalsL1Loss

#: RGB label pixels of a 2x3 normals PNG (n = 2 v / 255 - 1); two of them
#: decode to vectors shorter than min_norm=0.5.
PNG_RGB = np.array(
    [[[128, 128, 255], [128, 128, 128], [255, 128, 128]],
     [[128, 255, 128], [160, 128, 128], [0, 128, 128]]],
    dtype=np.uint8)
PNG_INVALID = [(0, 1), (1, 1)]  # norms 0.0068 and 0.26
#: A 2x3 .npy label: two vectors shorter than 0.5, one of 0.6 (kept).
NPY = np.array(
    [[[0., 0., 1.], [0.1, 0.2, 0.1], [0.6, 0., 0.]],
     [[0., -1., 0.], [0., 0., 0.4], [0.6, 0.8, 0.]]],
    dtype=np.float32)
NPY_INVALID = [(0, 1), (1, 1)]  # norms 0.24 and 0.4


def _read_labels(tmp_path):
    """Both label files written for real and read with the readers."""
    png = str(tmp_path / 'normals.png')
    assert cv2.imwrite(png, PNG_RGB[..., ::-1])  # cv2 writes BGR
    npy = str(tmp_path / 'normals.npy')
    np.save(npy, NPY)
    return [(read_normals_png(png), PNG_INVALID),
            (read_normals_npy(npy), NPY_INVALID)]


def _pred(seed: int) -> np.ndarray:
    """A random [3, 2, 3] normals prediction (not unit length)."""
    return np.random.default_rng(seed).normal(size=(3, 2, 3)).astype(
        np.float32)


def _unit(v: np.ndarray, axis: int) -> np.ndarray:
    return v / np.linalg.norm(v, axis=axis, keepdims=True)


@pytest.mark.parametrize('which', ['png', 'npy'])
def test_short_label_vectors_are_invalid_for_loss_and_metric(tmp_path, which):
    label, invalid = _read_labels(tmp_path)[0 if which == 'png' else 1]
    assert label.shape == (2, 3, 3) and label.dtype == np.float32
    mask = np.ones((2, 3), bool)
    for pixel in invalid:
        mask[pixel] = False
        assert np.array_equal(label[pixel], np.zeros(3)), (pixel, label)
    # the other pixels: unit vectors of the decoded direction
    np.testing.assert_allclose(np.linalg.norm(label[mask], axis=-1), 1,
                               atol=1e-6)
    source = (PNG_RGB.astype(np.float64) * 2 / 255 - 1
              if which == 'png' else NPY.astype(np.float64))
    np.testing.assert_allclose(label[mask], _unit(source[mask], -1),
                               atol=1e-6)

    gt = label.transpose(2, 0, 1)  # [3, H, W]
    pred = _pred(0)
    # The same prediction, wrong at the invalid pixels only (opposite to
    # their decoded direction, and long).
    wrong = pred.copy()
    for pixel in invalid:
        wrong[(slice(None), ) + pixel] = -50 * source[pixel]

    # Loss: sum of the 3 components' |unit(pred) - gt|, mean over the
    # valid pixels.
    errors = np.abs(_unit(pred, 0) - gt).sum(0)
    want_loss = errors[mask].mean()
    loss_fn = NormalsL1Loss()
    for p in (pred, wrong):
        loss = loss_fn(torch.from_numpy(p)[None], torch.from_numpy(gt)[None])
        assert loss.item() == pytest.approx(want_loss, rel=1e-5)

    # Metric: mean angle over the valid pixels.
    cos = (_unit(pred, 0) * gt).sum(0)[mask]
    want_mean = np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()
    for p in (pred, wrong):
        metric = MultiTaskMetric(tasks=['normals'])
        metric.dataset_meta = {}
        metric.process({}, [make_sample(dict(normals=gt),
                                        dict(normals=p)).to_dict()])
        res = metric.evaluate(1)
        assert res['normals.mean'] == pytest.approx(want_mean, abs=1e-4)
