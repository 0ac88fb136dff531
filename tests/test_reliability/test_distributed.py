# Copyright (c) mmfgmoe contributors. All rights reserved.
"""``tools/dist_train.sh`` / ``tools/dist_test.sh`` with 2 CPU processes
(torchrun, gloo): training with an expert that gets no token on one rank,
and distributed metrics equal to single-process metrics."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch

from _tiny import ROOT, check_returncode, run_tool, tiny_config

#: Seconds after which a hung distributed run counts as a failure.
DIST_TIMEOUT = 240
TRAIN_ITERS = 3
#: Tries of a distributed run whose port was taken before torchrun bound it.
PORT_TRIES = 3


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


def _run_dist(script: str,
              *args: str,
              check: bool = True) -> subprocess.CompletedProcess:
    """Run ``tools/<script>`` on a port that was free a moment ago, again on
    another one if a process took it in between (torchrun's store then
    fails with EADDRINUSE before any rank starts)."""
    for _ in range(PORT_TRIES):
        proc = run_tool(osp.join(ROOT, 'tools', script),
                        *args,
                        timeout=DIST_TIMEOUT,
                        env=dict(PYTHON=sys.executable,
                                 PORT=_free_port(),
                                 PYTHONPATH=osp.dirname(osp.abspath(__file__))),
                        check=False)
        if 'EADDRINUSE' not in proc.stdout + proc.stderr:
            break
    if check:
        check_returncode(proc)
    return proc


def _dist_train(config: str, work_dir: str, expect_failure=False) -> str:
    """Train ``config`` on 2 ranks; the combined output of both."""
    proc = _run_dist('dist_train.sh', config, '2', '--work-dir', work_dir,
                     check=not expect_failure)
    log = proc.stdout + proc.stderr
    if expect_failure:
        assert proc.returncode != 0, log[-3000:]
    return log


def _metrics(work_dir: str) -> dict:
    with open(osp.join(work_dir, 'metrics.json')) as f:
        return json.load(f)


@pytest.mark.skipif(not torch.distributed.is_gloo_available(),
                    reason='torch built without gloo')
def test_dist_train_empty_expert_and_dist_test(synth_nyud_root, tmp_path):
    config = tiny_config(
        synth_nyud_root,
        str(tmp_path / 'dist.py'),
        max_iters=TRAIN_ITERS,
        extra=dict(
            custom_imports=dict(imports=['mmfgmoe', '_force_routing'],
                                allow_failed_imports=False),
            custom_hooks=[dict(type='ForceRoutingHook', rank=0, expert=0)],
            # validation is what dist_test.sh checks below
            train_cfg=dict(val_interval=1000)))
    work_dir = str(tmp_path / 'train')
    log = _dist_train(config, work_dir)
    # Both ranks ran, rank 0 with collapsed routing (15 of the 16 experts of
    # every task MoE empty), and DDP kept the replicas identical.
    assert 'rank 0 forced' in log and 'replicas identical' in log, log[-4000:]
    forced = [line for line in log.splitlines() if 'rank 0 forced' in line]
    assert ' 0 gate calls' not in forced[0]
    checkpoint = osp.join(work_dir, f'iter_{TRAIN_ITERS}.pth')
    assert osp.isfile(checkpoint)
    # The model config does not need find_unused_parameters=True (DESIGN
    # §2): the stacked expert weights are one parameter each, touched by
    # every step even when most experts are empty on a rank. The wrapper
    # that ran (tools/utils: load_config) is in the logged config.
    assert 'find_unused_parameters=False' in log

    # Distributed evaluation (3 images on 2 ranks: the sampler pads one)
    # equals single-process evaluation of the same checkpoint.
    dist_dir, single_dir = str(tmp_path / 'dist'), str(tmp_path / 'single')
    show_dir = str(tmp_path / 'panels')
    _run_dist('dist_test.sh', config, checkpoint, '2', '--work-dir',
              dist_dir, '--show-dir', show_dir)
    run_tool('tools/test.py',
             config,
             checkpoint,
             '--work-dir',
             single_dir,
             env=dict(PYTHONPATH=osp.dirname(osp.abspath(__file__))))
    dist_metrics, single_metrics = _metrics(dist_dir), _metrics(single_dir)
    assert len(single_metrics) >= 10 and 'edge.odsF' in single_metrics
    assert dist_metrics == single_metrics
    # Every rank draws its images (mmseg's visualizer draws rank 0's only).
    panels = os.listdir(osp.join(show_dir, 'vis_data', 'vis_image'))
    assert len(panels) == 3, panels


@pytest.mark.skipif(not torch.distributed.is_gloo_available(),
                    reason='torch built without gloo')
def test_dist_non_finite_loss_on_one_rank_stops_every_rank(
        synth_nyud_root, tmp_path):
    """Rank 1's loss turns NaN at the checkpoint iteration: DDP averages its
    NaN gradient into rank 0's weights, so rank 0 must stop too instead of
    saving them."""
    iters = 2
    config = tiny_config(
        synth_nyud_root,
        str(tmp_path / 'nan.py'),
        max_iters=iters,
        extra=dict(custom_imports=dict(imports=['mmfgmoe', '_nan_on_rank'],
                                       allow_failed_imports=False),
                   custom_hooks=[
                       dict(type='NaNLossOnRankHook',
                            rank=1,
                            iteration=iters - 1)
                   ],
                   train_cfg=dict(val_interval=1000)))
    work_dir = str(tmp_path / 'train')
    log = _dist_train(config, work_dir, expect_failure=True)
    assert (f'non-finite loss at iteration {iters}: on rank(s) [1] (this '
            'rank 0 is finite)') in log, log[-3000:]
    assert not osp.exists(osp.join(work_dir, f'iter_{iters}.pth'))


def test_a_taken_port_is_tried_again_on_another(monkeypatch, tmp_path):
    """``_run_dist`` moves on to a new port when torchrun finds its port
    taken (here on purpose; in a full suite by any other process)."""
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        ports = [str(taken.getsockname()[1]), _free_port()]
        monkeypatch.setattr(sys.modules[__name__], '_free_port',
                            lambda: ports.pop(0))
        # The ranks start (the store is up) and stop at the missing config.
        proc = _run_dist('dist_train.sh', str(tmp_path / 'missing.py'), '2',
                         check=False)
    assert not ports
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0 and 'EADDRINUSE' not in log, log[-3000:]
    assert 'missing.py' in log, log[-3000:]
