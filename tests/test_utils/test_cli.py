# Copyright (c) mmfgmoe contributors. All rights reserved.
"""What the tools do to a config when they read it."""
import argparse
import os.path as osp

import pytest
import torch

from mmfgmoe.utils.cli import add_common_args, load_config, revert_sync_bn_cfg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NYUD = osp.join(ROOT, 'configs', 'fgmoe_nyud.py')


@pytest.fixture(autouse=True)
def _local_rank(monkeypatch):
    # load_config exports LOCAL_RANK; keep it out of the other tests.
    monkeypatch.setenv('LOCAL_RANK', '0')


def _norm_types(cfg) -> list:
    found = []
    if isinstance(cfg, dict):
        if str(cfg.get('type', '')).endswith('BN'):
            found.append(cfg['type'])
        children = cfg.values()
    elif isinstance(cfg, (list, tuple)):
        children = cfg
    else:
        return found
    for child in children:
        found += _norm_types(child)
    return found


def _load(*argv: str):
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_common_args(parser)
    return load_config(parser.parse_args([NYUD, *argv]))


def test_decoder_uses_sync_bn_and_single_process_keeps_it():
    # mmengine's Runner reverts SyncBN itself when not distributed.
    types = _norm_types(_load().model)
    assert types and set(types) == {'SyncBN'}


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_cpu_distributed_reverts_sync_bn_and_uses_gloo():
    cfg = _load('--launcher', 'pytorch')
    assert set(_norm_types(cfg.model)) == {'BN'}
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
@pytest.mark.parametrize('launcher', ['slurm', 'mpi'])
def test_cpu_refuses_launchers_that_bind_a_cuda_device(launcher):
    with pytest.raises(ValueError, match=f'--launcher {launcher} needs CUDA'):
        _load('--launcher', launcher)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_launcher_from_cfg_options_gets_the_cpu_set_up():
    # --cfg-options may set the launcher (as in mmseg); the CPU adaptation
    # follows the launcher that the Runner will use.
    cfg = _load('--cfg-options', 'launcher=pytorch')
    assert cfg.launcher == 'pytorch'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    with pytest.raises(ValueError, match='--launcher slurm needs CUDA'):
        _load('--cfg-options', 'launcher=slurm')


def test_revert_sync_bn_cfg_nested():
    cfg = dict(a=dict(type='SyncBN', requires_grad=True),
               b=[dict(norm_cfg=dict(type='SyncBN')), dict(type='LN')],
               c=(dict(type='SyncBN'), ), d=3)
    revert_sync_bn_cfg(cfg)
    assert cfg['a'] == dict(type='BN', requires_grad=True)
    assert cfg['b'] == [dict(norm_cfg=dict(type='BN')), dict(type='LN')]
    assert cfg['c'][0] == dict(type='BN')


def test_destroy_process_group_tears_down_and_is_a_no_op_without_one(
        tmp_path):
    import torch.distributed as dist

    from mmfgmoe.utils.cli import destroy_process_group
    destroy_process_group()  # no group: nothing to do
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    assert dist.is_initialized()
    destroy_process_group()
    assert not dist.is_initialized()
