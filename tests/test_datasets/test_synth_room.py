# Copyright (c) mmfgmoe contributors. All rights reserved.
"""SynthRoom: layouts on disk, determinism and physical consistency."""
import filecmp
import os
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
import scipy.io as sio

from _tool_loader import load_tool

from mmfgmoe.datasets.synth_room import (PERSON_PARTS, SEMANTIC_MATERIALS,
                                         SynthRoomParams, generate_synth_room,
                                         render_synth_room)

H, W = 96, 128


def _ids(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


@pytest.mark.parametrize('layout,files', [
    ('nyud', ['images/{}.png', 'segmentation/{}.png', 'depth/{}.npy',
              'normals/{}.png', 'edge/{}.png']),
    ('nyud_mt', ['images/{}.jpg', 'segmentation/{}.png', 'depth/{}.npy',
                 'normals/{}.npy', 'edge/{}.npy']),
])
def test_nyud_layouts(layout, files, synth_nyud_root, synth_nyud_mt_root):
    root = synth_nyud_root if layout == 'nyud' else synth_nyud_mt_root
    assert osp.basename(root) == ('NYUDv2' if layout == 'nyud' else 'NYUD_MT')
    train = _ids(osp.join(root, 'gt_sets', 'train.txt'))
    val = _ids(osp.join(root, 'gt_sets', 'val.txt'))
    assert len(train) == 6 and len(val) == 3 and not set(train) & set(val)
    for sample_id in train + val:
        for pattern in files:
            assert osp.isfile(osp.join(root, pattern.format(sample_id)))
    sid = train[0]
    seg = cv2.imread(osp.join(root, 'segmentation', sid + '.png'),
                     cv2.IMREAD_UNCHANGED)
    assert seg.dtype == np.uint8 and seg.shape == (H, W) and seg.max() <= 40
    depth = np.load(osp.join(root, 'depth', sid + '.npy'))
    assert depth.dtype == np.float32 and depth.shape == (H, W)
    assert np.isfinite(depth).all() and depth.min() >= 0
    assert 0.3 < np.median(depth[depth > 0]) < 15  # metres, a room
    if layout == 'nyud':
        edge = cv2.imread(osp.join(root, 'edge', sid + '.png'),
                          cv2.IMREAD_UNCHANGED)
        assert set(np.unique(edge)) <= {0, 255}
        normals = cv2.imread(osp.join(root, 'normals', sid + '.png'))
        assert normals.shape == (H, W, 3)
    else:
        edge = np.load(osp.join(root, 'edge', sid + '.npy'))
        assert set(np.unique(edge)) <= {0.0, 1.0}
        normals = np.load(osp.join(root, 'normals', sid + '.npy'))
        assert normals.shape == (H, W, 3) and normals.dtype.kind == 'f'
        np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1,
                                   atol=1e-4)


def test_pascal_layout(synth_pascal_root):
    root = synth_pascal_root
    assert osp.basename(root) == 'PASCAL_MT'
    ids = _ids(osp.join(root, 'ImageSets', 'Context', 'train.txt')) + \
        _ids(osp.join(root, 'ImageSets', 'Context', 'val.txt'))
    assert len(ids) == 9
    n_voc = n_context = n_person = 0
    for sid in ids:
        assert osp.isfile(osp.join(root, 'JPEGImages', sid + '.jpg'))
        voc = osp.isfile(osp.join(root, 'semseg', 'VOC12', sid + '.png'))
        ctx = osp.isfile(osp.join(root, 'semseg', 'pascal-context',
                                  sid + '.png'))
        assert voc != ctx
        n_voc += voc
        n_context += ctx
        for pattern in ('sal_distill/{}.png', 'normals_distill/{}.png'):
            assert osp.isfile(osp.join(root, pattern.format(sid)))
        labelmap = sio.loadmat(osp.join(root, 'pascal-context', 'trainval',
                                        sid + '.mat'))['LabelMap']
        assert labelmap.shape == (H, W)
        # the PASCAL-Part struct exactly as the reference loaders index it
        anno = sio.loadmat(osp.join(root, 'human_parts', sid + '.mat'))
        objects = anno['anno'][0][0][1][0]
        assert anno['anno'][0][0]['imname'][0] == sid
        for obj in objects:
            class_ind = obj[1][0][0]
            assert obj['class'][0] in ('person', 'chair', 'diningtable',
                                       'sofa', 'pottedplant', 'tvmonitor')
            assert obj[2].shape == (H, W)
            if class_ind == 15:
                n_person += 1
                parts = obj[3][0]
                assert len(parts) > 0
                for part in parts:
                    assert str(part[0][0]) in PERSON_PARTS
                    assert part[1].shape == (H, W)
                    # a part lies inside its person's mask
                    assert not (part[1].astype(bool) & ~obj[2].astype(bool)
                                ).any()
            else:
                assert len(obj[3]) == 0
    assert n_voc and n_context and n_person


def test_deterministic(tmp_path):
    a = generate_synth_room(str(tmp_path / 'a'), 'nyud', 2, 1, 48, 64, seed=3)
    b = generate_synth_room(str(tmp_path / 'b'), 'nyud', 2, 1, 48, 64, seed=3)
    c = generate_synth_room(str(tmp_path / 'c'), 'nyud', 2, 1, 48, 64, seed=4)
    # more train images do not change the val images
    d = generate_synth_room(str(tmp_path / 'd'), 'nyud', 3, 1, 48, 64, seed=3)
    for sub in ('images', 'segmentation', 'depth', 'normals', 'edge'):
        cmp = filecmp.dircmp(osp.join(a, sub), osp.join(b, sub))
        assert not cmp.diff_files and not cmp.left_only
    img = 'images/000000.png'
    assert not filecmp.cmp(osp.join(a, img), osp.join(c, img), shallow=False)
    assert filecmp.cmp(osp.join(a, 'images/000002.png'),
                       osp.join(d, 'images/000003.png'), shallow=False)


@pytest.fixture(scope='module')
def samples():
    return [render_synth_room(np.random.default_rng(i), 120, 160,
                              with_persons=i % 2 == 0) for i in range(6)]


def _camera_rays(h, w, params=SynthRoomParams()):
    f = params.focal_ratio * w
    u = (np.arange(w) + 0.5 - w / 2) / f
    v = (np.arange(h) + 0.5 - h / 2) / f
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu, vv, np.ones_like(uu)], -1)


def test_no_numerical_warnings():
    """Degenerate rays (exact zero direction components) stay finite."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for i in range(40):
            s = render_synth_room(np.random.default_rng((5, i)), 30, 40)
            assert np.isfinite(s.depth).all() and np.isfinite(s.normals).all()


def test_normals_unit_and_face_camera(samples):
    for s in samples:
        np.testing.assert_allclose(np.linalg.norm(s.normals, axis=-1), 1,
                                   atol=1e-3)
        rays = _camera_rays(*s.depth.shape)
        assert ((rays * s.normals).sum(-1) < 1e-3).all()


def test_floor_normals_match_depth(samples):
    """Back-projected floor pixels lie on a plane whose normal is the label."""
    floor = SEMANTIC_MATERIALS['floor'][0]
    checked = 0
    for s in samples:
        mask = (s.nyu40 == floor) & (s.depth > 0)
        if mask.sum() < 100:
            continue
        checked += 1
        points = (_camera_rays(*s.depth.shape) * s.depth[..., None])[mask]
        centred = points - points.mean(0)
        plane_normal = np.linalg.svd(centred, full_matrices=False)[2][-1]
        label_normal = s.normals[mask].mean(0)
        cos = abs(plane_normal @ label_normal) / np.linalg.norm(label_normal)
        assert cos > 0.999
        # and the floor is flat: residuals of the plane fit are tiny
        assert np.abs(centred @ plane_normal).max() < 0.01
    assert checked, 'no sample shows enough floor to check'


def test_labels_consistent(samples):
    wall, floor, ceiling = (SEMANTIC_MATERIALS[m][0]
                            for m in ('wall', 'floor', 'ceiling'))
    for s in samples:
        # room structure is never salient; labelled furniture always is
        room = np.isin(s.nyu40, [wall, floor, ceiling])
        assert not s.saliency[room].any()
        assert s.saliency[s.voc > 0].all()
        # edges: every label change between 4-neighbours is marked on one
        # side; edges are one pixel wide: few 2x2 blocks are all edge
        # (only where 1-2 pixel thin structures such as chair legs meet)
        change = s.nyu40[:, :-1] != s.nyu40[:, 1:]
        assert (s.edge[:, :-1][change] | s.edge[:, 1:][change]).all()
        e = s.edge.astype(bool)
        blocks = e[:-1, :-1] & e[1:, :-1] & e[:-1, 1:] & e[1:, 1:]
        assert blocks.sum() <= 0.08 * e.sum()
        assert 0.002 < s.edge.mean() < 0.2
    persons = [s for s in samples if any(o['cls'] == 'person'
                                         for o in s.objects)]
    assert persons
    for s in persons:
        person_px = s.nyu40 == SEMANTIC_MATERIALS['person'][0]
        union = np.zeros_like(person_px)
        for o in s.objects:
            if o['cls'] == 'person':
                for _, mask in o['parts']:
                    union |= mask.astype(bool)
        np.testing.assert_array_equal(union, person_px)


def test_cli(tmp_path, capsys):
    cli = load_tool('dataset_converters/synth_room.py')
    root = cli.main([str(tmp_path), '--layout', 'pascal', '--num-train', '2',
                     '--num-val', '1', '--height', '40', '--width', '56',
                     '--seed', '1'])
    out = capsys.readouterr()
    assert 'images/s' in out.out
    assert '100%' in out.err  # the tqdm progress bar
    assert root == str(tmp_path / 'PASCAL_MT')
    assert sorted(os.listdir(tmp_path / 'PASCAL_MT' / 'JPEGImages')) == [
        '2008_000000.jpg', '2008_000001.jpg', '2008_000002.jpg']
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path), '--layout', 'coco'])
    assert cli.main([str(tmp_path / 'bench'), '--benchmark', '2',
                     '--height', '24', '--width', '32']) == ''
    assert 'images/s (one process, no writes)' in capsys.readouterr().out
    assert not (tmp_path / 'bench').exists()


@pytest.mark.parametrize('kwargs,match', [
    (dict(layout='coco'), 'layout'),
    (dict(num_train=0, num_val=0), 'num_train'),
    (dict(height=4), 'too small'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    args = dict(layout='nyud', num_train=1, num_val=1, height=32, width=32)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        generate_synth_room(str(tmp_path), **args)
