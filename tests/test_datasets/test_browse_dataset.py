# Copyright (c) mmfgmoe contributors. All rights reserved.
"""tools/misc/browse_dataset.py writes the visualizer's label panels."""
import os.path as osp

import cv2
import numpy as np
from _tool_loader import load_tool

from mmengine.config import Config

from mmfgmoe.datasets import PascalContextMultiTaskDataset
from mmfgmoe.utils import TASK_SPECS
from mmfgmoe.visualization import MultiTaskLocalVisualizer
from mmseg.registry import DATASETS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TITLE = 16  # MultiTaskLocalVisualizer's default title strip


def _tool():
    return load_tool('misc/browse_dataset.py')


def test_browse_pascal_val(synth_pascal_root, tmp_path):
    """Val (no augmentation): per task a row ``input | GT`` whose input is
    the JPEG and whose GT is the visualizer's drawing of the dataset's
    label."""
    written = _tool().main([
        osp.join(ROOT, 'configs', '_base_', 'datasets',
                 'synth_room_pascal.py'), '--output-dir', str(tmp_path),
        '--phase', 'val', '--num', '2', '--cfg-options',
        f'val_dataloader.dataset.data_root={synth_pascal_root}'
    ])
    assert len(written) == 2
    panel = cv2.imread(written[0])[..., ::-1]  # RGB
    h, w = 96, 128  # val = native resolution
    tasks = PascalContextMultiTaskDataset.TASKS
    assert panel.shape == (len(tasks) * (TITLE + h), 2 * w, 3)
    jpeg = cv2.imread(osp.join(synth_pascal_root, 'JPEGImages',
                               osp.basename(written[0])[5:-4] + '.jpg'))
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'datasets',
                 'synth_room_pascal.py'))
    cfg.val_dataloader.dataset.data_root = synth_pascal_root
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    visualizer = MultiTaskLocalVisualizer(name='test_browse_reference')
    visualizer.dataset_meta = dataset.metainfo
    sample = dataset[0]['data_samples']
    image = np.ascontiguousarray(jpeg[..., ::-1])  # RGB
    for row, task in enumerate(tasks):
        top = row * (TITLE + h) + TITLE
        np.testing.assert_array_equal(panel[top:top + h, :w], image,
                                      err_msg=task)
        label = sample.get(TASK_SPECS[task].gt_field).data.numpy()
        np.testing.assert_array_equal(
            panel[top:top + h, w:],
            visualizer.render_task(task, image, label, is_label=True),
            err_msg=task)


def test_browse_nyud_train(synth_nyud_root, tmp_path):
    """Train: the pipeline's random crop (at most 224x288), one row per
    task."""
    written = _tool().main([
        osp.join(ROOT, 'configs', '_base_', 'datasets', 'synth_room_nyud.py'),
        '--output-dir', str(tmp_path), '--num', '1', '--cfg-options',
        f'train_dataloader.dataset.data_root={synth_nyud_root}'
    ])
    panel = cv2.imread(written[0])
    rows = 4  # semseg, depth, normals, edge
    height, width = panel.shape[0] // rows - TITLE, panel.shape[1] // 2
    assert panel.shape == (rows * (TITLE + height), 2 * width, 3)
    assert 0 < height <= 224 and 0 < width <= 288
