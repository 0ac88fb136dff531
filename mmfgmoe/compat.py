# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Secure checkpoint loading for mmengine 0.10.7 on torch >= 2.6.

A checkpoint is a pickle: loading an untrusted one with ``weights_only=False``
lets the file run arbitrary code. torch >= 2.6 defaults to ``weights_only=True``
and refuses every global that is not allow-listed, but mmengine 0.10.7 writes
checkpoints that hold its ``HistoryBuffer`` (message hub) and numpy arrays and
scalars, so ``load_from``, ``--resume`` and ``tools/test.py`` fail with
"Unsupported global". Worse, mmengine's ``http(s)://`` loader goes through
``torch.hub.load_state_dict_from_url`` whose ``weights_only`` still defaults
to ``False``: a downloaded pretrained file would be unpickled unchecked.

This module keeps the check on and fixes both:

* it allow-lists exactly the types our checkpoints contain
  (``torch.serialization.add_safe_globals``), nothing else;
* it registers (through the standard ``copyreg`` table) how a
  ``HistoryBuffer`` pickles: mmengine's own ``__getstate__`` also pickles the
  class-level statistics functions as ``getattr(HistoryBuffer, 'min')``, and
  allowing ``getattr`` would let a pickle reach any attribute of any
  allow-listed object, i.e. run code. We pickle the buffer as
  ``HistoryBuffer(log_history, count_history, max_length)`` instead; the
  statistics functions live on the class and are restored by ``__init__``.
* it re-registers mmengine's local-file and http(s) checkpoint schemes (the
  public ``CheckpointLoader.register_scheme`` hook, no patched site-packages)
  with loaders that always pass ``weights_only=True`` and turn torch's
  "Unsupported global" into an error that names the file and the global;
* it does the same for the model-zoo names (``torchvision://``,
  ``modelzoo://``, ``open-mmlab://``, ``openmmlab://``, ``mmcls://``):
  mmengine resolves them to an http(s) URL and downloads it with its own
  unchecked loader, we resolve them with mmengine's tables and load the URL
  (or the file under ``MMENGINE_HOME``) with ours.

Never set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``. To load a checkpoint you trust
that holds other types, allow-list those types yourself with
``torch.serialization.add_safe_globals`` before loading it.
"""
import copyreg
import os
import os.path as osp
import pickle
import re
from typing import Any, Callable, List, Optional

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home,
                                        _process_mmcls_checkpoint,
                                        get_deprecated_model_names,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

__all__ = ['SAFE_CHECKPOINT_GLOBALS', 'MODEL_ZOO_PREFIXES',
           'UnsafeCheckpointError',
           'check_local_checkpoint',
           'load_checkpoint_file']


def _numpy_checkpoint_globals() -> List[Any]:
    """The numpy callables and classes a pickled array or scalar refers to.

    numpy 2 moved ``numpy.core`` to ``numpy._core``; pickles name whichever
    module wrote them, so both spellings are listed where they exist.
    """
    found = [np.ndarray, np.dtype]
    for module_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            module = __import__(module_name, fromlist=['_reconstruct'])
        except ImportError:
            continue
        found += [module._reconstruct, module.scalar]
    # Arrays and scalars pickle their dtype by class (numpy.dtypes.Float64DType).
    found += [type(np.dtype(code)) for code in '?bhilqBHILQefdgFDGSUV']
    return found


#: Every non-tensor type an mmengine/mmfgmoe checkpoint holds: the message
#: hub's ``HistoryBuffer`` (logged scalars) and the numpy arrays, scalars and
#: dtypes inside it. Plain containers, tensors and ``OrderedDict`` are allowed
#: by torch itself.
SAFE_CHECKPOINT_GLOBALS: List[Any] = [HistoryBuffer] + _numpy_checkpoint_globals()
torch.serialization.add_safe_globals(SAFE_CHECKPOINT_GLOBALS)


def _reduce_history_buffer(buffer: HistoryBuffer):
    return HistoryBuffer, (buffer._log_history, buffer._count_history,
                           buffer.max_length)


copyreg.pickle(HistoryBuffer, _reduce_history_buffer)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle refers to a global that is not allow-listed."""


def _unsupported_global(message: str) -> Optional[str]:
    # torch words this differently depending on why the global is refused.
    match = re.search(r'[Uu]nsupported (?:global: )?GLOBAL (\S+)', message)
    return match.group(1) if match else None


def load_checkpoint_file(filename: str,
                         map_location: Any = None,
                         loader: Callable[..., Any] = torch.load) -> Any:
    """Load a checkpoint with ``weights_only=True`` and a clear refusal.

    Args:
        filename (str): Path (or URL, for ``loader``s that take one).
        map_location: Same as :func:`torch.load`.
        loader (Callable): ``torch.load`` or a function with its
            ``weights_only``/``map_location`` keywords.

    Returns:
        The unpickled checkpoint.

    Raises:
        UnsafeCheckpointError: naming the file and the refused global when the
            pickle refers to anything outside the allow-list.
    """
    try:
        return loader(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _unsupported_global(str(err))
        if refused is None:
            raise
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {filename!r}: its pickle refers to '
            f'{refused!r}, which is not a type mmfgmoe checkpoints contain. '
            'Loading it could run arbitrary code. If you trust this file, '
            'allow-list that exact type with '
            'torch.serialization.add_safe_globals before loading.') from None


def check_local_checkpoint(filename: str) -> str:
    """``filename`` with ``~`` expanded; FileNotFoundError naming it when
    there is no such file (torch's own error omits the name).

    Args:
        filename (str): Local checkpoint path, possibly starting with ``~``.

    Returns:
        str: The path with ``~`` expanded (:func:`os.path.expanduser`).

    Raises:
        FileNotFoundError: When the expanded path is not an existing file
            (a directory counts as missing).
    """
    path = os.path.expanduser(filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    return path


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    filename = check_local_checkpoint(filename)
    try:
        return load_checkpoint_file(filename, map_location)
    except (RuntimeError, EOFError) as err:  # e.g. a truncated zip archive
        raise RuntimeError(f'cannot read checkpoint {filename!r} (truncated or '
                           f'not a torch checkpoint): {err}') from err


def _load_from_http(filename: str, map_location: Any = None) -> Any:

    def fetch(url, map_location, weights_only):
        return torch.hub.load_state_dict_from_url(
            url,
            map_location=map_location,
            progress=os.isatty(0),
            weights_only=weights_only)

    # Rank 0 downloads first; the others then read the cached file.
    rank, world_size = get_dist_info()
    error = None
    if rank == 0:
        try:
            checkpoint = load_checkpoint_file(filename, map_location, fetch)
        except Exception as err:  # re-raised below, on every rank
            error = err
    if world_size > 1:
        # Tell every rank whether rank 0 failed and why: at a plain barrier
        # the others would wait for rank 0's exit and then fail with a
        # "connection closed" (gloo) or wait until the launcher stops them,
        # the reason in rank 0's log only.
        reason = [None if error is None else f'{type(error).__name__}: '
                  f'{error}']
        torch.distributed.broadcast_object_list(reason, src=0)
        if rank > 0:
            if reason[0] is not None:
                raise RuntimeError(f'rank 0 could not load checkpoint '
                                   f'{filename!r}: {reason[0]}')
            checkpoint = load_checkpoint_file(filename, map_location, fetch)
    if error is not None:
        raise error
    return checkpoint


def _model_zoo_location(filename: str) -> str:
    """The URL (or path relative to ``MMENGINE_HOME``) that mmengine's
    tables give a model-zoo name such as ``mmcls://vit-base-p16``."""
    scheme, name = filename.split('://', 1)
    if scheme in ('modelzoo', 'torchvision'):
        table = get_torchvision_models()
    elif scheme == 'mmcls':
        table = get_mmcls_models()
    else:  # open-mmlab, openmmlab
        table = get_external_models()
        name = get_deprecated_model_names().get(name, name)
    if name not in table:
        raise KeyError(f'checkpoint {filename!r}: mmengine knows no '
                       f'{scheme}:// model named {name!r}')
    return table[name]


def _load_from_model_zoo(filename: str, map_location: Any = None) -> Any:
    location = _model_zoo_location(filename)
    if location.startswith(('http://', 'https://')):
        checkpoint = _load_from_http(location, map_location)
    else:
        checkpoint = _load_from_local(
            osp.join(_get_mmengine_home(), location), map_location)
    if filename.startswith('mmcls://'):
        checkpoint = _process_mmcls_checkpoint(checkpoint)
    return checkpoint


#: The model-zoo schemes whose mmengine loaders download without the check.
MODEL_ZOO_PREFIXES = ('modelzoo://', 'torchvision://', 'open-mmlab://',
                      'openmmlab://', 'mmcls://')

CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local, force=True)
CheckpointLoader.register_scheme(
    prefixes=('http://', 'https://'), loader=_load_from_http, force=True)
CheckpointLoader.register_scheme(
    prefixes=MODEL_ZOO_PREFIXES, loader=_load_from_model_zoo, force=True)
