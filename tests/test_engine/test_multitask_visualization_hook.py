# Copyright (c) mmfgmoe contributors. All rights reserved.
"""The visualisation hook and the metric inside a real mmengine Runner (test
and val loops), with a tiny model that predicts from the labels."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import PixelData
from PIL import Image
from torch.utils.data import Dataset

from mmseg.structures import SegDataSample
import mmfgmoe  # noqa: F401  (registers the metric, hook, visualizer)

H, W = 32, 40
NUM = 3


class _LabelledImages(Dataset):
    """``NUM`` images on disk with semseg, depth and edge labels."""

    metainfo = dict(classes=['bg', 'box'], palette=[[0, 0, 0], [255, 0, 0]],
                    tasks=['semseg', 'depth', 'edge'])

    def __init__(self, root: str):
        self.items = []
        rng = np.random.default_rng(0)
        for i in range(NUM):
            sem = np.zeros((H, W), np.int64)
            sem[5 + i:20, 8:30] = 1
            img = (rng.random((H, W, 3)) * 60 + sem[..., None] * 150).astype(
                np.uint8)
            if i == 0:
                # A JPEG whose EXIF tag says "rotate 90 degrees": the panel
                # must show it as the pipeline loads it, unrotated.
                path = osp.join(root, f'im{i}.jpg')
                exif = Image.Exif()
                exif[0x0112] = 6
                Image.fromarray(img[..., ::-1]).save(path, exif=exif)
            else:
                path = osp.join(root, f'im{i}.png')
                cv2.imwrite(path, img)
            edge = np.zeros((H, W), np.int64)
            edge[:-1] |= sem[:-1] != sem[1:]
            edge[:, :-1] |= sem[:, :-1] != sem[:, 1:]
            depth = (1.0 + sem * 2.0 + rng.random((H, W))).astype(np.float32)
            self.items.append((path, img, sem, depth, edge))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> dict:
        path, img, sem, depth, edge = self.items[idx]
        sample = SegDataSample()
        sample.set_metainfo(dict(img_path=path, ori_shape=(H, W),
                                 img_shape=(H, W), tasks=['semseg', 'depth',
                                                          'edge']))
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(sem)[None])
        sample.set_field(PixelData(data=torch.from_numpy(depth)[None]),
                         'gt_depth_map')
        sample.set_field(PixelData(data=torch.from_numpy(edge)[None]),
                         'gt_edge')
        inputs = torch.from_numpy(img).permute(2, 0, 1).contiguous()
        return dict(inputs=inputs, data_samples=sample)


class _FromLabels(BaseModel):
    """Predicts semseg and edges exactly and depth with a +0.5 m bias."""

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return dict(loss=self.bias * 0)
        for sample in data_samples:
            sample.pred_sem_seg = PixelData(data=sample.gt_sem_seg.data)
            sample.set_field(
                PixelData(data=sample.gt_depth_map.data + self.bias.detach()),
                'pred_depth_map')
            sample.set_field(
                PixelData(data=sample.gt_edge.data.float()), 'pred_edge')
        return data_samples


def _runner(tmp_path, name, mode, evaluator, **kwargs) -> Runner:
    loader = dict(dataset=_LabelledImages(str(tmp_path)),
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  batch_size=2, num_workers=0)
    kwargs[f'{mode}_dataloader'] = loader
    kwargs[f'{mode}_cfg'] = dict(type=f'{mode.capitalize()}Loop')
    kwargs[f'{mode}_evaluator'] = evaluator
    return Runner(
        model=_FromLabels(),
        work_dir=str(tmp_path / 'work'),
        experiment_name=name,
        default_scope='mmseg',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        visualizer=dict(type='MultiTaskLocalVisualizer',
                        vis_backends=[dict(type='LocalVisBackend')],
                        save_dir=str(tmp_path / 'show')),
        **kwargs)


@pytest.mark.timeout(120)
def test_test_loop_draws_every_sample_and_writes_outputs(tmp_path):
    out_dir = str(tmp_path / 'preds')
    runner = _runner(
        tmp_path, 'hook_test', 'test',
        evaluator=dict(type='MultiTaskMetric', edge_thresholds=3,
                            edge_nms=False, output_dir=out_dir),
        default_hooks=dict(visualization=dict(
            type='MultiTaskVisualizationHook', draw=True, interval=50)))
    metrics = runner.test()
    assert metrics['semseg.mIoU'] == pytest.approx(100.0)
    assert metrics['depth.rmse'] == pytest.approx(0.5, abs=1e-6)
    assert metrics['edge.odsF'] > 90.0
    panels = sorted(glob.glob(str(tmp_path / 'show' / 'vis_data' /
                                  'vis_image' / '*.png')))
    assert [osp.basename(p) for p in panels] == [
        f'test_im{i}_0.png' for i in range(NUM)
    ]
    panel = cv2.imread(panels[0])
    assert panel.shape == (3 * (16 + H), 3 * W, 3)  # 3 tasks x 3 columns
    for task, ext in (('semseg', 'png'), ('depth', 'npy'), ('edge', 'png')):
        assert len(glob.glob(osp.join(out_dir, task, f'*.{ext}'))) == NUM


@pytest.mark.timeout(120)
def test_val_loop_respects_interval_and_draw_flag(tmp_path):
    runner = _runner(
        tmp_path, 'hook_val', 'val',
        evaluator=dict(type='MultiTaskMetric', edge_backend='loss'),
        default_hooks=dict(visualization=dict(
            type='MultiTaskVisualizationHook', draw=True, interval=2)))
    metrics = runner.val()
    assert 'edge.loss' in metrics and 'edge.odsF' not in metrics
    panels = glob.glob(str(tmp_path / 'show' / 'vis_data' / 'vis_image' /
                           '*.png'))
    # batches of 2 over 3 images: batch 1 (the 2nd) is drawn -> 1 image
    assert [osp.basename(p) for p in panels] == ['val_im2_0.png']
