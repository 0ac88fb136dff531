# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Generate a SynthRoom data set in a real on-disk layout.

Example::

    python tools/dataset_converters/synth_room.py data/synth_room \
        --layout nyud --num-train 1000 --num-val 200 \
        --height 240 --width 320 --seed 0
"""
import argparse
import os.path as osp
import sys
import time

# make the repo importable when the package is not installed
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmfgmoe.datasets.synth_room import (LAYOUTS,  # noqa: E402
                                         benchmark_synth_room,
                                         generate_synth_room)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Render SynthRoom (procedural indoor scenes with '
        'consistent multi-task labels) into the NYUDv2/, NYUD_MT/ or '
        'PASCAL_MT/ layout under OUT_DIR.')
    parser.add_argument('out_dir', metavar='OUT_DIR', help='parent folder')
    parser.add_argument('--layout', choices=LAYOUTS, default='nyud',
                        help='on-disk layout (default: nyud)')
    parser.add_argument('--num-train', type=int, default=200,
                        help='train images (default: 200)')
    parser.add_argument('--num-val', type=int, default=50,
                        help='val images (default: 50)')
    parser.add_argument('--height', type=int, default=240,
                        help='image height (default: 240)')
    parser.add_argument('--width', type=int, default=320,
                        help='image width (default: 320)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (default: 0)')
    parser.add_argument('--no-progress', action='store_true',
                        help='hide the progress bar')
    parser.add_argument('--benchmark', type=int, default=0, metavar='N',
                        help='only measure the rendering speed on N images '
                        '(no files written) and exit')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.benchmark > 0:
        ips = benchmark_synth_room(args.benchmark, args.height, args.width,
                                   args.seed,
                                   with_objects=args.layout == 'pascal')
        print(f'rendered {args.benchmark} images of {args.height}x'
              f'{args.width} at {ips:.1f} images/s (one process, no writes)')
        return ''
    start = time.perf_counter()
    root = generate_synth_room(
        args.out_dir,
        layout=args.layout,
        num_train=args.num_train,
        num_val=args.num_val,
        height=args.height,
        width=args.width,
        seed=args.seed,
        progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    total = args.num_train + args.num_val
    print(f'wrote {total} images to {root} in {elapsed:.1f} s '
          f'({total / max(elapsed, 1e-9):.1f} images/s)')
    return root


if __name__ == '__main__':
    main()
