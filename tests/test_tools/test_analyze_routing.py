# Copyright (c) mmfgmoe contributors. All rights reserved.
"""tools/analysis_tools/analyze_routing.py end to end on a SynthRoom split."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from _tool_loader import load_tool
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from PIL import Image

import mmfgmoe  # noqa: F401
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'demo', 'fgmoe_vit-tiny_demo.py')


def _analyze_random_model(data_root: str, tmp_path, split: str,
                          *flags: str) -> dict:
    """Run the tool on a randomly initialised demo model over ``split`` of
    ``data_root``; its JSON summary (figures in ``tmp_path/routing``)."""
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    torch.manual_seed(0)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()),
               checkpoint)
    out = str(tmp_path / 'routing')
    loader = f'{split}_dataloader'
    options = ['model.backbone.init_cfg=None',
               f'{loader}.dataset.data_root={data_root}',
               f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/analyze_routing.py', CONFIG,
         checkpoint, '--out', out, '--split', split, *flags,
         '--cfg-options', *options],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(osp.join(out, 'routing_summary.json')) as f:
        return json.load(f)


def test_analyze_routing_writes_summary_and_figures(synth_nyud_root,
                                                    tmp_path):
    cfg = Config.fromfile(CONFIG)
    summary = _analyze_random_model(synth_nyud_root, tmp_path, 'test',
                                    '--num-images', '2', '--num-maps', '2')
    out = str(tmp_path / 'routing')
    head = cfg.model.decode_head
    assert summary['num_images'] == 2
    # 96x128 images, ViT/16 features upsampled x2: a 12x16 token grid.
    assert summary['num_tokens'] == 2 * 12 * 16
    assert summary['class_names'][:2] == ['wall', 'floor']
    for task in head.tasks:
        layers = summary['tasks'][task]['layers']
        assert len(layers) == head.num_blocks
        for layer in layers:
            assert sum(layer['fraction']) == pytest.approx(1.)
            assert sum(layer['counts']) == summary['num_tokens'] * head.top_k
            labelled = sum(summary['class_tokens'])
            assert np.sum(layer['cooccurrence']) == labelled * head.top_k
        gate = summary['tasks'][task]['global_gate']
        assert 0 < gate['mean'] < 1
        assert sum(gate['histogram']) == summary['num_tokens']

    figures = ['expert_usage.png', 'global_gate.png'] + [
        f'cooccurrence_{task}.png' for task in ('semseg', )
    ]
    maps = sorted(os.listdir(osp.join(out, 'maps')))
    assert len(maps) == 2
    for name in figures + [osp.join('maps', m) for m in maps]:
        image = np.asarray(Image.open(osp.join(out, name)).convert('L'))
        assert image.std() > 10, f'{name} looks blank'


def test_analyze_routing_on_the_training_split(synth_nyud_root, tmp_path):
    """The training loader (random crops of different sizes, an endless
    sampler) is read once, in order, its crops padded into batches."""
    summary = _analyze_random_model(synth_nyud_root, tmp_path, 'train',
                                    '--num-maps', '1')
    assert summary['num_images'] == 6  # every training image, once


def _load_tool():
    return load_tool('analysis_tools/analyze_routing.py')


def test_dense_decoder_gate_only_and_nothing_to_analyse(synth_nyud_root,
                                                         tmp_path):
    from mmengine.runner import Runner
    tool = _load_tool()
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.moe = False
    cfg.test_dataloader.dataset.data_root = synth_nyud_root
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model).eval()
    loader = Runner.build_dataloader(cfg.test_dataloader)
    out = str(tmp_path / 'dense')
    summary = tool.analyze(model, loader, out, num_images=1, num_maps=1,
                           class_names=list(loader.dataset.metainfo['classes']))
    for record in summary['tasks'].values():
        assert record['layers'] == []
        assert 0 < record['global_gate']['mean'] < 1
    assert sorted(os.listdir(out)) == ['global_gate.png', 'maps',
                                       'routing_summary.json']
    assert len(os.listdir(osp.join(out, 'maps'))) == 1

    cfg.model.decode_head.use_global_expert = False
    bare = MODELS.build(cfg.model).eval()
    with pytest.raises(ValueError, match='no routing to analyse'):
        tool.analyze(bare, loader, out, None, 0, None)


def _sample_with_label(label: torch.Tensor, **metainfo) -> SegDataSample:
    sample = SegDataSample(metainfo=metainfo)
    sample.gt_sem_seg = PixelData(data=label[None])
    return sample


def test_token_classes_on_padded_and_on_original_size_labels():
    """Training batches pad the labels with the inputs (one pixel grid);
    test labels keep their own resolution over the unpadded image."""
    tool = _load_tool()
    rows, cols = torch.tensor([1.5, 5.5]), torch.tensor([1.5, 5.5, 9.5])
    # Class = 10 * row + column // 4 of the input pixel.
    grid = (10 * torch.arange(8)[:, None] + torch.arange(12)[None] // 4)
    # A 6x8 crop padded to 8x12 in training: the label is the input's grid.
    padded = grid.clone()
    padded[6:], padded[:, 8:] = 255, 255
    train = _sample_with_label(padded, img_shape=(6, 8), pad_shape=(8, 12))
    out = tool.semantic_at_tokens([train], rows, cols, 255,
                                  padded_labels=True)
    assert out[0].tolist() == [[10, 11, 255], [50, 51, 255]]
    # A test label at twice the input's resolution over its 6x8 image.
    test = _sample_with_label(grid.repeat_interleave(2, 0).repeat_interleave(
        2, 1)[:12, :16], img_shape=(6, 8))
    out = tool.semantic_at_tokens([test], rows, cols[:2], 255)
    assert out[0].tolist() == [[10, 11], [50, 51]]
