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


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    share=st.floats(0.0, 1.0),
    min_degree=st.integers(0, 4),
    holes=st.booleans(),
)
def test_pair_kernel_gives_the_pair_table_of_the_touched_entries(
    seed: int, share: float, min_degree: int, holes: bool
) -> None:
    """:func:`local_pairs` against :func:`pair_table_of` of the entries with a changed end."""
    from ccgraph.graph.build import pair_table_of
    from ccgraph.update._edge_kernels import local_pairs

    g = np.random.default_rng(seed)
    n, k = 30, 4
    indices = np.array([g.choice(np.r_[:r, r + 1 : n], size=k, replace=False) for r in range(n)])
    distances = np.round(g.random((n, k)), 1).astype(np.float32)  # ties in both directions
    if holes:
        indices[g.random((n, k)) < 0.2] = -1
    changed = g.random(n) < share
    touch = changed[:, None] | changed[np.maximum(indices, 0)] & (indices >= 0)
    r, s = np.nonzero(touch)
    want = pair_table_of(r, indices[r, s], distances[r, s], s, n=n, min_degree=min_degree)
    got = dict(
        zip(["u", "v", "dist", "in_uv", "in_vu", "top_m"],
            local_pairs(indices, distances, changed, min_degree), strict=True)
    )  # fmt: skip
    order = np.lexsort((got["v"], got["u"]))  # the kernel lists pairs unsorted
    for name, value in want.items():
        np.testing.assert_array_equal(got[name][order], value, err_msg=name)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.floats(0.0, 1.0))
def test_merge_kernel_is_scipys_sum_of_kept_and_new_edges(seed: int, share: float) -> None:
    """:func:`merge_edges` against the sparse sum it replaces (zeros, overlaps, empty rows)."""
    import scipy.sparse as sp

    from ccgraph.graph.build import _symmetric
    from ccgraph.update._edge_kernels import merge_edges

    g = np.random.default_rng(seed)
    n = 25
    old = sp.random(n, n, density=0.2, random_state=seed, format="csr", dtype=np.float32)
    old = sp.csr_matrix(old + old.T)
    old.data[g.random(old.nnz) < 0.1] = 0.0  # explicit zeros never stay
    changed = g.random(n) < share
    pairs = {(int(a), int(b)) for a, b in g.integers(0, n, size=(20, 2)) if a < b}
    u, v = (np.array(x, dtype=np.int64) for x in zip(*sorted(pairs), strict=True))
    w = g.choice([0.0, 0.25, 0.5, 1.0], size=len(u)).astype(np.float32)
    rows_of = np.repeat(np.arange(n), np.diff(old.indptr))
    hold = ~changed[rows_of] & ~changed[old.indices] & (old.data != 0)
    indptr = np.r_[0, np.cumsum(np.bincount(rows_of[hold], minlength=n))]
    kept = sp.csr_matrix((old.data[hold], old.indices[hold], indptr), shape=old.shape)
    want = sp.csr_matrix(kept + _symmetric(n, u, v, w), dtype=np.float32)
    want.sort_indices()
    ptr, col, val = merge_edges(old.indptr, old.indices, old.data, changed, u, v, w)
    np.testing.assert_array_equal(ptr, want.indptr)
    np.testing.assert_array_equal(col, want.indices)
    np.testing.assert_array_equal(val, want.data)


def test_an_unsorted_old_graph_takes_the_sparse_sum_with_the_same_result() -> None:
    x = np.random.default_rng(4).normal(size=(50, 4)).astype(np.float32)
    i, d = knn_search(x, k=4, metric="cosine", backend="exact")
    a = build_knn_graph(x, knn=(i, d), k=4, min_degree=2).adjacency
    changed = np.zeros(50, bool)
    changed[[1, 7, 30]] = True
    opts = dict(metric="cosine", mutual=True, min_degree=2, weighting="cosine", vectors=None)
    fast, info_fast = local_edges(a, i, d, changed, **opts)
    shuffled = a.copy()
    for r in range(50):  # the same matrix, each row's entries reversed
        lo, hi = shuffled.indptr[r], shuffled.indptr[r + 1]
        shuffled.indices[lo:hi] = shuffled.indices[lo:hi][::-1]
        shuffled.data[lo:hi] = shuffled.data[lo:hi][::-1]
    shuffled.has_sorted_indices = False
    assert not shuffled.has_canonical_format
    slow, info_slow = local_edges(shuffled, i, d, changed, **opts)
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
    assert info_fast["n_rebuilt_pairs"] == info_slow["n_rebuilt_pairs"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), extra=st.integers(0, 5))
def test_lists_differ_is_changed_lists_of_the_old_rows(seed: int, extra: int) -> None:
    from ccgraph.update._edge_kernels import lists_differ
    from ccgraph.update._edges import changed_lists

    g = np.random.default_rng(seed)
    m, k = 20, 3
    old = g.integers(-3, 6, size=(m, k)).astype(np.int32)  # -2, -3: slots left empty
    new = np.where(g.random((m + extra, k)) < 0.8, np.r_[old, old[:extra]], -1)
    new = np.maximum(new, -1).astype(np.int32)
    want = changed_lists(np.maximum(old, -1), new[:m], np.zeros(m, dtype=bool))
    np.testing.assert_array_equal(lists_differ(old, new), want)
