# Copyright (c) mmfgmoe contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample


def test_pack_types_and_shapes():
    h, w = 5, 7
    results = dict(
        img=np.random.randint(0, 255, (h, w, 3), np.uint8),
        img_path='a.png', ori_shape=(h, w), img_shape=(h, w),
        tasks=['semseg', 'depth', 'normals'],
        gt_sem_seg=np.full((h, w), 3, np.uint8),
        gt_depth_map=np.full((h, w), 1.5, np.float32),
        gt_normals=np.tile(np.array([0, 0, -1], np.float32), (h, w, 1)))
    packed = TRANSFORMS.build(dict(type='PackMultiTaskInputs'))(results)
    assert packed['inputs'].shape == (3, h, w)
    assert torch.equal(packed['inputs'][0],
                       torch.from_numpy(results['img'][..., 0]))
    s = packed['data_samples']
    assert isinstance(s, SegDataSample)
    assert s.gt_sem_seg.data.dtype == torch.int64
    assert s.gt_sem_seg.data.shape == (1, h, w)
    assert s.gt_depth_map.data.dtype == torch.float32
    assert s.gt_normals.data.shape == (3, h, w)
    assert (s.gt_normals.data[2] == -1).all()
    assert 'gt_edge' not in s
    assert s.metainfo['tasks'] == ['semseg', 'depth', 'normals']
    assert s.metainfo['seg_map_path'] is None
    assert s.metainfo['reduce_zero_label'] is False


def test_pack_rejects_wrong_channels():
    results = dict(img=np.zeros((4, 4, 3), np.uint8),
                   gt_normals=np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ValueError, match='3 channel'):
        TRANSFORMS.build(dict(type='PackMultiTaskInputs'))(results)


def test_load_annotations_needs_ann_info():
    t = TRANSFORMS.build(dict(type='LoadMultiTaskAnnotations'))
    with pytest.raises(KeyError, match='ann_info'):
        t(dict(img_path='x.png'))
    with pytest.raises(ValueError, match='unknown task'):
        TRANSFORMS.build(dict(type='LoadMultiTaskAnnotations',
                              tasks=['segmentation']))


def test_load_annotations_reader_without_label_or_fill(monkeypatch):
    from mmfgmoe.datasets.transforms.loading import LABEL_READERS
    monkeypatch.setitem(LABEL_READERS, 'no_label', lambda path: None)
    t = TRANSFORMS.build(dict(type='LoadMultiTaskAnnotations'))
    results = dict(img=np.zeros((4, 4, 3), np.uint8), tasks=['human_parts'],
                   ann_info=dict(human_parts=dict(path='parts/a.mat',
                                                  reader='no_label')))
    with pytest.raises(ValueError, match=r'parts/a\.mat.*human_parts.*'
                       r'fill_if_empty'):
        t(results)
