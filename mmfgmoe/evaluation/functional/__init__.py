# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Pure metric functions (no registry): per-image statistics and scores."""
from .dense import (angular_error, confusion_matrix, depth_scores, depth_stats,
                    iou_scores, normals_scores, normals_stats)
from .edge import (EDGE_BACKENDS, edge_bce_score, edge_bce_stats, edge_counts,
                   edge_scores, edge_thresholds)
from .saliency import saliency_scores, saliency_stats, saliency_thresholds

__all__ = [
    'angular_error', 'confusion_matrix', 'depth_scores', 'depth_stats',
    'iou_scores', 'normals_scores', 'normals_stats', 'EDGE_BACKENDS',
    'edge_bce_score', 'edge_bce_stats', 'edge_counts', 'edge_scores',
    'edge_thresholds', 'saliency_scores', 'saliency_stats',
    'saliency_thresholds'
]
