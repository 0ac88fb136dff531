# Copyright (c) mmfgmoe contributors. All rights reserved.
"""NYUDv2MultiTaskDataset on both packagings."""
import os
import os.path as osp
import pathlib
import pickle

import cv2
import numpy as np
import pytest
import torch

from mmseg.registry import DATASETS
from mmfgmoe.datasets import NYUDv2MultiTaskDataset
from mmfgmoe.datasets.nyud import NYU40_CLASSES

TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]


@pytest.mark.parametrize('packaging', ['nyudv2', 'nyud_mt'])
def test_both_packagings_load(packaging, synth_nyud_root, synth_nyud_mt_root):
    root = synth_nyud_root if packaging == 'nyudv2' else synth_nyud_mt_root
    ds = DATASETS.build(dict(type='NYUDv2MultiTaskDataset', data_root=root,
                             split='val', pipeline=TEST_PIPELINE,
                             test_mode=True))
    assert ds.packaging == packaging  # detected
    assert len(ds) == 3
    assert ds.metainfo['tasks'] == ['semseg', 'depth', 'normals', 'edge']
    assert tuple(ds.metainfo['classes']) == NYU40_CLASSES
    assert len(ds.metainfo['palette']) == 40
    out = ds[0]
    sample = out['data_samples']
    h, w = out['inputs'].shape[-2:]
    assert sample.gt_sem_seg.data.shape == (1, h, w)
    assert sample.gt_sem_seg.data.dtype == torch.int64
    assert sample.gt_depth_map.data.shape == (1, h, w)
    assert sample.gt_depth_map.data.dtype == torch.float32
    assert sample.gt_normals.data.shape == (3, h, w)
    assert sample.gt_edge.data.shape == (1, h, w)
    assert set(sample.gt_edge.data.unique().tolist()) <= {0, 1}
    assert sample.metainfo['tasks'] == ds.metainfo['tasks']
    assert sample.metainfo['ori_shape'] == (h, w)
    assert sample.metainfo['reduce_zero_label'] is False


def test_packagings_agree(synth_nyud_root, synth_nyud_mt_root):
    """Same seed, two packagings: the same labels (images differ by JPEG)."""
    a = NYUDv2MultiTaskDataset(synth_nyud_root, split='train',
                               pipeline=TEST_PIPELINE)
    b = NYUDv2MultiTaskDataset(synth_nyud_mt_root, split='train',
                               pipeline=TEST_PIPELINE)
    sa, sb = a[1]['data_samples'], b[1]['data_samples']
    assert torch.equal(sa.gt_sem_seg.data, sb.gt_sem_seg.data)
    assert torch.equal(sa.gt_depth_map.data, sb.gt_depth_map.data)
    assert torch.equal(sa.gt_edge.data, sb.gt_edge.data)
    # png normals are quantised to 8 bits: within a degree of the float ones
    cos = (sa.gt_normals.data * sb.gt_normals.data).sum(0)
    assert cos.min() > np.cos(np.deg2rad(1.5))
    ia, ib = a[1]['inputs'].float(), b[1]['inputs'].float()
    assert (ia - ib).abs().mean() < 8


def test_label_conventions(synth_nyud_root):
    ds = NYUDv2MultiTaskDataset(synth_nyud_root, split='train',
                                pipeline=TEST_PIPELINE)
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        raw = cv2.imread(info['ann_info']['semseg']['path'],
                         cv2.IMREAD_UNCHANGED).astype(np.int64)
        seg = ds[idx]['data_samples'].gt_sem_seg.data[0].numpy()
        np.testing.assert_array_equal(seg[raw == 0], 255)
        np.testing.assert_array_equal(seg[raw > 0], raw[raw > 0] - 1)
        depth = ds[idx]['data_samples'].gt_depth_map.data[0].numpy()
        np.testing.assert_array_equal(depth, np.load(
            info['ann_info']['depth']['path']))
        normals = ds[idx]['data_samples'].gt_normals.data.numpy()
        np.testing.assert_allclose(np.linalg.norm(normals, axis=0), 1,
                                   atol=1e-5)
    # some unlabeled pixels and some invalid depth exist in the fixture
    assert any((cv2.imread(ds.get_data_info(i)['ann_info']['semseg']['path'],
                           cv2.IMREAD_UNCHANGED) == 0).any()
               for i in range(len(ds)))


@pytest.mark.parametrize('tasks', [['depth'], ['edge', 'semseg'],
                                   ['normals', 'depth', 'edge']])
def test_task_subsets(tasks, synth_nyud_root):
    ds = NYUDv2MultiTaskDataset(synth_nyud_root, split='train', tasks=tasks,
                                pipeline=TEST_PIPELINE)
    sample = ds[0]['data_samples']
    fields = {k for k in sample.keys() if k.startswith('gt_')}
    expected = {dict(semseg='gt_sem_seg', depth='gt_depth_map',
                     normals='gt_normals', edge='gt_edge')[t] for t in tasks}
    assert fields == expected
    assert ds.metainfo['tasks'] == tasks
    if 'semseg' not in tasks:
        assert sample.metainfo['seg_map_path'] is None


def test_explicit_packaging_and_missing_files(synth_nyud_root):
    ds = NYUDv2MultiTaskDataset(synth_nyud_root, packaging='nyudv2')
    assert ds.packaging == 'nyudv2'
    with pytest.raises(FileNotFoundError, match=r'images.*\.jpg'):
        NYUDv2MultiTaskDataset(synth_nyud_root, packaging='nyud_mt')
    with pytest.raises(ValueError, match='packaging'):
        NYUDv2MultiTaskDataset(synth_nyud_root, packaging='png')


def test_lazy_and_serialized(synth_nyud_root):
    ds = NYUDv2MultiTaskDataset(synth_nyud_root, split='val', lazy_init=True)
    ds.full_init()
    assert len(ds) == 3
    paths = {task: ann['path']
             for task, ann in ds.get_data_info(0)['ann_info'].items()}
    assert set(paths) == {'semseg', 'depth', 'normals', 'edge'}
    assert all(osp.isfile(p) for p in paths.values())
    # dataloader workers receive a pickled copy of the serialized list
    assert ds.serialize_data
    copy = pickle.loads(pickle.dumps(ds))
    for idx in range(len(ds)):
        assert copy.get_data_info(idx) == ds.get_data_info(idx)


def test_missing_root_lazy_and_eager(tmp_path):
    missing = str(tmp_path / 'nowhere')
    ds = NYUDv2MultiTaskDataset(missing, lazy_init=True)  # configs, tools
    with pytest.raises(FileNotFoundError, match='nowhere.*is not a folder'):
        ds.full_init()
    with pytest.raises(FileNotFoundError, match='nowhere'):
        NYUDv2MultiTaskDataset(missing)


def test_data_root_may_be_a_path_object(synth_nyud_root):
    ds = NYUDv2MultiTaskDataset(pathlib.Path(synth_nyud_root), split='val',
                                pipeline=[])
    assert ds.data_root == str(synth_nyud_root) and len(ds) > 0


def test_guide_tasks_give_a_subset_the_multi_task_crops(nyud_copy):
    """A depth-only run with ``guide_tasks=['semseg']`` crops by the class
    ratio rule exactly as the multi-task run (same seed, same crops), and
    does not pack or train semseg."""
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadMultiTaskAnnotations'),
        dict(type='MultiTaskRandomResize', ratio_range=(0.5, 2.0)),
        dict(type='MultiTaskRandomCrop', crop_size=(48, 64),
             cat_max_ratio=0.75),
        dict(type='MultiTaskRandomFlip', prob=0.5),
        dict(type='PackMultiTaskInputs'),
    ]

    def build(**kwargs):
        return NYUDv2MultiTaskDataset(nyud_copy, split='train',
                                      pipeline=train_pipeline, **kwargs)

    full = build()
    guided = build(tasks=['depth'], guide_tasks=['semseg'])
    assert guided.metainfo['tasks'] == ['depth']
    for i in range(len(full)):
        np.random.seed(i)
        a = full[i]
        np.random.seed(i)
        b = guided[i]
        torch.testing.assert_close(b['inputs'], a['inputs'])
        torch.testing.assert_close(b['data_samples'].gt_depth_map.data,
                                   a['data_samples'].gt_depth_map.data)
        fields = {k for k in b['data_samples'].keys() if k.startswith('gt_')}
        assert fields == {'gt_depth_map'}
        assert b['data_samples'].metainfo['tasks'] == ['depth']
    # a guide that is also a task is loaded once, as the task
    assert build(tasks=['semseg'], guide_tasks=['semseg']).guide_tasks == []
    with pytest.raises(KeyError, match="guide_tasks=\\['semseg'\\]"):
        build(tasks=['depth'])[0]
    with pytest.raises(ValueError, match='guide_tasks.*unknown'):
        build(tasks=['depth'], guide_tasks=['saliency'])
    # the guide's files are checked at build time like a task's
    first = guided.get_data_info(0)['ann_info']['semseg']['path']
    os.remove(first)
    with pytest.raises(FileNotFoundError, match='semseg file not found'):
        build(tasks=['depth'], guide_tasks=['semseg'])


def test_class_subset_remaps_semseg_like_mmseg(synth_nyud_root):
    # mmseg's label_map: a dataset built with a subset of the classes maps
    # each kept class to its new index and every other class to 255.
    keep = ('floor', 'wall')  # ids 1 and 0 in NYU-40, given in another order
    full = NYUDv2MultiTaskDataset(synth_nyud_root, split='val',
                                  tasks=['semseg'], pipeline=TEST_PIPELINE,
                                  test_mode=True)
    sub = NYUDv2MultiTaskDataset(synth_nyud_root, split='val',
                                 tasks=['semseg'], pipeline=TEST_PIPELINE,
                                 test_mode=True,
                                 metainfo=dict(classes=keep))
    assert tuple(sub.metainfo['classes']) == keep
    old_ids = [NYU40_CLASSES.index(c) for c in keep]
    for i in range(len(full)):
        before = full[i]['data_samples'].gt_sem_seg.data
        after = sub[i]['data_samples'].gt_sem_seg.data
        expected = torch.full_like(before, 255)
        for new_id, old_id in enumerate(old_ids):
            expected[before == old_id] = new_id
        assert (before == old_ids[0]).any() and (before == old_ids[1]).any()
        torch.testing.assert_close(after, expected)
