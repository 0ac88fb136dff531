# Copyright (c) mmfgmoe contributors. All rights reserved.
"""The pieces of synthroom_comparison.py that are not training runs."""
import json
import os.path as osp

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
    opts = ['train_cfg.max_iters=500', 'model.backbone.init_cfg.checkpoint=a']
    assert tool.cached_metrics(str(tmp_path), opts) is None  # nothing yet
    (tmp_path / 'metrics.json').write_text(json.dumps({'semseg.mIoU': 1.}))
    assert tool.cached_metrics(str(tmp_path), opts) is None  # no stamp
    (tmp_path / 'options.json').write_text(json.dumps(opts))
    assert tool.cached_metrics(str(tmp_path), opts) == {'semseg.mIoU': 1.}
    assert tool.cached_metrics(
        str(tmp_path), ['train_cfg.max_iters=100', opts[1]]) is None
