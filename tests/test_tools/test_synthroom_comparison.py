# Copyright (c) mmfgmoe contributors. All rights reserved.
"""The pieces of synthroom_comparison.py that are not training runs."""
import argparse
import json
import os.path as osp
import subprocess

import pytest
from _tool_loader import load_tool


def _tool():
    return load_tool('analysis_tools/synthroom_comparison.py')


def test_delta_m_signs_and_average():
    tool = _tool()
    single = {'semseg.mIoU': 40., 'depth.rmse': 1., 'normals.mean': 20.,
              'edge.odsF': 50.}
    assert tool.delta_m(single, single) == 0
    better = {'semseg.mIoU': 44., 'depth.rmse': 0.9, 'normals.mean': 20.,
              'edge.odsF': 50.}
    # +10% mIoU, -10% RMSE (lower is better): (10 + 10 + 0 + 0) / 4.
    assert tool.delta_m(better, single) == pytest.approx(5.)
    # normals mean angle (lower is better) alone: 25 vs 20 degrees is
    # -25 %, 15 vs 20 is +25 %; Δm is the average over the 4 tasks.
    worse_normals = dict(single, **{'normals.mean': 25.})
    assert tool.delta_m(worse_normals, single) == pytest.approx(-25. / 4)
    better_normals = dict(single, **{'normals.mean': 15.})
    assert tool.delta_m(better_normals, single) == pytest.approx(25. / 4)
    # depth rmse alone: 1.2 vs 1.0 is -20 %
    worse_depth = dict(single, **{'depth.rmse': 1.2})
    assert tool.delta_m(worse_depth, single) == pytest.approx(-20. / 4)
    # mixed: mIoU -10 %, rmse 1.2 (-20 %), mean 18 (+10 %), odsF 55 (+10 %)
    mixed = {'semseg.mIoU': 36., 'depth.rmse': 1.2, 'normals.mean': 18.,
             'edge.odsF': 55.}
    assert tool.delta_m(mixed, single) == pytest.approx(
        (-10. - 20. + 10. + 10.) / 4)


def test_complexity_parsed_from_get_flops_report():
    tool = _tool()
    report = ('=' * 60 + '\nConfig: x.py\nInput shape: (128, 176)\n'
              'Parameters: trainable 3.92M (3,920,190) / total 5.86M '
              '(5,864,958) = 66.84%\n  backbone:    0 trainable / 1\n'
              'FLOPs: 1.31G (backbone 0.21G, decode_head 1.10G)\n')
    assert tool._complexity(report) == dict(trainable='3.92M',
                                            decoder_flops='1.10G')
    with pytest.raises(RuntimeError, match='unexpected get_flops.py'):
        tool._complexity('nothing here')


def test_plot_writes_a_figure(tmp_path):
    tool = _tool()
    single = {'semseg.mIoU': 40., 'depth.rmse': 1., 'normals.mean': 20.,
              'edge.odsF': 50.}
    results = {'FGMoE': dict(single, **{'semseg.mIoU': 42.}),
               'dense': dict(single, **{'depth.rmse': 1.1})}
    for reference in (single, {}):
        path = str(tmp_path / 'plot.png')
        tool.plot(results, reference, path)
        assert osp.getsize(path) > 1000


def test_finished_runs_are_reused_only_with_the_same_options(tmp_path):
    tool = _tool()
    key = dict(options=['train_cfg.max_iters=500'], encoder='e', data='d',
               config='c')
    assert tool.cached_metrics(str(tmp_path), key) is None  # nothing yet
    (tmp_path / 'metrics.json').write_text(json.dumps({'semseg.mIoU': 1.}))
    assert tool.cached_metrics(str(tmp_path), key) is None  # no stamp
    (tmp_path / 'run.json').write_text(json.dumps(key))
    assert tool.cached_metrics(str(tmp_path), key) == {'semseg.mIoU': 1.}
    for field, other in (('options', ['train_cfg.max_iters=100']),
                         ('encoder', 'e2'), ('data', 'd2'), ('config', 'c2')):
        assert tool.cached_metrics(str(tmp_path),
                                   dict(key, **{field: other})) is None


def test_run_key_sees_content_behind_the_same_paths(tmp_path):
    """Re-training the encoder or regenerating the data at the same path is
    a new run."""
    tool = _tool()
    encoder, data = tmp_path / 'iter_500.pth', tmp_path / 'NYUDv2'
    encoder.write_bytes(b'weights 1')
    (data / 'images').mkdir(parents=True)
    (data / 'images' / '0.png').write_bytes(b'image 1')
    args = argparse.Namespace(encoder=str(encoder), data_root=str(data))
    key = tool.run_key(args, ['x=1'])
    assert tool.run_key(args, ['x=1']) == key
    encoder.write_bytes(b'weights 2')
    assert tool.run_key(args, ['x=1'])['encoder'] != key['encoder']
    (data / 'images' / '0.png').write_bytes(b'image 22')
    assert tool.run_key(args, ['x=1'])['data'] != key['data']


def test_a_failed_rerun_does_not_report_the_previous_metrics(tmp_path,
                                                             monkeypatch):
    """The previous run's metrics.json is gone before the new run trains."""
    tool = _tool()
    encoder, data = tmp_path / 'iter_500.pth', tmp_path / 'NYUDv2'
    encoder.write_bytes(b'weights')
    data.mkdir()
    args = argparse.Namespace(encoder=str(encoder), data_root=str(data),
                              out=str(tmp_path / 'out'), iters=2,
                              edge_thresholds=3, python='false')
    work_dir = tmp_path / 'out' / 'FGMoE'
    work_dir.mkdir(parents=True)
    (work_dir / 'metrics.json').write_text(json.dumps({'semseg.mIoU': 1.}))
    with pytest.raises(subprocess.CalledProcessError):  # 'false' trains
        tool.run_variant(args, 'FGMoE', [], ['semseg'])
    assert not (work_dir / 'metrics.json').exists()
    # The retry after the failure trains again instead of reusing anything.
    key = json.loads((work_dir / 'run.json').read_text())
    assert tool.cached_metrics(str(work_dir), key) is None


@pytest.mark.parametrize('tasks', [[task] for task in
                                   ('semseg', 'depth', 'normals', 'edge')] +
                         [['semseg', 'depth', 'normals', 'edge']])
def test_run_options_pass_the_config_task_check(tasks):
    """What train.py/test.py and get_flops.py get for every variant and task
    set passes their check of the task lists (single-task runs were refused
    when only the decoder's and dataloaders' lists were set)."""
    from mmfgmoe.utils.cli import add_cfg_options, load_config_file
    tool = _tool()
    args = argparse.Namespace(encoder='enc.pth', iters=5, edge_thresholds=9,
                              data_root='data/x')
    parser = argparse.ArgumentParser()
    add_cfg_options(parser)
    for _, extra in tool.VARIANTS.values():
        for options in (tool.run_options(args, extra, tasks),
                        tool.task_options(tasks) + extra):
            # the tools' own reading: merge, then check_config_tasks
            cfg = load_config_file(
                osp.join(tool.ROOT, tool.CONFIG),
                parser.parse_args(['--cfg-options',
                                   *options]).cfg_options)
            assert cfg.model.decode_head.tasks == tasks
            for split in tool.SPLITS:
                assert cfg[f'{split}_dataloader'].dataset.tasks == tasks


def test_parameter_matched_dense_variant():
    """The 'same trainable parameters' row has FGMoE's decoder size but
    its routers; the 'same activated width' row is smaller."""
    from mmfgmoe.models.layers.moe import TopKGate
    from mmfgmoe.utils.cli import add_cfg_options, load_config_file
    from mmseg.registry import MODELS
    tool = _tool()
    parser = argparse.ArgumentParser()
    add_cfg_options(parser)

    def head(variant):
        options = tool.VARIANTS[variant].options
        cfg_options = parser.parse_args(['--cfg-options', *options
                                         ]).cfg_options if options else None
        cfg = load_config_file(osp.join(tool.ROOT, tool.CONFIG), cfg_options)
        return MODELS.build(cfg.model.decode_head)

    def count(module):
        return sum(p.numel() for p in module.parameters())

    fgmoe = head('fgmoe')
    routers = sum(count(m) for m in fgmoe.modules()
                  if isinstance(m, TopKGate))
    assert routers > 0
    assert count(head('dense-wide')) == count(fgmoe) - routers
    assert count(head('dense')) < count(fgmoe) - routers


def test_variants_are_chosen_by_short_id(monkeypatch):
    """The command line takes short ids; the table and work dirs keep the
    labels, one work dir per variant."""
    tool = _tool()
    monkeypatch.setattr('sys.argv', [
        'synthroom_comparison.py', '--encoder', 'e.pth', '--variants',
        'fgmoe', 'coarse', '--extra-seeds', '1', '--seed-variants', 'dense'
    ])
    args = tool.parse_args()
    assert args.variants == ['fgmoe', 'coarse']
    assert args.seed_variants == ['dense']
    monkeypatch.setattr('sys.argv', ['synthroom_comparison.py', '--encoder',
                                     'e.pth'])
    args = tool.parse_args()
    assert args.variants == list(tool.VARIANTS)
    assert args.seed_variants == ['fgmoe', 'dense']
    labels = [variant.label for variant in tool.VARIANTS.values()]
    assert len(set(labels)) == len(labels)
    monkeypatch.setattr('sys.argv', [
        'synthroom_comparison.py', '--encoder', 'e.pth', '--seed-variants',
        'FGMoE'
    ])
    with pytest.raises(SystemExit):
        tool.parse_args()


def test_results_table_rows_arrows_and_delta_m():
    tool = _tool()
    single = {'semseg.mIoU': 40., 'depth.rmse': 1., 'normals.mean': 20.,
              'edge.odsF': 50.}
    results = {'FGMoE': dict(single, trainable='3.92M', decoder_flops='1.00G',
                             **{'semseg.mIoU': 44.})}
    cost = dict(trainable=['1M', '2M', '3M', '4M'],
                decoder_flops=['1G', '2G', '3G', '4G'])
    lines = tool.results_table(results, single, cost).splitlines()
    assert lines[0] == ('| decoder | semseg mIoU ↑ | depth rmse ↓ | '
                        'normals mean ↓ | edge odsF ↑ | Δm % | '
                        'trainable | decoder FLOPs |')
    assert lines[1] == '|' + '---|' * 8
    assert lines[2] == ('| single-task decoders | 40.000 | 1.000 | 20.000 | '
                        '50.000 | 0 | 1M + 2M + 3M + 4M | 1G + 2G + 3G + 4G |')
    # +10 % mIoU on one of four tasks
    assert lines[3] == ('| FGMoE | 44.000 | 1.000 | 20.000 | 50.000 | +2.50 '
                        '| 3.92M | 1.00G |')
    alone = tool.results_table(results, {}, dict(trainable=[],
                                                 decoder_flops=[]))
    assert alone.splitlines()[2].startswith('| FGMoE | 44.000 |')
    assert '| – |' in alone.splitlines()[2] and len(alone.splitlines()) == 3
