# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Plot loss and metric curves from mmengine's scalar logs.

    python tools/analysis_tools/analyze_logs.py LOG [LOG ...]
        [--keys loss semseg.mIoU depth.rmse ...] [--legend NAME ...]
        [--title TITLE] [--out curves.png]

``LOG`` is a scalar log written by mmengine's ``LocalVisBackend``
(``<work_dir>/<timestamp>/vis_data/scalars.json`` or the
``<timestamp>.json`` next to it: one JSON dict per line, training lines with
``loss*``/``lr`` and validation lines with our ``<task>.<metric>`` keys, each
with its ``step`` = iteration), or a work/run directory, searched for its
newest ``vis_data/scalars.json``. Without ``--keys`` every ``loss*`` key and
every metric key found is drawn, one subplot per key, one line per log.
The figure is written to ``--out`` (PNG; default ``curves.png``) and the last
and best value of each curve are printed.
"""
import argparse
import glob
import json
import math
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Tuple

import matplotlib

matplotlib.use('Agg')  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

from mmfgmoe.evaluation.metrics import LOWER_IS_BETTER  # noqa: E402

#: Keys of mmengine's scalar logs that index the records, not curves.
_INDEX_KEYS = ('step', 'iter', 'epoch')
#: Curves left out of the default plot (still plotted when asked for with
#: ``--keys``).
_BOOKKEEPING = ('time', 'data_time', 'memory', 'lr', 'base_lr')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot loss / metric curves of mmengine scalar logs')
    parser.add_argument(
        'logs', nargs='+',
        help='scalars.json files (or run / work directories holding them)')
    parser.add_argument(
        '--keys', nargs='+',
        help='keys to plot (default: every loss* and metric key; lr, time, '
        'data_time and memory on request)')
    parser.add_argument(
        '--legend', nargs='+', help='one legend entry per log')
    parser.add_argument('--title', help='figure title')
    parser.add_argument(
        '--out', default='curves.png',
        help='output PNG (default: %(default)s)')
    parser.add_argument(
        '--dpi', type=int, default=100, help='PNG resolution')
    args = parser.parse_args()
    if args.legend is not None and len(args.legend) != len(args.logs):
        parser.error(f'--legend needs {len(args.logs)} names (one per log); '
                     f'got {len(args.legend)}')
    return args


def resolve_log(path: str) -> str:
    """A scalars file, or the newest ``vis_data/scalars.json`` under a
    directory."""
    if osp.isfile(path):
        return path
    if osp.isdir(path):
        found = glob.glob(osp.join(path, '**', 'vis_data', 'scalars.json'),
                          recursive=True)
        if found:
            return max(found, key=osp.getmtime)
        raise FileNotFoundError(
            f'no vis_data/scalars.json under {path!r}: was the run logged '
            "with LocalVisBackend (vis_backends=[dict(type='LocalVisBackend')"
            '])?')
    raise FileNotFoundError(f'log {path!r} does not exist')


def load_scalars(path: str) -> Dict[str, List[Tuple[int, float]]]:
    """``{key: [(step, value), ...]}`` from one mmengine scalar log."""
    curves: Dict[str, List[Tuple[int, float]]] = defaultdict(list)
    with open(path, encoding='utf-8') as f:
        for num, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}:{num} is not a JSON line: {err}')
            step = record.get('step', record.get('iter'))
            if step is None:
                continue
            for key, value in record.items():
                if key in _INDEX_KEYS or not isinstance(value, (int, float)):
                    continue
                curves[key].append((int(step), float(value)))
    return dict(curves)


def default_keys(all_curves: List[Dict[str, list]]) -> List[str]:
    """Every loss key (``loss`` first) then every metric key, in order of
    first appearance (learning rate, timing and memory only on request)."""
    keys: List[str] = []
    for curves in all_curves:
        for key in curves:
            if key not in keys and key not in _BOOKKEEPING:
                keys.append(key)
    losses = sorted((k for k in keys if k.startswith('loss')),
                    key=lambda k: (k != 'loss', k))
    others = [k for k in keys if not k.startswith('loss')]
    return losses + others


def lower_is_better(key: str) -> bool:
    """Whether the curve ``key`` (a loss or ``<task>.<metric>``) improves
    downwards; the metric's Δm directions decide."""
    name = key.rsplit('.', 1)[-1]
    return name.startswith('loss') or name in LOWER_IS_BETTER


def plot(all_curves: List[Dict[str, list]], names: List[str],
         keys: List[str], out: str, title: str = None,
         dpi: int = 100) -> None:
    """Draw one subplot per key and save the figure to ``out``."""
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.5 * rows),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for curves, name in zip(all_curves, names):
            points = curves.get(key)
            if not points:
                continue
            steps, values = zip(*points)
            marker = 'o' if len(points) < 30 else None
            ax.plot(steps, values, label=name, marker=marker, linewidth=1)
        ax.set_title(key)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize='small')
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    paths = [resolve_log(p) for p in args.logs]
    all_curves = [load_scalars(p) for p in paths]
    names = args.legend or [
        osp.basename(osp.dirname(osp.dirname(osp.abspath(p)))) or p
        for p in paths
    ]
    keys = args.keys or default_keys(all_curves)
    missing = [k for k in keys if not any(k in c for c in all_curves)]
    if missing:
        raise KeyError(f'key(s) {missing} appear in none of {paths}; '
                       f'available: {default_keys(all_curves)}')
    if not keys:
        raise ValueError(f'no loss or metric scalars in {paths}')
    for curves, name in zip(all_curves, names):
        for key in keys:
            points = curves.get(key)
            if not points:
                continue
            pick = min if lower_is_better(key) else max
            best = pick(points, key=lambda p: p[1])
            print(f'{name}  {key}: last {points[-1][1]:.4f} '
                  f'(iter {points[-1][0]}), best {best[1]:.4f} '
                  f'(iter {best[0]})')
    plot(all_curves, names, keys, args.out, args.title, args.dpi)
    print(f'curves written to {args.out}')


if __name__ == '__main__':
    main()
