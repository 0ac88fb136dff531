# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Checkpoints load with torch's weights-only unpickler; code in a pickle is refused."""
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

import mmfgmoe  # noqa: F401  (installs the secure loaders)
from mmfgmoe.compat import UnsafeCheckpointError


class _RunsCode:
    """An object whose unpickling would call ``os.system``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def _mmengine_like_checkpoint() -> dict:
    """What mmengine's CheckpointHook writes, built from the real objects."""
    hub = MessageHub.get_instance('test_compat')
    hub.update_scalar('train/loss', 0.25)
    hub.update_scalar('train/lr', np.float64(1e-4))
    hub.update_info('iter', 3)
    return dict(
        meta=dict(iter=3, seed=np.int64(0), mmengine_version='0.10.7',
                  dataset_meta=dict(classes=('wall', 'floor'),
                                    palette=[[1, 2, 3], [4, 5, 6]])),
        state_dict=OrderedDict(weight=torch.ones(2, 2)),
        message_hub=hub.state_dict(),
        optimizer=dict(state={}, param_groups=[dict(lr=1e-4, params=[0])]),
        param_schedulers=[dict(last_step=3, base_values=[np.float32(1e-4)])])


def test_mmengine_checkpoint_loads_weights_only(tmp_path):
    path = str(tmp_path / 'iter_3.pth')
    torch.save(_mmengine_like_checkpoint(), path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['meta']['iter'] == 3
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert buffer.current() == pytest.approx(0.25)
    # Plain torch (no mmfgmoe import) refuses the same file: the allow-list,
    # not a disabled check, is what makes it load.
    code = ('import torch, sys\n'
            'try:\n'
            f'    torch.load({path!r}, weights_only=True)\n'
            'except Exception as e:\n'
            '    sys.exit(0 if "Unsupported global" in str(e) else 2)\n'
            'sys.exit(1)\n')
    assert subprocess.run([sys.executable, '-c', code]).returncode == 0


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, payload=_RunsCode(marker)), path)
    with pytest.raises(UnsafeCheckpointError) as err:
        _load_checkpoint(path, map_location='cpu')
    message = str(err.value)
    assert 'evil.pth' in message and 'system' in message
    assert not osp.exists(marker)


def test_missing_checkpoint_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(str(tmp_path / 'nope.pth'), map_location='cpu')


def test_allow_list_is_exact():
    """Only the message hub's HistoryBuffer and numpy's array/scalar/dtype
    reconstruction: nothing that could run code (builtins, os, eval)."""
    from mmengine.logging import HistoryBuffer
    allowed = mmfgmoe.compat.SAFE_CHECKPOINT_GLOBALS
    assert HistoryBuffer in allowed
    others = [t for t in allowed if t is not HistoryBuffer]
    assert others
    for obj in others:
        module = obj.__module__
        assert module.split('.')[0] == 'numpy', obj
        assert obj in (np.ndarray, np.dtype) or \
            obj.__name__ in ('_reconstruct', 'scalar') or \
            issubclass(obj, np.dtype), obj
    # importing mmfgmoe does not switch the check off for everyone
    assert os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD') is None


@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """Serve ``tmp_path/srv`` on a loopback HTTP server; hub cache in tmp."""
    import functools
    import http.server
    import threading
    srv_dir = tmp_path / 'srv'
    srv_dir.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    for proxy in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY',
                  'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(proxy, raising=False)  # loopback, never a proxy
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(srv_dir))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield srv_dir, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_http_checkpoint_is_loaded_weights_only(http_dir, tmp_path):
    srv_dir, url = http_dir
    torch.save(_mmengine_like_checkpoint(), str(srv_dir / 'good.pth'))
    marker = str(tmp_path / 'pwned')
    torch.save(dict(payload=_RunsCode(marker)), str(srv_dir / 'evil.pth'))

    ckpt = _load_checkpoint(f'{url}/good.pth', map_location='cpu')
    assert ckpt['message_hub']['log_scalars']['train/loss'].mean() == 0.25
    # mmengine's stock http loader unpickles with weights_only=False; ours
    # refuses the payload.
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        _load_checkpoint(f'{url}/evil.pth', map_location='cpu')
    assert not osp.exists(marker)


def test_model_zoo_names_are_loaded_weights_only(http_dir, tmp_path,
                                                 monkeypatch):
    """``open-mmlab://`` names resolve through mmengine's table (extended by
    ``$MMENGINE_HOME/open_mmlab.json``) to a URL or a file, both loaded by our
    checked loaders."""
    import json
    srv_dir, url = http_dir
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    torch.save(_mmengine_like_checkpoint(), str(home / 'good.pth'))
    marker = str(tmp_path / 'pwned')
    torch.save(dict(payload=_RunsCode(marker)), str(srv_dir / 'evil.pth'))
    (home / 'open_mmlab.json').write_text(
        json.dumps(dict(good_local='good.pth', evil_url=f'{url}/evil.pth')))

    ckpt = _load_checkpoint('open-mmlab://good_local', map_location='cpu')
    assert ckpt['meta']['iter'] == 3
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        _load_checkpoint('openmmlab://evil_url', map_location='cpu')
    assert not osp.exists(marker)
    with pytest.raises(KeyError, match="no open-mmlab:// model named 'nope'"):
        _load_checkpoint('open-mmlab://nope', map_location='cpu')


def _load_on_rank(rank: int, rendezvous: str, url: str, out: str) -> None:
    import datetime

    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{rendezvous}',
                            rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    try:
        _load_checkpoint(url, map_location='cpu')
        message = 'loaded'
    except Exception as err:
        message = f'{type(err).__name__}: {err}'
    with open(f'{out}.{rank}', 'w') as f:
        f.write(message)
    dist.destroy_process_group()
    os._exit(0)  # see test_distributed_eval.py's worker


@pytest.mark.timeout(120)
def test_every_rank_raises_when_rank_0_cannot_download(http_dir, tmp_path):
    """Rank 0 downloads first: the waiting ranks must fail with its reason,
    not with a lost connection or a timeout."""
    import torch.multiprocessing as mp
    _, url = http_dir
    out = str(tmp_path / 'message')
    mp.spawn(_load_on_rank, args=(str(tmp_path / 'rendezvous'),
                                  f'{url}/missing.pth', out), nprocs=2)
    messages = [open(f'{out}.{rank}').read() for rank in (0, 1)]
    assert messages[0].startswith('HTTPError') and '404' in messages[0]
    assert messages[1].startswith('RuntimeError: rank 0 could not load '
                                  f"checkpoint '{url}/missing.pth': "
                                  'HTTPError'), messages[1]


@pytest.mark.parametrize('name', [
    'torchvision://resnet50', 'modelzoo://resnet50', 'open-mmlab://x',
    'openmmlab://x', 'mmcls://x', 'http://h/x.pth', 'https://h/x.pth',
    '/tmp/x.pth'
])
def test_every_downloading_scheme_uses_a_checked_loader(name):
    from mmengine.runner.checkpoint import CheckpointLoader
    loader = CheckpointLoader._get_checkpoint_loader(name)
    assert loader.__module__ == 'mmfgmoe.compat', (name, loader)
