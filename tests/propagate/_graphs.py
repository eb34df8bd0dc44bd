"""Small seeded graphs and seed sets for the propagation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph import KnnGraph, TagSet


def random_graph(
    n: int = 60, density: float = 0.08, seed: int = 0, isolated: int = 3, split: int | None = 40
) -> KnnGraph:
    """Weighted symmetric graph with two components (rows < split, >= split) and isolated nodes."""
    g = np.random.default_rng(seed)
    w = sp.random(n, n, density=density, random_state=g, data_rvs=lambda k: g.uniform(0.1, 1, k))
    w = (w + w.T).toarray()
    if split is not None:
        w[split:, :split] = 0
        w[:split, split:] = 0
    if isolated:
        w[-isolated:, :] = 0
        w[:, -isolated:] = 0
    return KnnGraph.from_adjacency(w, [f"i{k:03d}" for k in range(n)])


def random_seeds(ids: np.ndarray, n_tags: int = 7, p: float = 0.1, seed: int = 1) -> TagSet:
    """Random seed tags with weights in [0.5, 1]."""
    g = np.random.default_rng(seed)
    y = (g.random((len(ids), n_tags)) < p) * g.uniform(0.5, 1.0, (len(ids), n_tags))
    r, c = np.nonzero(y)
    frame = pd.DataFrame({"id": ids[r], "tag": [f"t{k}" for k in c], "weight": y[r, c]})
    return TagSet.from_frame(frame, ids)


def closed_form(graph: KnnGraph, y: np.ndarray, alpha: float) -> np.ndarray:
    """(1 - alpha)(I - alpha S)^-1 Y with a dense solve."""
    w = graph.adjacency.toarray().astype(np.float64)
    d = w.sum(axis=1)
    inv = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    s = inv[:, None] * w * inv[None, :]
    return (1 - alpha) * np.linalg.solve(np.eye(len(d)) - alpha * s, y)


def dense_inferred(graph: KnnGraph, seeds: TagSet, alpha: float) -> np.ndarray:
    """The closed form with seed tags zeroed (seed tags are never inferred)."""
    y = seeds.matrix.toarray().astype(np.float64)
    f = closed_form(graph, y, alpha)
    f[y > 0] = 0.0
    f[f < 1e-15] = 0.0
    return f
