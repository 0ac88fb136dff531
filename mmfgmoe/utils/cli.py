# Copyright (c) mmfgmoe contributors. All rights reserved.
"""What the tools share: flags and config set-up."""
import argparse
import datetime
import os
import os.path as osp
from typing import Any, Optional

import torch
from mmengine.config import Config, DictAction

from .tasks import check_config_tasks

__all__ = [
    'add_cfg_options', 'add_common_args', 'destroy_process_group',
    'load_config', 'load_config_file', 'revert_sync_bn_cfg',
    'setup_cpu_distributed'
]


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """Add mmseg's ``--cfg-options`` flag.

    The flag's values are parsed by mmengine's ``DictAction`` into a dict
    (``args.cfg_options``, None when the flag is not given).

    Args:
        parser (argparse.ArgumentParser): The parser to add the flag to, in
            place.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs merged into '
        'it; a list value is written key="[a,b]" or key=a,b, nested '
        'tuples/lists as key="[(a,b),(c,d)]" (quotes needed, no spaces)')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add mmseg's common flags: ``--work-dir``, ``--cfg-options``,
    ``--launcher`` and ``--local_rank``.

    ``--launcher`` is one of ``none`` (the default), ``pytorch``, ``slurm``
    or ``mpi``; ``--local_rank`` (also spelt ``--local-rank``) is an int,
    0 by default. These are the flags :func:`load_config` reads.

    Args:
        parser (argparse.ArgumentParser): The parser to add the flags to, in
            place.
    """
    parser.add_argument('--work-dir', help='the dir to save logs, models and metrics')
    add_cfg_options(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank, older tools --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def _read_config(path: str, cfg_options: Optional[dict]) -> Config:
    """``path`` with ``--cfg-options`` merged, its task lists checked."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_config_tasks(cfg)
    return cfg


def load_config_file(path: str,
                     cfg_options: Optional[dict] = None) -> Config:
    """Read a config for an analysis tool that builds from it directly.

    ``--cfg-options`` are merged, the task lists are checked
    (:func:`check_config_tasks`), our modules are registered and the
    config's default registry scope is made current, so that ``MODELS``,
    ``DATASETS`` etc. build it as the Runner would.

    Args:
        path (str): The config file.
        cfg_options (dict, optional): Parsed ``--cfg-options``.

    Returns:
        Config: The config.
    """
    from mmengine.registry import init_default_scope

    import mmfgmoe  # noqa: F401  (registers our modules)
    cfg = _read_config(path, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the common flags.

    Besides mmseg's behaviour (``--cfg-options`` merged, ``work_dir`` from the
    flag, else the config, else ``./work_dirs/<config name>``), the task lists
    of model, data and evaluators are checked (:func:`check_config_tasks`:
    a mismatch fails here, not hours into training), and a distributed
    run on a machine without CUDA is made to work on the CPU: the backend
    becomes ``gloo`` (NCCL needs GPUs) and the DDP wrapper gets
    ``device_ids=None`` (mmengine passes ``[LOCAL_RANK]``, which DDP rejects
    for CPU modules) and SyncBN becomes BN (torch syncs batch statistics on
    accelerators only). See also :func:`setup_cpu_distributed`.

    ``LOCAL_RANK`` is set in the environment from ``args.local_rank`` when
    it is not set yet, and ``cfg.launcher`` is ``--launcher`` unless
    ``--cfg-options`` sets ``launcher``.

    Args:
        args (argparse.Namespace): Parsed arguments with ``config`` (the
            config file path) and the flags of :func:`add_common_args`:
            ``work_dir``, ``cfg_options``, ``launcher`` and ``local_rank``.

    Returns:
        Config: The config, with ``launcher`` and ``work_dir`` set.

    Raises:
        FileNotFoundError: When ``args.config`` does not exist.
        ValueError: When the config's task lists disagree, or when the
            launcher is ``slurm`` or ``mpi`` on a machine without CUDA.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = _read_config(args.config, args.cfg_options)
    # As in mmseg, --cfg-options may override --launcher.
    cfg.launcher = (args.cfg_options or {}).get('launcher', args.launcher)
    work_dir: Optional[str] = args.work_dir
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if cfg.launcher != 'none' and not torch.cuda.is_available():
        if cfg.launcher != 'pytorch':
            # mmengine's slurm/mpi initialisation binds a CUDA device per rank.
            raise ValueError(f'--launcher {cfg.launcher} needs CUDA; without '
                             'a GPU only --launcher pytorch (torchrun, gloo) '
                             'works')
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        wrapper = cfg.get('model_wrapper_cfg') or dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        wrapper['device_ids'] = None
        cfg.model_wrapper_cfg = wrapper
        # torch's SyncBatchNorm refuses CPU tensors once a process group
        # exists; each process then normalises with its own batch.
        revert_sync_bn_cfg(cfg.model)
    return cfg


def revert_sync_bn_cfg(cfg: Any) -> None:
    """Turn every ``type='SyncBN'`` in a (model) config into ``'BN'``, in
    place: mmengine's ``revert_sync_batchnorm`` for a model not built yet.

    Args:
        cfg (Any): A (model) config to walk: dicts (``ConfigDict`` included)
            and the items of lists and tuples are searched recursively;
            any other value is left alone.
    """
    if isinstance(cfg, dict):
        if cfg.get('type') == 'SyncBN':
            cfg['type'] = 'BN'
        children = cfg.values()
    elif isinstance(cfg, (list, tuple)):
        children = cfg
    else:
        return
    for child in children:
        revert_sync_bn_cfg(child)


def setup_cpu_distributed(cfg: Config) -> None:
    """Initialise torchrun's process group on a machine without CUDA.

    mmengine's ``init_dist('pytorch')`` always calls
    ``torch.cuda.set_device(LOCAL_RANK)``, which fails without a GPU. The
    Runner skips its own initialisation when a process group exists, so we
    create it here (``env://`` from torchrun, backend from the config).

    Nothing is done unless ``cfg.launcher`` is ``'pytorch'``, CUDA is not
    available and no process group exists yet.

    Args:
        cfg (Config): The config from :func:`load_config`; its
            ``env_cfg.dist_cfg.backend`` is used, ``gloo`` if unset.
    """
    import torch.distributed as dist
    if (cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available()
            or dist.is_initialized()):
        return
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'gloo')
    dist.init_process_group(backend=backend)


def destroy_process_group() -> None:
    """Tear down the process group, if any, when a tool has finished.

    Left to interpreter shutdown, a gloo group's worker threads can abort
    the process ("terminate called without an active exception", exit -6;
    pytorch/pytorch#190489), so a run that finished fails under torchrun.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == 'gloo':
            # No rank tears its connections down while another still talks
            # to it (a gloo thread that loses its pair aborts the process);
            # monitored: a rank that failed is named after the timeout
            # instead of hanging the others for the group's 30 minutes.
            dist.monitored_barrier(timeout=datetime.timedelta(minutes=5))
        dist.destroy_process_group()
