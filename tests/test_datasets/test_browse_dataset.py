# Copyright (c) mmfgmoe contributors. All rights reserved.
"""tools/misc/browse_dataset.py writes aligned label panels."""
import os.path as osp

import cv2
import numpy as np
from _tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    return load_tool('misc/browse_dataset.py')


def test_browse_pascal_val(synth_pascal_root, tmp_path):
    tool = _tool()
    written = tool.main([
        osp.join(ROOT, 'configs', '_base_', 'datasets',
                 'synth_room_pascal.py'), '--output-dir', str(tmp_path),
        '--phase', 'val', '--num', '2', '--cfg-options',
        f'val_dataloader.dataset.data_root={synth_pascal_root}'
    ])
    assert len(written) == 2
    panel = cv2.imread(written[0])
    h, w = 96, 128  # val = native resolution
    assert panel.shape == (h + tool.TITLE_HEIGHT, 6 * w, 3)
    # the image tile is the JPEG itself (RGB -> BGR on disk again)
    img = cv2.imread(osp.join(synth_pascal_root, 'JPEGImages',
                              osp.basename(written[0])[5:-4] + '.jpg'))
    np.testing.assert_array_equal(panel[tool.TITLE_HEIGHT:, :w], img)


def test_browse_nyud_train(synth_nyud_root, tmp_path):
    tool = _tool()
    written = tool.main([
        osp.join(ROOT, 'configs', '_base_', 'datasets', 'synth_room_nyud.py'),
        '--output-dir', str(tmp_path), '--num', '1', '--cfg-options',
        f'train_dataloader.dataset.data_root={synth_nyud_root}'
    ])
    panel = cv2.imread(written[0])
    # train = the pipeline's random crop (at most 224x288; the data
    # preprocessor pads batches later), image + 4 tasks
    height, width = panel.shape[0] - tool.TITLE_HEIGHT, panel.shape[1] // 5
    assert panel.shape[1] == 5 * width
    assert 0 < height <= 224 and 0 < width <= 288


def test_render_semantics():
    import torch
    from mmengine.structures import PixelData

    from mmseg.structures import SegDataSample
    tool = _tool()
    s = SegDataSample()
    s.gt_sem_seg = PixelData(data=torch.tensor([[[0, 1], [255, 1]]]))
    s.gt_depth_map = PixelData(data=torch.tensor([[[0.0, 1.0], [2.0, 3.0]]]))
    panel = tool.render_sample(
        np.zeros((3, 2, 2), np.uint8), s,
        dict(tasks=['semseg', 'depth'], palette=[[1, 2, 3], [4, 5, 6]]),
        bgr_input=False)
    tiles = panel[tool.TITLE_HEIGHT:]
    assert tiles[0, 2].tolist() == [1, 2, 3]
    assert tiles[1, 2].tolist() == list(tool.INVALID_COLOUR)  # ignore
    assert tiles[0, 4].tolist() == list(tool.INVALID_COLOUR)  # depth 0
    assert tiles[1, 5].tolist() != list(tool.INVALID_COLOUR)
