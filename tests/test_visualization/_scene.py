# Copyright (c) mmfgmoe contributors. All rights reserved.
"""A small hand-made scene with every task's label and a prediction."""
import numpy as np
import torch
from mmengine.structures import PixelData

from mmseg.structures import SegDataSample

H, W = 48, 64


def scene(img_path: str = 'scene.png') -> tuple:
    """Return ``(rgb image [H, W, 3] uint8, SegDataSample)``: a wall, a floor,
    a box (class 2) and a disc (class 3, salient, a "person" with parts)."""
    yy, xx = np.mgrid[:H, :W]
    sem = np.where(yy > 30, 1, 0)
    box = (yy > 10) & (yy < 34) & (xx > 6) & (xx < 26)
    disc = (yy - 24)**2 + (xx - 44)**2 < 100
    sem = np.where(box, 2, np.where(disc, 3, sem)).astype(np.int64)
    sem[:2, :] = 255  # an ignored strip
    parts = np.where(disc, np.where(yy < 24, 1, 2), 0).astype(np.int64)
    depth = (1.0 + yy / H * 3.0).astype(np.float32)
    depth[box] = 1.5
    depth[:, :3] = 0  # invalid
    normals = np.zeros((3, H, W), np.float32)
    normals[1] = np.where(yy > 30, -1.0, 0.0)
    normals[2] = np.where(yy > 30, 0.0, -1.0)
    normals[:, disc] = np.stack([(xx[disc] - 44) / 10.0,
                                 (yy[disc] - 24) / 10.0,
                                 -np.ones(disc.sum())])
    normals /= np.maximum(np.linalg.norm(normals, axis=0), 1e-12)
    edge = np.zeros((H, W), np.int64)
    edge[:-1] |= sem[:-1] != sem[1:]
    edge[:, :-1] |= sem[:, :-1] != sem[:, 1:]
    edge[:2, :] = 255
    sal = (box | disc).astype(np.int64)
    palette = np.array([[120, 120, 120], [80, 50, 50], [200, 160, 60],
                        [60, 120, 220]], np.uint8)
    img = palette[np.where(sem == 255, 0, sem)]
    img = (img * (0.6 + 0.4 * (xx / W))[..., None]).astype(np.uint8)

    rng = np.random.default_rng(0)
    sample = SegDataSample()
    sample.set_metainfo(dict(img_path=img_path, ori_shape=(H, W),
                             img_shape=(H, W)))

    def put(field, arr):
        arr = arr if arr.ndim == 3 else arr[None]
        sample.set_field(PixelData(data=torch.from_numpy(arr)), field)

    put('gt_sem_seg', sem)
    put('pred_sem_seg', np.where(rng.random((H, W)) < 0.9,
                                 np.where(sem == 255, 0, sem), 1))
    put('gt_human_parts', parts)
    put('pred_human_parts', np.roll(parts, 2, axis=1))
    put('gt_depth_map', depth)
    put('pred_depth_map', (depth + 0.2).clip(min=0.1))
    put('gt_normals', normals)
    put('pred_normals', np.roll(normals, 3, axis=2))
    put('gt_edge', edge)
    put('pred_edge', np.clip((edge == 1) * 0.8 + 0.1 * rng.random((H, W)),
                             0, 1).astype(np.float32))
    put('gt_saliency', sal)
    put('pred_saliency', np.clip(sal * 0.7 + 0.2 * rng.random((H, W)), 0,
                                 1).astype(np.float32))
    return img, sample
