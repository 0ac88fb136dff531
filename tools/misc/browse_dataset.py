# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Write one PNG panel per sample: per task, the image and its label.

Example::

    python tools/misc/browse_dataset.py \
        configs/_base_/datasets/synth_room_nyud.py \
        --output-dir work_dirs/browse --phase train --num 8

The panels are drawn by the config's visualizer (``MultiTaskLocalVisualizer``
when the config has none), exactly as ``tools/test.py --show-dir`` draws its
GT column: one row ``input | GT`` per task. They show the labels *after* the
phase's pipeline (augmentations included), so misalignment introduced by a
transform is visible.
"""
import argparse
import os
import os.path as osp
import uuid
from typing import List

from mmfgmoe.utils.cli import add_cfg_options, load_config_file


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
    add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None) -> List[str]:
    args = parse_args(argv)
    cfg = load_config_file(args.config, args.cfg_options)
    from mmseg.registry import DATASETS, VISUALIZERS

    loader = cfg.get(f'{args.phase}_dataloader')
    if loader is None:
        raise KeyError(f'{args.config} has no {args.phase}_dataloader')
    dataset = DATASETS.build(loader['dataset'])
    # Panels go to files only: no backends, and a new instance (mmengine
    # returns an existing one of the same name with its old settings).
    vis_cfg = dict(cfg.get('visualizer',
                           dict(type='MultiTaskLocalVisualizer')))
    vis_cfg.update(name=f'browse_dataset_{uuid.uuid4().hex}',
                   vis_backends=None,
                   save_dir=None)
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(args.output_dir, exist_ok=True)
    written = []
    for idx in range(min(args.num, len(dataset))):
        packed = dataset[idx]
        sample = packed['data_samples']
        image = packed['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # RGB
        name = osp.splitext(osp.basename(sample.metainfo['img_path']))[0]
        path = osp.join(args.output_dir, f'{idx:04d}_{name}.png')
        visualizer.add_datasample(name, image, sample, draw_gt=True,
                                  draw_pred=False, out_file=path)
        written.append(path)
    print(f'wrote {len(written)} panels to {args.output_dir}')
    return written


if __name__ == '__main__':
    main()
