# Copyright (c) mmfgmoe contributors. All rights reserved.
"""mmfgmoe: FGMoE multi-task dense prediction as an OpenMMLab plugin.

Importing the package registers every dataset, transform, model, metric,
visualiser and hook in mmseg's registries (configs use
``custom_imports=dict(imports=['mmfgmoe'])`` and ``default_scope='mmseg'``).
"""
from . import compat  # noqa: F401  (must run before any checkpoint is loaded)
from . import datasets, engine, evaluation, models, visualization  # noqa: F401
from .version import __version__

__all__ = ['__version__']
