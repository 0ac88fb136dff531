# Copyright (c) mmfgmoe contributors. All rights reserved.
from .finite_loss_hook import FiniteLossHook
from .routing_stats_hook import RoutingStatsHook
from .visualization_hook import MultiTaskVisualizationHook

__all__ = ['FiniteLossHook', 'MultiTaskVisualizationHook', 'RoutingStatsHook']
