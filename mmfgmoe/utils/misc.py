# Copyright (c) mmfgmoe contributors. All rights reserved.
from typing import Any

__all__ = ['cfg_type_name']


def cfg_type_name(cfg_type: Any) -> str:
    """The class name a config's ``type`` refers to, without a registry
    scope: ``'MultiTaskPad'`` for ``'MultiTaskPad'``,
    ``'mmseg.MultiTaskPad'`` and the class itself.

    Args:
        cfg_type (str | type | Any): A config dict's ``type`` value.

    Returns:
        str: The bare name.
    """
    return str(getattr(cfg_type, '__name__', cfg_type)).rsplit('.', 1)[-1]
