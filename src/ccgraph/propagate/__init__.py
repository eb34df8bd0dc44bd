"""Inference over the similarity graph: tag spreading, personalized PageRank, popularity.

``spread_tags`` infers each item's top-k tags (multi-label label spreading) with calibrated
confidences; ``personalized_pagerank`` (single, batched and local push) and
``infer_popularity`` carry observed popularity to unobserved items.
"""

from __future__ import annotations

from ccgraph.propagate.calibration import (
    Calibrator,
    expected_calibration_error,
    fit_calibrator,
    holdout_predictions,
    precision_coverage,
    reliability_table,
)
from ccgraph.propagate.explain import explain_tags
from ccgraph.propagate.pagerank import local_ppr, personalized_pagerank, personalized_pagerank_batch
from ccgraph.propagate.popularity import infer_popularity, standardize_popularity
from ccgraph.propagate.seeds import build_seeds
from ccgraph.propagate.spreading import spread_tags

__all__ = [
    "Calibrator",
    "build_seeds",
    "expected_calibration_error",
    "explain_tags",
    "fit_calibrator",
    "holdout_predictions",
    "infer_popularity",
    "local_ppr",
    "personalized_pagerank",
    "personalized_pagerank_batch",
    "precision_coverage",
    "reliability_table",
    "spread_tags",
    "standardize_popularity",
]
