# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Predict every task of a trained model on your own images and draw them.

Usage::

    python demo/image_demo.py IMAGE [IMAGE ...] CONFIG CHECKPOINT \
        [--out-dir DIR] [--device cpu] [--cfg-options ...]

For each image, ``<out-dir>/<image name>.png`` shows the input and one
prediction per task (the segmentation and parts over the image, depth in
false colour, normals as RGB, edge/saliency as probabilities).
"""
import argparse
import os
import os.path as osp

import mmcv
import torch

from mmfgmoe.apis import inference_model, init_model
from mmfgmoe.utils.cli import add_cfg_options
from mmseg.registry import VISUALIZERS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--out-dir', default='demo_out',
                        help='folder for the panels (default: demo_out)')
    parser.add_argument('--device', default='cuda:0' if
                        torch.cuda.is_available() else 'cpu',
                        help='where the model runs (default: cuda:0 if '
                        'available)')
    add_cfg_options(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for path in args.images:
        if not osp.isfile(path):
            raise FileNotFoundError(f'image_demo: no image file {path!r}')
    model = init_model(args.config, args.checkpoint, device=args.device,
                       cfg_options=args.cfg_options)
    visualizer = VISUALIZERS.build(
        dict(type='MultiTaskLocalVisualizer', name='image_demo'))
    visualizer.dataset_meta = model.dataset_meta
    os.makedirs(args.out_dir, exist_ok=True)
    for path in args.images:
        result = inference_model(model, path)
        # As our pipelines read it: an EXIF rotation is not applied.
        image = mmcv.imread(path, flag='color_ignore_orientation',
                            channel_order='rgb')
        name = osp.splitext(osp.basename(path))[0]
        out_file = osp.join(args.out_dir, f'{name}.png')
        visualizer.add_datasample(name, image, result, draw_gt=False,
                                  out_file=out_file)
        print(f'{path} -> {out_file}')


if __name__ == '__main__':
    main()
