"""ccgraph.cluster: Leiden clusters at several resolutions, stable IDs and descriptions."""

from ccgraph.cluster.describe import c_tf_idf, describe_clusters
from ccgraph.cluster.hierarchy import (
    choose_default_level,
    leiden_levels,
    recursive_split,
    resolution_sweep,
)
from ccgraph.cluster.leiden import leiden
from ccgraph.cluster.metrics import (
    adjusted_rand_index,
    connected_share,
    cpm_quality,
    modularity,
    normalized_mutual_info,
    partition_metrics,
    purity,
    tag_coherence,
)
from ccgraph.cluster.stable_ids import match_labels, stabilize, warm_start

__all__ = [
    "adjusted_rand_index",
    "c_tf_idf",
    "choose_default_level",
    "connected_share",
    "cpm_quality",
    "describe_clusters",
    "leiden",
    "leiden_levels",
    "match_labels",
    "modularity",
    "normalized_mutual_info",
    "partition_metrics",
    "purity",
    "recursive_split",
    "resolution_sweep",
    "stabilize",
    "tag_coherence",
    "warm_start",
]
