# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Baselines and ablations of FGMoE on SynthRoom, on one frozen encoder.

Trains every variant with ``tools/train.py`` on the demo's SynthRoom data and
pre-trained tiny encoder (run ``make demo`` first), evaluates it with
``tools/test.py``, and writes a Markdown table (per-task metrics, Δm against
the single-task decoders, trainable parameters) and a PNG plot.

    python tools/analysis_tools/synthroom_comparison.py \\
        --encoder work_dirs/demo/pretrain/iter_500.pth --iters 500 \\
        --out work_dirs/synthroom_comparison

Every variant is the demo config plus head switches (one head with
switches, README "Model"), so differences come from the decoder alone.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, NamedTuple, Optional, Union

from mmfgmoe.evaluation.metrics import LOWER_IS_BETTER, relative_gain

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/demo/fgmoe_vit-tiny_demo.py'
TASKS = ['semseg', 'depth', 'normals', 'edge']
#: (task, metric) shown in the table and used for Δm.
HEADLINE = [('semseg', 'mIoU'), ('depth', 'rmse'), ('normals', 'mean'),
            ('edge', 'odsF')]
HEAD = 'model.decode_head.'
#: The dataloaders every run points at the demo data and its tasks.
SPLITS = ('train', 'val', 'test')


class Variant(NamedTuple):
    """A decoder of the comparison: its table label and head switches."""
    label: str
    options: List[str]


#: Keyed by the short id the command line takes (``--variants``,
#: ``--seed-variants``).
VARIANTS: Dict[str, Variant] = {
    'fgmoe': Variant('FGMoE', []),
    'no-shared': Variant('FGMoE w/o shared experts',
                         [HEAD + 'use_shared_experts=False']),
    'no-global': Variant('FGMoE w/o global expert',
                         [HEAD + 'use_global_expert=False']),
    'dense': Variant('dense multi-task (same activated width)',
                     [HEAD + 'moe=False']),
    # Same switches as configs/baselines/dense-mtl-wide_vit-b16_nyud.py: a
    # dense FFN of 6 * h * 3 = 4.5 D hidden units, FGMoE's 16 routed + 2
    # shared experts of h = D / 4 put together: FGMoE's parameters less its
    # routers (D * 16 weights per layer), at 3x FGMoE's FFN FLOPs.
    'dense-wide': Variant('dense multi-task (same trainable parameters)',
                          [HEAD + 'moe=False', HEAD + 'expert_ratio=3']),
    # Same switches as configs/baselines/coarse-moe_vit-b16_nyud.py: 4
    # experts of FGMoE's activated width (h = mlp_ratio * D * 1.5 / 4 =
    # 1.5 D = top-4 + 2 shared of D / 4), top-1, per task like FGMoE's;
    # scaled by its raw router probability (a renormalised top-1 weight is 1).
    'coarse': Variant('coarse MoE (4 experts, top-1)', [
        HEAD + 'num_experts=4', HEAD + 'top_k=1', HEAD + 'renormalize=False',
        HEAD + 'expert_ratio=1.5', HEAD + 'use_shared_experts=False'
    ]),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--encoder', required=True,
                        help='checkpoint whose backbone.* weights are loaded')
    parser.add_argument('--data-root',
                        default=osp.join(ROOT, 'data', 'synth_room_demo',
                                         'finetune', 'NYUDv2'),
                        help="the demo's SynthRoom fine-tuning set")
    parser.add_argument('--iters', type=int, default=500,
                        help='fine-tuning iterations (the demo uses 500)')
    parser.add_argument('--edge-thresholds', type=int, default=99)
    parser.add_argument('--out', default='work_dirs/synthroom_comparison')
    parser.add_argument('--python', default=sys.executable)
    parser.add_argument('--skip-single-task', action='store_true',
                        help='no single-task runs (no Δm)')
    parser.add_argument('--extra-seeds', type=int, nargs='*', default=[],
                        help='train --seed-variants again with these seeds '
                        '(randomness.seed), to see the run-to-run spread')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS),
                        choices=list(VARIANTS),
                        help='decoders to train with the config seed '
                        '(default: all)')
    parser.add_argument('--seed-variants', nargs='+',
                        default=['fgmoe', 'dense'], choices=list(VARIANTS),
                        help='decoders to train again with --extra-seeds')
    return parser.parse_args()


def _task_list(tasks: List[str]) -> str:
    """``--cfg-options`` value of a task list: ``['semseg','depth']``."""
    return '[' + ','.join(f"'{t}'" for t in tasks) + ']'


def task_options(tasks: List[str]) -> List[str]:
    """``--cfg-options`` that set every task list of the config to
    ``tasks``: the tools refuse a config whose lists disagree
    (``check_config_tasks``), so a single-task run sets them all."""
    task_list = _task_list(tasks)
    return [f'tasks={task_list}', f'{HEAD}tasks={task_list}'] + [
        f'{split}_dataloader.dataset.tasks={task_list}'
        for split in SPLITS
    ]


def run_options(args: argparse.Namespace, extra: List[str],
                tasks: List[str]) -> List[str]:
    """``--cfg-options`` of one training and test run."""
    opts = [
        f'model.backbone.init_cfg.checkpoint={args.encoder}',
        f'train_cfg.max_iters={args.iters}',
        f'train_cfg.val_interval={args.iters + 1}',
        f'param_scheduler.0.end={args.iters}',
        f'default_hooks.checkpoint.interval={args.iters}',
        f'test_evaluator.edge_thresholds={args.edge_thresholds}',
    ] + [f'{split}_dataloader.dataset.data_root={args.data_root}'
         for split in SPLITS]
    return opts + task_options(tasks) + extra


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _tree_digest(root: str) -> str:
    """Digest of every file's path, size and modification time under
    ``root``: regenerating the data at the same path changes it."""
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            stat = os.stat(osp.join(folder, name))
            digest.update(f'{osp.relpath(osp.join(folder, name), root)} '
                          f'{stat.st_size} {stat.st_mtime_ns}\n'.encode())
    return digest.hexdigest()


def run_key(args: argparse.Namespace, opts: List[str]) -> dict:
    """What a run is trained from: the options, and the content of the
    encoder, the data and the config behind their paths (re-training the
    encoder or regenerating the data at the same path is a new run)."""
    from mmengine.config import Config
    return dict(options=opts,
                encoder=_file_digest(args.encoder),
                data=_tree_digest(args.data_root),
                config=hashlib.sha256(Config.fromfile(osp.join(
                    ROOT, CONFIG)).pretty_text.encode()).hexdigest())


def cached_metrics(work_dir: str, key: dict) -> Optional[Dict[str, float]]:
    """The metrics of a finished run of ``work_dir`` trained from exactly
    ``key`` (:func:`run_key`, its ``run.json``), else None: a run with
    another encoder, data, config or schedule is trained again, never
    reused."""
    try:
        with open(osp.join(work_dir, 'run.json')) as f:
            if json.load(f) != key:
                return None
        with open(osp.join(work_dir, 'metrics.json')) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def run_variant(args: argparse.Namespace, name: str, extra: List[str],
                tasks: List[str]) -> Dict[str, Union[float, str]]:
    """Train and test one decoder (or reuse a finished run with the same
    :func:`run_key`) and measure its size.

    Args:
        args (argparse.Namespace): The script's arguments.
        name (str): The table row, also the work dir under ``args.out``.
        extra (list[str]): The variant's own ``--cfg-options``.
        tasks (list[str]): The tasks the decoder predicts.

    Returns:
        dict: The test metrics (``<task>.<metric>: float``) plus
        ``trainable`` and ``decoder_flops`` (get_flops.py's strings).
    """
    work_dir = osp.join(args.out, name.replace(' ', '_').replace('/', '-'))
    opts = run_options(args, extra, tasks)
    key = run_key(args, opts)
    metrics = cached_metrics(work_dir, key)
    if metrics is None:
        os.makedirs(work_dir, exist_ok=True)
        # An earlier run's metrics must not outlive a failure of this one.
        if osp.exists(osp.join(work_dir, 'metrics.json')):
            os.remove(osp.join(work_dir, 'metrics.json'))
        with open(osp.join(work_dir, 'run.json'), 'w') as f:
            json.dump(key, f, indent=1)
        print(f'== {name}: training {args.iters} iterations', flush=True)
        subprocess.run([args.python, 'tools/train.py', CONFIG, '--work-dir',
                        work_dir, '--cfg-options', *opts], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([args.python, 'tools/test.py', CONFIG,
                        osp.join(work_dir, f'iter_{args.iters}.pth'),
                        '--work-dir', work_dir, '--cfg-options', *opts],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        with open(osp.join(work_dir, 'metrics.json')) as f:
            metrics = json.load(f)
    params = subprocess.run(
        [args.python, 'tools/analysis_tools/get_flops.py', CONFIG,
         '--shape', '128', '176', '--cfg-options', *task_options(tasks),
         *extra],
        cwd=ROOT, capture_output=True, text=True)
    if params.returncode != 0:
        raise RuntimeError(f'get_flops.py failed for {name}:\n'
                           f'{params.stderr[-2000:]}')
    metrics.update(_complexity(params.stdout))
    return metrics


def _complexity(text: str) -> Dict[str, str]:
    """Trainable parameters and decoder FLOPs from get_flops.py's report
    (``Parameters: trainable 3.92M (...)`` and ``FLOPs: ... decode_head
    1.23G)``)."""
    found = {}
    for line in text.splitlines():
        if line.startswith('Parameters: trainable'):
            found['trainable'] = line.split()[2]
        elif line.startswith('FLOPs:'):
            found['decoder_flops'] = line.rsplit('decode_head', 1)[-1].strip(
                ' )')
    if len(found) != 2:
        raise RuntimeError(f'unexpected get_flops.py output:\n{text}')
    return found


def gains(metrics: Dict[str, float],
          reference: Dict[str, float]) -> List[float]:
    """Relative gain (%) of each :data:`HEADLINE` metric over
    ``reference``, positive when better."""
    return [
        relative_gain(metrics[f'{task}.{name}'], reference[f'{task}.{name}'],
                      name) for task, name in HEADLINE
    ]


def delta_m(metrics: Dict[str, float], single: Dict[str, float]) -> float:
    """Δm over the single-task decoders, one metric per task."""
    terms = gains(metrics, single)
    return sum(terms) / len(terms)


def plot(results: Dict[str, Dict[str, float]], single: Dict[str, float],
         path: str) -> None:
    """Per-task relative gain (%) over the single-task decoders (over the
    first variant without them) and Δm, one group of bars per decoder."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    reference = single or next(iter(results.values()))
    names = list(results)
    labels = [f'{t} {n}' for t, n in HEADLINE] + ['Δm']
    bars = list(zip(*[  # [metric][decoder]
        gains(results[name], reference) + [delta_m(results[name], reference)]
        for name in names
    ]))
    fig, ax = plt.subplots(figsize=(1.5 * len(names) + 2, 4))
    width = 0.8 / len(labels)
    for i, (label, values) in enumerate(zip(labels, bars)):
        ax.bar([x + i * width for x in range(len(names))], values, width,
               label=label, color='black' if label == 'Δm' else None)
    ax.axhline(0, color='gray', lw=0.8)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))])
    ax.set_xticklabels(names, rotation=20, ha='right', fontsize=8)
    ax.set_ylabel('gain over ' + ('single-task decoders' if single else
                                  names[0]) + ' (%)')
    ax.legend(fontsize=8, ncol=len(labels))
    ax.set_title('SynthRoom, frozen tiny ViT: each decoder vs the '
                 'single-task decoders (higher is better)', fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def results_table(results: Dict[str, Dict[str, Union[float, str]]],
                  single: Dict[str, float],
                  single_cost: Dict[str, List[str]]) -> str:
    """The Markdown table: the single-task decoders' row (when ``single``
    is not empty) and one row per decoder of ``results``.

    Args:
        results (dict): Row label -> :func:`run_variant`'s dict.
        single (dict): ``task.metric`` -> the single-task decoders' value;
            empty without them (no Δm).
        single_cost (dict): ``trainable`` and ``decoder_flops`` -> one
            string per single-task decoder.

    Returns:
        str: The table, without a final newline.
    """
    header = ['decoder'] + [
        f'{t} {n} {"↓" if n in LOWER_IS_BETTER else "↑"}'
        for t, n in HEADLINE
    ] + ['Δm %', 'trainable', 'decoder FLOPs']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]

    def row(label: str, metrics: Dict[str, Union[float, str]], dm: str,
            trainable: str, flops: str) -> str:
        values = [f'{metrics[f"{t}.{n}"]:.3f}' for t, n in HEADLINE]
        return '| ' + ' | '.join([label, *values, dm, trainable, flops]) + \
            ' |'

    if single:
        lines.append(
            row('single-task decoders', single, '0',
                ' + '.join(single_cost['trainable']),
                ' + '.join(single_cost['decoder_flops'])))
    for name, m in results.items():
        dm = f'{delta_m(m, single):+.2f}' if single else '–'
        lines.append(row(name, m, dm, m['trainable'], m['decoder_flops']))
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    # The runs execute in the repository root, the caller may not.
    for path in ('encoder', 'data_root', 'out'):
        setattr(args, path, osp.abspath(getattr(args, path)))
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for key in args.variants:
        label, options = VARIANTS[key]
        results[label] = run_variant(args, label, options, TASKS)
    for seed in args.extra_seeds:
        for key in args.seed_variants:
            label, options = VARIANTS[key]
            results[f'{label}, seed {seed}'] = run_variant(
                args, f'{label} seed {seed}',
                options + [f'randomness.seed={seed}'], TASKS)
    single: Dict[str, float] = {}
    single_cost: Dict[str, List[str]] = dict(trainable=[], decoder_flops=[])
    if not args.skip_single_task:
        for task, name in HEADLINE:
            m = run_variant(args, f'single-task {task}', [], [task])
            single[f'{task}.{name}'] = m[f'{task}.{name}']
            for key in single_cost:
                single_cost[key].append(m[key])

    table = results_table(results, single, single_cost)
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(table + '\n')
    print(table)

    plot(results, single, osp.join(args.out, 'comparison.png'))
    print(f'wrote {args.out}/results.md and comparison.png')


if __name__ == '__main__':
    main()
