# Copyright (c) mmfgmoe contributors. All rights reserved.
"""MultiTaskTTAModel: per-task averaging of flip views."""
import torch
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample


def _view(semseg_logits, depth, normals, edge):
    sample = SegDataSample(metainfo=dict(img_path='a.png', ori_shape=(1, 2)))
    sample.seg_logits = PixelData(data=semseg_logits)
    sample.pred_sem_seg = PixelData(data=semseg_logits.argmax(0, keepdim=True))
    sample.pred_depth_map = PixelData(data=depth)
    sample.pred_normals = PixelData(data=normals)
    sample.pred_edge = PixelData(data=edge)
    sample.gt_depth_map = PixelData(data=torch.ones(1, 1, 2))
    return sample


def test_merge_averages_each_task_correctly(model_cfg):
    model = MODELS.build(model_cfg(['semseg', 'depth', 'normals', 'edge']))
    tta = MODELS.build(dict(type='MultiTaskTTAModel', module=model))
    # Pixel 0: view A is very sure of class 0, view B mildly prefers class 1
    # -> averaged probabilities pick class 0 (a vote of argmaxes would tie).
    logits_a = torch.tensor([[10., 0.], [0., 0.], [0., 0.], [0., 0.],
                             [0., 0.]]).view(5, 1, 2)
    logits_b = torch.tensor([[0., 0.], [1., 5.], [0., 0.], [0., 0.],
                             [0., 0.]]).view(5, 1, 2)
    n_a = torch.tensor([1., 0., 0.]).view(3, 1, 1).expand(3, 1, 2)
    n_b = torch.tensor([0., 1., 0.]).view(3, 1, 1).expand(3, 1, 2)
    views = [
        _view(logits_a, torch.full((1, 1, 2), 2.), n_a,
              torch.full((1, 1, 2), .2)),
        _view(logits_b, torch.full((1, 1, 2), 4.), n_b,
              torch.full((1, 1, 2), .6)),
    ]
    merged = tta.merge_preds([views])[0]
    assert merged.pred_sem_seg.data.tolist() == [[[0, 1]]]
    torch.testing.assert_close(merged.pred_depth_map.data,
                               torch.full((1, 1, 2), 3.))
    torch.testing.assert_close(merged.pred_edge.data, torch.full((1, 1, 2),
                                                                 .4))
    half = 2**-0.5
    torch.testing.assert_close(merged.pred_normals.data[:, 0, 0],
                               torch.tensor([half, half, 0.]))
    assert 'gt_depth_map' in merged and merged.img_path == 'a.png'


def test_tta_test_step_runs_flip_views(model_cfg, sample_factory):
    """Two views (plain and flipped image) through the real test_step."""
    tasks = ['semseg', 'normals']
    model = MODELS.build(model_cfg(tasks)).eval()
    tta = MODELS.build(dict(type='MultiTaskTTAModel', module=model))
    image = torch.randint(0, 256, (3, 32, 48), dtype=torch.uint8)
    plain = sample_factory(tasks, 32, 48, seed=0, flip=False)
    flipped = sample_factory(tasks,
                             32,
                             48,
                             seed=0,
                             flip=True,
                             flip_direction='horizontal')
    data = dict(inputs=[[image], [image.flip(-1)]],
                data_samples=[[plain], [flipped]])
    with torch.no_grad():
        out = tta.test_step(data)
        views = [
            model.test_step(dict(inputs=[img], data_samples=[sample]))[0]
            for img, sample in ((image, plain), (image.flip(-1), flipped))
        ]
    assert len(out) == 1
    assert out[0].pred_sem_seg.data.shape == (1, 32, 48)
    # The views come back aligned (the flipped one unflipped, its normals'
    # x negated): the merge is the mean softmax's argmax and the
    # renormalised mean normal.
    probs = sum(v.seg_logits.data.softmax(dim=0) for v in views)
    torch.testing.assert_close(out[0].pred_sem_seg.data,
                               probs.argmax(dim=0, keepdim=True))
    mean_normal = sum(v.pred_normals.data for v in views)
    torch.testing.assert_close(out[0].pred_normals.data,
                               torch.nn.functional.normalize(mean_normal,
                                                             dim=0))
