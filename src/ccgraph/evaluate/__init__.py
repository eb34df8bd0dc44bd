"""Evaluation of inferred tags and classes against held-out data.

Hiding protocols, metrics with bootstrap intervals, baselines, the harness, the Planetoid
protocol, the feature-aware (SGC / C&S) mode and the spreading + TagProp hybrids.
"""

from __future__ import annotations

from ccgraph.evaluate.baselines import (
    Neighbors,
    knn_vote_tags,
    neighbors_from_embeddings,
    neighbors_from_graph,
    prior_tags,
    random_tags,
    sklearn_label_spreading,
    tagprop_tags,
    tagprop_votes,
)
from ccgraph.evaluate.clusters import cluster_agreement, tag_coherence
from ccgraph.evaluate.datasets import CitationDataset, load_citation_npz, load_planetoid
from ccgraph.evaluate.feature_aware import (
    correct_and_smooth,
    feature_aware_tags,
    normalized_adjacency,
    smooth_features,
)
from ccgraph.evaluate.flickr8k import caption_tags, load_flickr8k
from ccgraph.evaluate.harness import run_evaluation
from ccgraph.evaluate.metrics import (
    bootstrap_ci,
    coverage,
    expected_calibration_error,
    per_item_metrics,
    per_tag_metrics,
    rank_correlation,
    ranked_hits,
    reliability_table,
)
from ccgraph.evaluate.output import EvaluationResult
from ccgraph.evaluate.planetoid import (
    planetoid_feature_aware,
    planetoid_label_propagation,
    planetoid_sklearn_label_spreading,
)
from ccgraph.evaluate.splits import Split, hide_items, hide_tags, make_splits, strip_hidden_text
from ccgraph.evaluate.tagprop_blend import spread_tagprop_tags
from ccgraph.evaluate.tagprop_smooth import tagprop_smooth_tags

__all__ = [
    "CitationDataset",
    "EvaluationResult",
    "Neighbors",
    "Split",
    "bootstrap_ci",
    "caption_tags",
    "cluster_agreement",
    "correct_and_smooth",
    "coverage",
    "expected_calibration_error",
    "feature_aware_tags",
    "hide_items",
    "hide_tags",
    "knn_vote_tags",
    "load_citation_npz",
    "load_flickr8k",
    "load_planetoid",
    "make_splits",
    "neighbors_from_embeddings",
    "neighbors_from_graph",
    "normalized_adjacency",
    "per_item_metrics",
    "per_tag_metrics",
    "planetoid_feature_aware",
    "planetoid_label_propagation",
    "planetoid_sklearn_label_spreading",
    "prior_tags",
    "random_tags",
    "rank_correlation",
    "ranked_hits",
    "reliability_table",
    "run_evaluation",
    "sklearn_label_spreading",
    "smooth_features",
    "spread_tagprop_tags",
    "strip_hidden_text",
    "tag_coherence",
    "tagprop_smooth_tags",
    "tagprop_tags",
    "tagprop_votes",
]
