# Copyright (c) mmfgmoe contributors. All rights reserved.
from . import functional, metrics  # noqa: F401
from .metrics import MultiTaskMetric
from .routing import RoutingAccumulator, routing_summary

__all__ = ['MultiTaskMetric', 'RoutingAccumulator', 'routing_summary']
