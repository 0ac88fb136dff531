# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Print (and optionally dump) the fully resolved config:

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...] [--dump FILE]
"""
import argparse

from mmengine.config import Config

import mmfgmoe  # noqa: F401
from mmfgmoe.utils.cli import add_cfg_options


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--dump', help='also write the resolved config here')
    add_cfg_options(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.dump:
        cfg.dump(args.dump)


if __name__ == '__main__':
    main()
