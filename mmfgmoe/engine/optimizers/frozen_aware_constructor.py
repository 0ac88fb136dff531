# Copyright (c) mmfgmoe contributors. All rights reserved.
import logging
from typing import Optional

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

_SKIP_MESSAGE = 'is skipped since its requires_grad=False'


class _DropFrozenSkips(logging.Filter):

    def filter(self, record: logging.LogRecord) -> bool:
        return _SKIP_MESSAGE not in record.getMessage()


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FrozenAwareOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, with one log line for frozen weights.

    With a ``paramwise_cfg``, mmengine leaves every ``requires_grad=False``
    parameter out of the optimizer (what decoder-only fine-tuning wants) but
    logs a WARNING per parameter: ~150 lines for a frozen ViT-B. This
    constructor builds exactly the same optimizer and replaces those lines by
    one INFO line with the count.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        module = getattr(model, 'module', model)
        frozen = [p for p in module.parameters() if not p.requires_grad]
        logger: Optional[logging.Logger] = MMLogger.get_current_instance()
        drop = _DropFrozenSkips()
        logger.addFilter(drop)
        try:
            optim_wrapper = super().__call__(model)
        finally:
            logger.removeFilter(drop)
        if frozen and self.paramwise_cfg:
            print_log(
                f'{len(frozen)} frozen parameter tensors '
                f'({sum(p.numel() for p in frozen):,} values) are not given '
                'to the optimizer', logger='current')
        return optim_wrapper
