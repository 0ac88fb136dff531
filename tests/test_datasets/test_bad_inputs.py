# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Bad input matrix: every malformed input fails with an error that names the
file (or the config field) and the problem; nothing is silently skipped."""
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import scipy.io as sio

from mmfgmoe.datasets import (NYUDv2MultiTaskDataset,
                              PascalContextMultiTaskDataset)

LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadMultiTaskAnnotations')]


def _first_id(root, split_file):
    with open(osp.join(root, split_file)) as f:
        return f.readline().strip()


# --- corruptions: (root, id) -> (file the error must name, message regex) --
def _missing_split(root, sid):
    path = osp.join(root, 'gt_sets', 'train.txt')
    os.remove(path)
    return path, 'split file not found'


def _empty_split(root, sid):
    path = osp.join(root, 'gt_sets', 'train.txt')
    open(path, 'w').write('\n\n')
    return path, 'lists no image id'


def _split_names_missing_id(root, sid):
    path = osp.join(root, 'gt_sets', 'train.txt')
    with open(path, 'a') as f:
        f.write('does_not_exist\n')
    return osp.join(root, 'images', 'does_not_exist.png'), 'not found'


def _missing_depth(root, sid):
    path = osp.join(root, 'depth', sid + '.npy')
    os.remove(path)
    return path, 'depth file not found'


def _unreadable_image(root, sid):
    path = osp.join(root, 'images', sid + '.png')
    open(path, 'wb').write(b'not a png at all')
    return path, 'failed to load image'


def _corrupt_segmentation(root, sid):
    path = osp.join(root, 'segmentation', sid + '.png')
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n garbage')
    return path, 'cannot be decoded'


def _semseg_out_of_range(root, sid):
    path = osp.join(root, 'segmentation', sid + '.png')
    seg = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    seg[0, 0] = 41
    cv2.imwrite(path, seg)
    return path, r'out of range.*0\.\.40'


def _semseg_16bit(root, sid):
    path = osp.join(root, 'segmentation', sid + '.png')
    seg = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.uint16)
    cv2.imwrite(path, seg)
    return path, 'expected an 8-bit image'


def _depth_nan(root, sid):
    path = osp.join(root, 'depth', sid + '.npy')
    depth = np.load(path)
    depth[3, 3] = np.nan
    np.save(path, depth)
    return path, 'NaN'


def _depth_wrong_shape(root, sid):
    path = osp.join(root, 'depth', sid + '.npy')
    np.save(path, np.stack([np.load(path)] * 2, -1))
    return path, r'expected a 2-D depth map'


def _depth_wrong_dtype(root, sid):
    path = osp.join(root, 'depth', sid + '.npy')
    np.save(path, (np.load(path) * 1000).astype(np.uint16))
    return path, 'expected float depth'


def _depth_size_mismatch(root, sid):
    path = osp.join(root, 'depth', sid + '.npy')
    np.save(path, np.load(path)[:-2])
    return path, r'shape \(94, 128\) differs from the image'


def _normals_grey(root, sid):
    path = osp.join(root, 'normals', sid + '.png')
    cv2.imwrite(path, cv2.imread(path, cv2.IMREAD_GRAYSCALE))
    return path, 'expected a 3-channel RGB image'


def _edge_zero_one(root, sid):
    # 0/1-encoded edges would all fall under the 0/255 reader's threshold.
    path = osp.join(root, 'edge', sid + '.png')
    edge = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert edge.max() == 255
    cv2.imwrite(path, (edge > 127).astype(np.uint8))
    return path, r'edge PNG values must be 0/255.*up to 1'


def _depth_not_npy(root, sid):
    path = osp.join(root, 'depth', sid + '.npy')
    open(path, 'wb').write(b'hello')
    return path, r'cannot be read as a \.npy'


NYUD_CASES = [_missing_split, _empty_split, _split_names_missing_id,
              _missing_depth, _unreadable_image, _corrupt_segmentation,
              _semseg_out_of_range, _semseg_16bit, _depth_nan,
              _depth_wrong_shape, _depth_wrong_dtype, _depth_size_mismatch,
              _normals_grey, _edge_zero_one, _depth_not_npy]


@pytest.mark.parametrize('corrupt', NYUD_CASES, ids=lambda f: f.__name__[1:])
def test_nyud_bad_inputs(corrupt, nyud_copy):
    sid = _first_id(nyud_copy, 'gt_sets/train.txt')
    path, problem = corrupt(nyud_copy, sid)
    with pytest.raises(Exception) as info:
        ds = NYUDv2MultiTaskDataset(nyud_copy, split='train', pipeline=LOAD)
        ds[0]
    msg = str(info.value)
    assert path in msg, msg
    assert re.search(problem, msg), msg


# --- NYUD_MT specifics ------------------------------------------------------
def _mt_normals_wrong_shape(root, sid):
    path = osp.join(root, 'normals', sid + '.npy')
    np.save(path, np.load(path)[..., :2])
    return path, r'expected normals of shape \[H, W, 3\]'


def _mt_normals_as_png_values(root, sid):
    path = osp.join(root, 'normals', sid + '.npy')
    np.save(path, (np.load(path) + 1) * 127.5)  # 0..255 floats
    return path, r'normal components must lie in \[-1, 1\]'


def _mt_edge_out_of_range(root, sid):
    path = osp.join(root, 'edge', sid + '.npy')
    np.save(path, np.load(path) * 3)
    return path, r'edge values must lie in \[0, 1\]'


@pytest.mark.parametrize('corrupt', [_mt_normals_wrong_shape,
                                     _mt_normals_as_png_values,
                                     _mt_edge_out_of_range],
                         ids=lambda f: f.__name__[1:])
def test_nyud_mt_bad_inputs(corrupt, nyud_mt_copy):
    sid = _first_id(nyud_mt_copy, 'gt_sets/train.txt')
    path, problem = corrupt(nyud_mt_copy, sid)
    ds = NYUDv2MultiTaskDataset(nyud_mt_copy, split='train', pipeline=LOAD)
    with pytest.raises(ValueError) as info:
        ds[0]
    assert path in str(info.value) and re.search(problem, str(info.value))


# --- PASCAL specifics -------------------------------------------------------
def _p_no_semseg(root, sid):
    for sub in ('VOC12', 'pascal-context'):
        p = osp.join(root, 'semseg', sub, sid + '.png')
        if osp.exists(p):
            os.remove(p)
    return osp.join(root, 'semseg', 'pascal-context', sid + '.png'), \
        'neither .*VOC12.* nor'


def _p_semseg_out_of_range(root, sid):
    for sub in ('VOC12', 'pascal-context'):
        path = osp.join(root, 'semseg', sub, sid + '.png')
        if osp.exists(path):
            seg = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            seg[0, 0] = 30
            cv2.imwrite(path, seg)
            return path, r'\[30\] out of range'


def _p_labelmap_key(root, sid):
    path = osp.join(root, 'pascal-context', 'trainval', sid + '.mat')
    sio.savemat(path, {'Labels': np.zeros((96, 128), np.uint16)})
    return path, "no key 'LabelMap'"


def _p_labelmap_fractional(root, sid):
    path = osp.join(root, 'pascal-context', 'trainval', sid + '.mat')
    sio.savemat(path, {'LabelMap': np.full((96, 128), 2.5)})
    return path, 'non-integer values'


def _p_labelmap_3d(root, sid):
    path = osp.join(root, 'pascal-context', 'trainval', sid + '.mat')
    sio.savemat(path, {'LabelMap': np.zeros((96, 128, 2), np.uint16)})
    return path, r'2-D array of class ids.*shape \(96, 128, 2\), dtype uint16'


def _p_corrupt_mat(root, sid):
    path = osp.join(root, 'human_parts', sid + '.mat')
    open(path, 'wb').write(b'MATLAB 5.0 MAT-file, truncated')
    return path, r'cannot be read as a MATLAB \.mat'


def _save_person_parts(path, sid, name_field, part_name):
    """A PASCAL-Part file with one person whose one part has ``part_name``
    stored under ``name_field`` (``'part_name'`` in the real files)."""
    mask = np.ones((96, 128), np.uint8)
    parts = np.empty((1, 1), dtype=[(name_field, 'O'), ('mask', 'O')])
    parts[0, 0] = (part_name, mask)
    objects = np.empty((1, 1), dtype=[('class', 'O'), ('class_ind', 'O'),
                                      ('mask', 'O'), ('parts', 'O')])
    objects[0, 0] = ('person', np.array([[15]], np.uint8), mask, parts)
    anno = np.empty((1, 1), dtype=[('imname', 'O'), ('objects', 'O')])
    anno[0, 0] = (sid, objects)
    sio.savemat(path, {'anno': anno})


def _p_unknown_part(root, sid):
    path = osp.join(root, 'human_parts', sid + '.mat')
    _save_person_parts(path, sid, 'part_name', 'tail')
    return path, "unknown part name 'tail'"


def _p_part_without_name(root, sid):
    path = osp.join(root, 'human_parts', sid + '.mat')
    _save_person_parts(path, sid, 'name', 'head')
    return path, 'object 0 has a part without part_name/mask'


def _p_saliency_rgb(root, sid):
    path = osp.join(root, 'sal_distill', sid + '.png')
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(path, cv2.merge([grey] * 3))
    return path, 'expected a single-channel image'


def _p_unknown_task(root, sid):
    return 'PascalContextMultiTaskDataset.tasks', "unknown task.*'depth'"


@pytest.mark.parametrize('corrupt', [_p_no_semseg, _p_semseg_out_of_range,
                                     _p_labelmap_key, _p_labelmap_fractional,
                                     _p_labelmap_3d, _p_corrupt_mat,
                                     _p_unknown_part, _p_part_without_name,
                                     _p_saliency_rgb,
                                     _p_unknown_task],
                         ids=lambda f: f.__name__[1:])
def test_pascal_bad_inputs(corrupt, pascal_copy):
    sid = _first_id(pascal_copy, 'ImageSets/Context/train.txt')
    path, problem = corrupt(pascal_copy, sid)
    tasks = ['semseg', 'depth'] if corrupt is _p_unknown_task else None
    with pytest.raises(Exception) as info:
        ds = PascalContextMultiTaskDataset(pascal_copy, split='train',
                                           tasks=tasks, pipeline=LOAD)
        ds[0]
    msg = str(info.value)
    assert path in msg, msg
    assert re.search(problem, msg), msg


@pytest.mark.parametrize('pipeline', [
    [dict(type='MultiTaskPad', size_divisor=32)],
    [dict(type='TestTimeAug', transforms=[[
        dict(type='mmseg.MultiTaskPad', size=(256, 256))]])],
], ids=['plain', 'in_tta'])
def test_a_test_pipeline_must_not_pad(pipeline, synth_nyud_root):
    """The model strips only its pre-processor's padding from predictions."""
    with pytest.raises(ValueError, match='test_mode=True.*MultiTaskPad'):
        NYUDv2MultiTaskDataset(synth_nyud_root, split='val', test_mode=True,
                               pipeline=LOAD + pipeline)
    # Training pipelines may pad.
    NYUDv2MultiTaskDataset(synth_nyud_root, split='train',
                           pipeline=LOAD + pipeline[:1])


def test_normals_labelmap_needs_valid_labels(pascal_copy):
    from mmfgmoe.datasets.transforms.loading import read_normals_png
    sid = _first_id(pascal_copy, 'ImageSets/Context/train.txt')
    normals = osp.join(pascal_copy, 'normals_distill', sid + '.png')
    labelmap = osp.join(pascal_copy, 'pascal-context', 'trainval',
                        sid + '.mat')
    with pytest.raises(Exception, match=f'{re.escape(labelmap)}.*needs '
                       'valid_labels'):
        read_normals_png(normals, labelmap_path=labelmap)
