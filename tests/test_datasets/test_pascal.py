# Copyright (c) mmfgmoe contributors. All rights reserved.
"""PascalContextMultiTaskDataset: the PASCAL_MT rules on SynthRoom files."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import scipy.io as sio

from mmseg.registry import DATASETS
from mmfgmoe.datasets import PascalContextMultiTaskDataset
from mmfgmoe.datasets.pascal_context import (HUMAN_PART_CLASSES,
                                             HUMAN_PART_GROUPS,
                                             NORMALS_VALID_CONTEXT_CLASSES,
                                             VOC_CLASSES)
from mmfgmoe.datasets.transforms.loading import labelmap_edges

LOAD = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
]


def _build(root, split='train', **kwargs):
    return DATASETS.build(dict(type='PascalContextMultiTaskDataset',
                               data_root=root, split=split, pipeline=LOAD,
                               **kwargs))


def test_metainfo_and_fields(synth_pascal_root):
    ds = _build(synth_pascal_root, split='val', test_mode=True)
    assert len(ds) == 3
    meta = ds.metainfo
    assert meta['tasks'] == ['semseg', 'human_parts', 'saliency', 'normals',
                             'edge']
    assert tuple(meta['classes']) == VOC_CLASSES and len(VOC_CLASSES) == 21
    assert tuple(meta['human_parts_classes']) == HUMAN_PART_CLASSES
    assert len(meta['human_parts_palette']) == 7
    assert meta['palette'][15] == [192, 128, 128]  # VOC's person colour
    out = ds[0]
    for key in ('gt_sem_seg', 'gt_human_parts', 'gt_saliency', 'gt_edge'):
        assert out[key].shape == out['img'].shape[:2]
        assert out[key].dtype == np.uint8
    assert out['gt_normals'].shape == out['img'].shape[:2] + (3, )


def test_six_part_grouping_is_the_reference_one():
    # ASTMT / MTL-PyTorch / ATRC HUMAN_PART[6]: 24 names, 6 groups
    assert len(HUMAN_PART_GROUPS) == 24
    groups = {}
    for name, gid in HUMAN_PART_GROUPS.items():
        groups.setdefault(gid, set()).add(name)
    assert groups[2] == {'neck', 'torso'}
    assert groups[3] == {'luarm', 'ruarm'}
    assert groups[4] == {'llarm', 'rlarm', 'lhand', 'rhand'}
    assert groups[5] == {'luleg', 'ruleg'}
    assert groups[6] == {'llleg', 'rlleg', 'lfoot', 'rfoot'}
    assert len(groups[1]) == 10 and 'hair' in groups[1]


def test_semseg_voc12_else_context(pascal_copy):
    ds = _build(pascal_copy)
    paths = [ds.get_data_info(i)['ann_info']['semseg']['path']
             for i in range(len(ds))]
    assert any('/VOC12/' in p for p in paths)
    assert any('/pascal-context/' in p for p in paths)
    # a VOC12 file wins over a context one of the same id
    ctx = next(p for p in paths if '/pascal-context/' in p)
    voc = ctx.replace('pascal-context', 'VOC12')
    marker = np.full(cv2.imread(ctx, 0).shape, 7, np.uint8)
    cv2.imwrite(voc, marker)
    ds = _build(pascal_copy)
    idx = paths.index(ctx)
    assert ds.get_data_info(idx)['ann_info']['semseg']['path'] == voc
    assert (ds[idx]['gt_sem_seg'] == 7).all()


def test_human_parts_from_mat(synth_pascal_root):
    ds = _build(synth_pascal_root)
    with_parts = without = 0
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        parts = ds[idx]['gt_human_parts']
        anno = sio.loadmat(info['ann_info']['human_parts']['path'])
        objects = anno['anno'][0][0][1][0]
        persons = [o for o in objects if o[1][0][0] == 15 and len(o[3])]
        if not persons:
            without += 1
            assert (parts == 255).all()  # no person parts -> all ignored
            continue
        with_parts += 1
        expected = np.zeros(parts.shape, np.uint8)
        for obj in persons:
            for part in obj[3][0]:
                expected[part[1].astype(bool)] = \
                    HUMAN_PART_GROUPS[str(part[0][0])]
        np.testing.assert_array_equal(parts, expected)
        assert set(np.unique(parts)) <= set(range(7))
        # person pixels of semseg are covered by parts, nothing else is
        person = ds[idx]['gt_sem_seg'] == VOC_CLASSES.index('person')
        np.testing.assert_array_equal(parts > 0, person)
    assert with_parts and without


def test_saliency_threshold(pascal_copy):
    ds = _build(pascal_copy)
    path = ds.get_data_info(0)['ann_info']['saliency']['path']
    grey = np.tile(np.array([0, 127, 128, 255], np.uint8), (96, 32))
    cv2.imwrite(path, grey)
    sal = ds[0]['gt_saliency']
    np.testing.assert_array_equal(sal, (grey / 255.0 > 0.5).astype(np.uint8))
    assert sal[0, :4].tolist() == [0, 0, 1, 1]


def test_normals_only_on_nyu_shared_classes(synth_pascal_root):
    ds = _build(synth_pascal_root)
    valid_ids = set(NORMALS_VALID_CONTEXT_CLASSES.values())
    assert 284 in valid_ids and 440 in valid_ids  # person, wall
    assert 308 not in valid_ids and 431 not in valid_ids  # pottedplant, unk.
    seen_invalid = False
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        labelmap = sio.loadmat(info['ann_info']['edge']['path'])['LabelMap']
        normals = ds[idx]['gt_normals']
        valid = np.isin(labelmap, list(valid_ids))
        norm = np.linalg.norm(normals, axis=-1)
        np.testing.assert_allclose(norm[valid], 1, atol=1e-5)
        assert (norm[~valid] == 0).all()
        seen_invalid |= bool((~valid).any())
    assert seen_invalid


def test_edges_from_labelmap(synth_pascal_root):
    ds = _build(synth_pascal_root, tasks=['edge'])
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        labelmap = sio.loadmat(info['ann_info']['edge']['path'])['LabelMap']
        edge = ds[idx]['gt_edge']
        np.testing.assert_array_equal(edge, labelmap_edges(labelmap))
    # thinned boundaries of a square: a 1-pixel-wide closed contour
    square = np.zeros((20, 20), np.uint16)
    square[5:15, 5:15] = 3
    e = labelmap_edges(square)
    assert e[10].sum() == 2 and e[:, 10].sum() == 2
    assert e[0].sum() == 0 and e[10, 10] == 0


def test_task_subset_skips_other_files(pascal_copy):
    # with tasks=['saliency'] the other labels are neither needed nor read
    for sub in ('human_parts', 'normals_distill'):
        for f in os.listdir(osp.join(pascal_copy, sub)):
            os.remove(osp.join(pascal_copy, sub, f))
    ds = PascalContextMultiTaskDataset(pascal_copy, tasks=['saliency'],
                                       pipeline=LOAD)
    out = ds[0]
    assert 'gt_saliency' in out and 'gt_human_parts' not in out
    with pytest.raises(FileNotFoundError, match='human_parts'):
        PascalContextMultiTaskDataset(pascal_copy, tasks=['human_parts'])


def test_palette_png_labels_read_as_indices(pascal_copy):
    """VOC's SegmentationClass PNGs are palette images: indices, not RGB."""
    from PIL import Image
    ds = _build(pascal_copy, tasks=['semseg'])
    path = ds.get_data_info(0)['ann_info']['semseg']['path']
    label = np.array(Image.open(path))
    label[:4, :4] = 255  # VOC's void border value
    im = Image.fromarray(label, mode='L').convert('P')
    im.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    im.save(path)
    assert Image.open(path).mode == 'P'
    np.testing.assert_array_equal(ds[0]['gt_sem_seg'], label)


def test_shipped_tta_pipeline_gives_a_plain_and_a_flipped_view(
        synth_pascal_root):
    """configs/_base_/datasets/pascal_context.py's ``tta_pipeline`` on real
    files: view 2 is view 1's image mirrored, both carry the labels as
    stored (predictions are flipped back before evaluation), and part maps
    without parts are ignored as in the test pipeline."""
    import torch
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_',
                 'datasets', 'pascal_context.py'))
    tta = DATASETS.build(dict(type='PascalContextMultiTaskDataset',
                              data_root=synth_pascal_root, split='val',
                              pipeline=cfg.tta_pipeline, test_mode=True))
    plain = _build(synth_pascal_root, split='val', test_mode=True)
    for idx in range(len(tta)):
        out = tta[idx]
        assert len(out['inputs']) == len(out['data_samples']) == 2
        a, b = out['data_samples']
        assert (a.metainfo['flip'], b.metainfo['flip']) == (False, True)
        torch.testing.assert_close(out['inputs'][1],
                                   out['inputs'][0].flip(-1))
        stored = plain[idx]
        empty = not (stored['gt_human_parts'] % 255).any()
        for sample in (a, b):
            for key in ('gt_sem_seg', 'gt_saliency', 'gt_edge'):
                np.testing.assert_array_equal(
                    sample.get(key).data[0].numpy(), stored[key])
            parts = sample.gt_human_parts.data[0].numpy()
            if empty:
                assert (parts == 255).all()
            else:
                np.testing.assert_array_equal(parts,
                                              stored['gt_human_parts'])
