# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Write one PNG panel per sample: the image and every task's label.

Example::

    python tools/misc/browse_dataset.py \
        configs/_base_/datasets/synth_room_nyud.py \
        --output-dir work_dirs/browse --phase train --num 8

Labels are drawn as: semseg / human parts with the dataset palette, saliency
and edges white on black, depth with a colour map (near = red, far = blue),
normals as RGB ``(n + 1) / 2``; ignored / invalid / padded pixels are dark
grey (``INVALID_COLOUR``).
The panels show the labels *after* the phase's pipeline (augmentations
included), so misalignment introduced by a transform is visible.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Sequence

import cv2
import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

IGNORE = 255
TITLE_HEIGHT = 18
INVALID_COLOUR = (64, 64, 64)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Browse a multi-task dataset as PNG panels')
    parser.add_argument('config', help='config file (full or dataset base)')
    parser.add_argument('--output-dir', required=True,
                        help='folder the panels are written to')
    parser.add_argument('--phase', choices=['train', 'val', 'test'],
                        default='train', help='which dataloader to browse')
    parser.add_argument('--num', type=int, default=8,
                        help='number of samples (default: 8)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (key=value)')
    return parser.parse_args(argv)


def _palette_image(label: np.ndarray, palette: Sequence) -> np.ndarray:
    pal = np.zeros((256, 3), np.uint8)
    pal[:len(palette)] = np.asarray(palette, np.uint8)
    pal[IGNORE] = INVALID_COLOUR
    return pal[label]


def _depth_image(depth: np.ndarray) -> np.ndarray:
    valid = depth > 0
    out = np.empty(depth.shape + (3, ), np.uint8)
    out[:] = INVALID_COLOUR
    if valid.any():
        lo, hi = np.percentile(depth[valid], [1, 99])
        scaled = np.clip((depth - lo) / max(hi - lo, 1e-6), 0, 1)
        # COLORMAP_JET: low = blue; invert so near is red, far is blue
        jet = cv2.applyColorMap(((1 - scaled) * 255).astype(np.uint8),
                                cv2.COLORMAP_JET)[..., ::-1]
        out[valid] = jet[valid]
    return out


def _normals_image(normals: np.ndarray) -> np.ndarray:
    """[3, H, W] -> RGB; invalid (all-zero) vectors grey."""
    n = normals.transpose(1, 2, 0)
    out = np.clip((n + 1) * 127.5, 0, 255).astype(np.uint8)
    out[np.abs(n).sum(-1) == 0] = INVALID_COLOUR
    return out


def _binary_image(label: np.ndarray) -> np.ndarray:
    out = np.repeat(np.where(label == 1, 255, 0).astype(np.uint8)[..., None],
                    3, -1)
    out[label == IGNORE] = INVALID_COLOUR
    return out


def render_sample(inputs: np.ndarray, sample, metainfo: dict,
                  bgr_input: bool = True) -> np.ndarray:
    """One RGB panel: image | one tile per task label, titled.

    Args:
        inputs (np.ndarray): [3, H, W] image as packed.
        sample (SegDataSample): With the ``gt_*`` fields.
        metainfo (dict): Dataset metainfo (palettes, tasks).
        bgr_input (bool): Whether ``inputs`` is BGR (LoadImageFromFile).

    Returns:
        np.ndarray: uint8 [H + title, W * (1 + tasks), 3] RGB.
    """
    from mmfgmoe.utils import TASK_SPECS
    img = inputs.transpose(1, 2, 0).astype(np.uint8)
    if bgr_input:
        img = img[..., ::-1]
    tiles: List[tuple] = [('image', img)]
    for task in metainfo.get('tasks', TASK_SPECS):
        field = TASK_SPECS[task].gt_field
        if field not in sample:
            continue
        data = sample.get(field).data.cpu().numpy()
        if task == 'semseg':
            tile = _palette_image(data[0].astype(np.uint8),
                                  metainfo['palette'])
        elif task == 'human_parts':
            tile = _palette_image(data[0].astype(np.uint8),
                                  metainfo['human_parts_palette'])
        elif task == 'depth':
            tile = _depth_image(data[0])
        elif task == 'normals':
            tile = _normals_image(data)
        else:  # edge, saliency
            tile = _binary_image(data[0])
        tiles.append((task, tile))
    h, w = img.shape[:2]
    panel = np.full((h + TITLE_HEIGHT, w * len(tiles), 3), 255, np.uint8)
    for i, (name, tile) in enumerate(tiles):
        panel[TITLE_HEIGHT:, i * w:(i + 1) * w] = tile
        cv2.putText(panel, name, (i * w + 3, TITLE_HEIGHT - 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return panel


def main(argv=None) -> List[str]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    import mmfgmoe  # noqa: F401  (registers datasets and transforms)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmseg.registry import DATASETS

    loader = cfg.get(f'{args.phase}_dataloader')
    if loader is None:
        raise KeyError(f'{args.config} has no {args.phase}_dataloader')
    dataset = DATASETS.build(loader['dataset'])
    os.makedirs(args.output_dir, exist_ok=True)
    written = []
    for idx in range(min(args.num, len(dataset))):
        packed = dataset[idx]
        sample = packed['data_samples']
        panel = render_sample(packed['inputs'].numpy(), sample,
                              dataset.metainfo)
        name = osp.splitext(osp.basename(sample.metainfo['img_path']))[0]
        path = osp.join(args.output_dir, f'{idx:04d}_{name}.png')
        cv2.imwrite(path, panel[..., ::-1])
        written.append(path)
    print(f'wrote {len(written)} panels to {args.output_dir}')
    return written


if __name__ == '__main__':
    main()
