# Copyright (c) mmfgmoe contributors. All rights reserved.
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
from _scene import H, W, scene

from mmseg.registry import VISUALIZERS
from mmfgmoe.visualization import MultiTaskLocalVisualizer

TITLE = 12
ROWS = ('semseg', 'human_parts', 'saliency', 'edge', 'depth', 'normals')


def _cell(panel: np.ndarray, row: int, col: int) -> np.ndarray:
    top = row * (TITLE + H) + TITLE
    return panel[top:top + H, col * W:(col + 1) * W]


def test_panel_layout_and_content(tmp_path):
    img, sample = scene()
    palette = [[10, 20, 30], [200, 0, 0], [0, 200, 0], [0, 0, 200]]
    vis = MultiTaskLocalVisualizer(
        name='vis_layout', classes=['wall', 'floor', 'box', 'disc'],
        palette=palette, title_height=TITLE, alpha=1.0, tasks=list(ROWS))
    out_file = str(tmp_path / 'panel.png')
    panel = vis.add_datasample('scene', img, sample, out_file=out_file)
    assert panel.shape == (len(ROWS) * (TITLE + H), 3 * W, 3)
    # the written file is the panel (RGB in memory, BGR on disk)
    np.testing.assert_array_equal(cv2.imread(out_file)[..., ::-1], panel)
    for row in range(len(ROWS)):
        np.testing.assert_array_equal(_cell(panel, row, 0), img)
    sem = sample.gt_sem_seg.data[0].numpy()
    gt_cell = _cell(panel, 0, 1)
    # alpha=1: every labelled pixel has its class colour; ignored = input
    for c, colour in enumerate(palette):
        assert (gt_cell[sem == c] == colour).all()
    np.testing.assert_array_equal(gt_cell[sem == 255], img[sem == 255])
    # normals: (n + 1) / 2 as RGB
    n = sample.gt_normals.data.numpy()
    np.testing.assert_array_equal(
        _cell(panel, 5, 1),
        np.rint((n + 1) / 2 * 255).astype(np.uint8).transpose(1, 2, 0))
    # edge GT: white boundary, grey ignored strip
    edge = sample.gt_edge.data[0].numpy()
    edge_cell = _cell(panel, 3, 1)
    assert (edge_cell[edge == 1] == 255).all()
    assert (edge_cell[edge == 255] == 128).all()
    # depth: invalid pixels black, valid ones coloured
    depth_cell = _cell(panel, 4, 1)
    assert (depth_cell[:, :3] == 0).all() and depth_cell[:, 3:].any()
    # saliency prediction: grey levels of the probability
    prob = sample.pred_saliency.data[0].numpy()
    np.testing.assert_array_equal(
        _cell(panel, 2, 2)[..., 0], np.rint(prob * 255).astype(np.uint8))


def test_local_and_tensorboard_backends(tmp_path):
    pytest.importorskip('tensorboard')
    img, sample = scene()
    vis = VISUALIZERS.build(
        dict(type='MultiTaskLocalVisualizer', name='vis_backends',
             vis_backends=[dict(type='LocalVisBackend'),
                           dict(type='TensorboardVisBackend')],
             save_dir=str(tmp_path)))
    vis.dataset_meta = dict(classes=['a', 'b', 'c', 'd'],
                            tasks=['semseg', 'depth'])
    panel = vis.add_datasample('val_scene', img, sample, step=3)
    assert panel.shape[0] == 2 * (16 + H)  # the dataset's two tasks only
    written = osp.join(str(tmp_path), 'vis_data', 'vis_image',
                       'val_scene_3.png')
    np.testing.assert_array_equal(cv2.imread(written)[..., ::-1], panel)
    vis.close()
    assert glob.glob(osp.join(str(tmp_path), 'vis_data', 'events.out.*'))


def test_gt_or_pred_only_and_missing_fields():
    img, sample = scene()
    vis = MultiTaskLocalVisualizer(name='vis_partial', title_height=0,
                                   tasks=['depth', 'saliency'])
    panel = vis.add_datasample('x', img, sample, draw_gt=False,
                               out_file=None)
    assert panel.shape == (2 * H, 2 * W, 3)
    del sample.pred_saliency
    panel = vis.add_datasample('y', img, sample)
    assert panel.shape == (2 * H, 3 * W, 3)
    # the missing prediction is a flat dark cell
    assert (panel[H:, 2 * W:] == 32).all()
