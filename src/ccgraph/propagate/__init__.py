"""Inference over the similarity graph: tag spreading, personalized PageRank, popularity.

``spread_tags`` infers each item's top-k tags (multi-label label spreading) with calibrated
confidences; ``personalized_pagerank`` (single, batched and local push) and
``infer_popularity`` carry observed popularity to unobserved items.
"""

from __future__ import annotations

from ccgraph.propagate.spreading import spread_tags

__all__ = ["spread_tags"]
