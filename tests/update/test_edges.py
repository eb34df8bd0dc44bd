"""Edges rebuilt around changed kNN lists against a full build from the same lists."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.graph import build_knn_graph, knn_search
from ccgraph.update._edges import local_edges


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_new=st.integers(0, 12),
    weighting=st.sampled_from(["cosine", "gaussian", "umap"]),
    metric=st.sampled_from(["cosine", "euclidean"]),
    mutual=st.booleans(),
)
def test_local_edges_equal_a_full_build(
    seed: int, n_new: int, weighting: str, metric: str, mutual: bool
) -> None:
    g = np.random.default_rng(seed)
    x = g.normal(size=(60 + n_new, 5)).astype(np.float32)
    n_old = 60
    old_i, old_d = knn_search(x[:n_old], k=5, metric=metric, backend="exact")
    opts = dict(k=5, metric=metric, mutual=mutual, min_degree=2, weighting=weighting)
    old = build_knn_graph(x[:n_old], knn=(old_i, old_d), **opts).adjacency.copy()
    old.resize((len(x), len(x)))
    new_i, new_d = knn_search(x, k=5, metric=metric, backend="exact")
    padded = np.vstack([old_i, np.full((n_new, 5), -1)])
    changed = (padded != new_i).any(axis=1)
    got, info = local_edges(
        old, new_i, new_d, changed, metric=metric, mutual=mutual, min_degree=2,
        weighting=weighting, vectors=x,
    )  # fmt: skip
    want = build_knn_graph(x, knn=(new_i, new_d), **opts).adjacency
    assert got.nnz == want.nnz
    assert abs(got - want).max() < 1e-6 if want.nnz else got.nnz == 0
    assert info["n_rebuilt_rows"] == int(changed.sum())


def test_nothing_changed_keeps_the_graph() -> None:
    x = np.random.default_rng(1).normal(size=(40, 4)).astype(np.float32)
    i, d = knn_search(x, k=4, metric="cosine", backend="exact")
    a = build_knn_graph(x, knn=(i, d), k=4, min_degree=2).adjacency
    got, info = local_edges(
        a, i, d, np.zeros(40, bool), metric="cosine", mutual=True, min_degree=2,
        weighting="cosine", vectors=None,
    )  # fmt: skip
    assert info["n_rebuilt_pairs"] == 0
    assert (got != a).nnz == 0


@pytest.mark.parametrize("which", [[0], [3, 17, 39]])
def test_a_stale_old_graph_is_only_read_where_lists_did_not_change(which: list[int]) -> None:
    """Rows marked changed are decided from the lists: their old edges do not survive."""
    x = np.random.default_rng(2).normal(size=(40, 4)).astype(np.float32)
    i, d = knn_search(x, k=4, metric="cosine", backend="exact")
    a = build_knn_graph(x, knn=(i, d), k=4, min_degree=2).adjacency.tolil()
    for r in which:  # garbage edges on the changed rows
        a[r, (r + 20) % 40] = a[(r + 20) % 40, r] = 9.0
    changed = np.zeros(40, bool)
    changed[which] = True
    changed[[(r + 20) % 40 for r in which]] = True
    got, _ = local_edges(
        a.tocsr(), i, d, changed, metric="cosine", mutual=True, min_degree=2,
        weighting="cosine", vectors=None,
    )  # fmt: skip
    want = build_knn_graph(x, knn=(i, d), k=4, min_degree=2).adjacency
    assert abs(got - want).max() < 1e-6 and got.nnz == want.nnz
