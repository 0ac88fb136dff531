# Copyright (c) mmfgmoe contributors. All rights reserved.
"""mmfgmoe.apis and demo/image_demo.py on SynthRoom images."""
import glob
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmfgmoe  # noqa: F401
from mmfgmoe.apis import inference_model, init_model
from mmseg.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'demo', 'fgmoe_vit-tiny_demo.py')
TASK_FIELDS = dict(semseg=('pred_sem_seg', 1), depth=('pred_depth_map', 1),
                   normals=('pred_normals', 3), edge=('pred_edge', 1))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    """A randomly initialised demo model, saved as the runner does."""
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('ckpt') / 'model.pth')
    meta = dict(dataset_meta=dict(classes=[f'c{i}' for i in range(40)]))
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(),
                    meta=meta), path)
    return path


def test_every_task_at_the_image_size_from_files_and_arrays(
        checkpoint, synth_nyud_root):
    model = init_model(CONFIG, checkpoint, device='cpu')
    assert not model.training
    assert model.dataset_meta['tasks'] == ['semseg', 'depth', 'normals',
                                           'edge']
    assert model.dataset_meta['classes'][0] == 'c0'  # the checkpoint's
    assert len(model.dataset_meta['palette']) == 40  # the config's dataset
    paths = sorted(glob.glob(osp.join(synth_nyud_root, 'images', '*')))[:2]
    one = inference_model(model, paths[0])
    height, width = mmcv.imread(paths[0]).shape[:2]
    for field, channels in TASK_FIELDS.values():
        assert one.get(field).data.shape == (channels, height, width), field
    assert one.pred_sem_seg.data.max() < 40
    both = inference_model(model, [mmcv.imread(p) for p in paths])
    assert isinstance(both, list) and len(both) == 2
    for field, _ in TASK_FIELDS.values():
        torch.testing.assert_close(both[0].get(field).data,
                                   one.get(field).data)


def test_inference_equals_the_test_loop_on_a_dataset_image(
        checkpoint, synth_nyud_root):
    # The same image through the config's test dataloader and model.test_step
    # (what tools/test.py runs): a colour-order, normalisation or padding
    # slip of the inference path alone would differ.
    from mmengine.dataset import pseudo_collate

    from mmseg.registry import DATASETS
    model = init_model(CONFIG, checkpoint, device='cpu')
    cfg = Config.fromfile(CONFIG)
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = synth_nyud_root
    dataset = DATASETS.build(dataset_cfg)
    item = dataset[0]
    with torch.no_grad():
        expected = model.test_step(pseudo_collate([item]))[0]
    got = inference_model(model, item['data_samples'].img_path)
    for field, _ in TASK_FIELDS.values():
        torch.testing.assert_close(got.get(field).data,
                                   expected.get(field).data)


def test_init_model_errors(checkpoint, tmp_path):
    with pytest.raises(TypeError, match='file path or a Config'):
        init_model(dict(model=None), device='cpu')
    state = torch.load(checkpoint, weights_only=True)
    del state['state_dict']['decode_head.global_expert.gate_token.bias']
    partial = str(tmp_path / 'partial.pth')
    torch.save(state, partial)
    with pytest.raises(RuntimeError, match='gate_token.bias'):
        init_model(CONFIG, partial, device='cpu')
    model = init_model(CONFIG, device='cpu')  # no checkpoint: initial weights
    with pytest.raises(ValueError, match='no image'):
        inference_model(model, [])
    with pytest.raises(TypeError, match='as paths or all as arrays'):
        inference_model(model, ['a.png', np.zeros((8, 8, 3), np.uint8)])


def test_image_demo_writes_a_panel_per_image(checkpoint, synth_nyud_root,
                                             tmp_path):
    paths = sorted(glob.glob(osp.join(synth_nyud_root, 'images', '*')))[:2]
    out = str(tmp_path / 'panels')
    proc = subprocess.run(
        [sys.executable, 'demo/image_demo.py', *paths, CONFIG, checkpoint,
         '--out-dir', out, '--device', 'cpu'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    height, width = mmcv.imread(paths[0]).shape[:2]
    for path in paths:
        panel = mmcv.imread(osp.join(
            out, osp.splitext(osp.basename(path))[0] + '.png'))
        # input | prediction, one row per task (each with a title strip)
        assert panel.shape[1] == 2 * width
        assert panel.shape[0] > 4 * height
        assert panel.std() > 10
