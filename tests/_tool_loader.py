# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Import a script under ``tools/`` as a module (they are not a package)."""
import importlib.util
import os.path as osp
from types import ModuleType

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(relpath: str) -> ModuleType:
    """Load ``tools/<relpath>`` (e.g. ``'analysis_tools/get_flops.py'``)."""
    path = osp.join(ROOT, 'tools', relpath)
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
