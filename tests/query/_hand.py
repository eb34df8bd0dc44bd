"""A 7-item run written by hand, so every answer can be worked out on paper.

Graph (symmetric weights): a-b 1, a-c 0.5, b-c 1, c-d 2, d-e 1, e-f 1; g is isolated.
Levels: l0 = [0, 0, 0, 1, 1, 1, 2], l1 = [0, 0, 1, 2, 2, 3, 4] (default level 1).
Vectors (2-d, unit): a (1, 0), b (.8, .6), c (.6, .8), d (0, 1), e (-1, 0), f (-.6, -.8),
g (.28, -.96) -- so the new item (1, 0) has cosines 1, .8, .6, 0, -1, -.6, .28.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.containers import KnnGraph, RunResult

IDS = list("abcdefg")
L0 = [0, 0, 0, 1, 1, 1, 2]
L1 = [0, 0, 1, 2, 2, 3, 4]
EDGES = [
    ("a", "b", 1.0),
    ("a", "c", 0.5),
    ("b", "c", 1.0),
    ("c", "d", 2.0),
    ("d", "e", 1.0),
    ("e", "f", 1.0),
]
VECTORS = np.array(
    [[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1], [-1, 0], [-0.6, -0.8], [0.28, -0.96]],
    dtype=np.float32,
)


def adjacency() -> sp.csr_matrix:
    pos = {k: i for i, k in enumerate(IDS)}
    m = np.zeros((7, 7))
    for u, v, w in EDGES:
        m[pos[u], pos[v]] = m[pos[v], pos[u]] = w
    return sp.csr_matrix(m)


def hand_run(*, duplicate_groups: list[int] | None = None) -> RunResult:
    graph = KnnGraph.from_adjacency(adjacency(), IDS)
    items = pd.DataFrame(
        {
            "id": IDS,
            "cluster": L1,
            "cluster_l0": L0,
            "cluster_l1": L1,
            "cluster_strength": np.zeros(7, dtype=np.float32),
            "duplicate_group": duplicate_groups or list(range(7)),
            "popularity_observed": np.nan,
            "popularity": np.nan,
            "popularity_source": "none",
            "degree": graph.degree,
            "title": [f"title {k}" for k in IDS],
        }
    )
    tags = pd.DataFrame(
        [
            ("a", "sea", 1.0, 1.0, pd.NA, "observed", "user"),
            ("a", "sky", 0.3, 0.6, 1, "inferred", pd.NA),
            ("b", "sea", 1.0, 1.0, pd.NA, "observed", "user"),
            ("b", "sea", 0.9, 0.9, pd.NA, "observed", "machine"),
            ("b", "sand", 0.2, 0.5, 1, "inferred", pd.NA),
            ("d", "city", 1.0, 1.0, pd.NA, "observed", "user"),
        ],
        columns=["id", "tag", "score", "confidence", "rank", "source", "origin"],
    ).astype({"rank": "Int64"})
    clusters = pd.DataFrame(
        {
            "level": [0, 0, 0, 1, 1, 1, 1, 1],
            "cluster": [0, 1, 2, 0, 1, 2, 3, 4],
            "size": [3, 3, 1, 2, 1, 2, 1, 1],
            "label": ["abc", "def", "g", "ab", "c", "de", "f", "g"],
            "top_tags": [[]] * 8,
            "representative_ids": [[]] * 8,
        }
    )
    rejects = pd.DataFrame(columns=["file", "row", "reason"])
    manifest = {
        "schema_version": 1,
        "config": {
            "graph": {"k": 3, "metric": "cosine", "fusion": {"weights": {"precomputed": 1.0}}},
            "propagate": {"tags": {"top_k": 10, "min_confidence": 0.0}},
        },
        "counts": {"default_level": 1},
        "stages": {
            "embed": {"precomputed": {"embedder": "precomputed", "normalize": True}},
            "duplicates": {"enabled": True, "modality": "precomputed", "cosine": 0.98},
        },
    }
    extras = {
        "embeddings_precomputed": VECTORS,
        "embeddings_precomputed_rows": np.arange(7, dtype=np.int64),
    }
    return RunResult(items, tags, clusters, rejects, graph, manifest, extras=extras)
