"""Duplicate collapse of the kNN search against brute force (exact ties, many duplicates)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.graph import _collapse, knn_search
from ccgraph.graph._collapse import identical_rows
from ccgraph.graph._exact import exact_dense, exact_hamming
from tests.conftest import blobs


def brute_force(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest other rows by (distance, index) from a full float64 matrix."""
    d = d.astype(np.float64).copy()
    np.fill_diagonal(d, np.inf)
    cols = np.arange(d.shape[1])
    order = np.array([np.lexsort((cols, row))[:k] for row in d])
    return order, np.take_along_axis(d, order, axis=1)


def popcount_matrix(codes: np.ndarray) -> np.ndarray:
    ints = [int.from_bytes(r.tobytes(), "big") for r in codes]
    return np.array([[bin(a ^ b).count("1") for b in ints] for a in ints], dtype=np.float64)


@st.composite
def duplicated_rows(draw, kind: str):
    """Rows drawn from a small pool with a skewed choice: big groups, singletons, all equal."""
    n_pool = draw(st.integers(1, 12))
    n = draw(st.integers(2, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    g = np.random.default_rng(seed)
    if kind == "euclidean":  # small integers: every distance is exact in float32
        pool = g.integers(-2, 3, size=(n_pool, 3)).astype(np.float32)
    elif kind == "cosine":  # +-1/4 in 16 dims: unit rows, dot products multiples of 1/16
        pool = (g.integers(0, 2, size=(n_pool, 16)) * 0.5 - 0.25).astype(np.float32)
    else:  # packed 16-bit codes
        pool = g.integers(0, 256, size=(n_pool, 2), dtype=np.uint8)
    weights = g.dirichlet(np.full(n_pool, draw(st.sampled_from([0.2, 1.0, 5.0]))))
    x = pool[g.choice(n_pool, size=n, p=weights)]
    k = draw(st.integers(1, n - 1))
    return x, k


def _oracle(x: np.ndarray, metric: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    if metric == "hamming":
        return brute_force(popcount_matrix(x), k)
    x64 = x.astype(np.float64)
    if metric == "cosine":
        return brute_force(1.0 - x64 @ x64.T, k)
    diff = x64[:, None, :] - x64[None, :, :]
    return brute_force(np.sqrt((diff**2).sum(-1)), k)


@pytest.mark.parametrize("kernel", [False, True], ids=["numpy", "numba"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine", "hamming"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_collapsed_search_is_the_brute_force_knn(metric, kernel, data):
    x, k = data.draw(duplicated_rows(metric))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_collapse, "NUMPY_MAX_ROWS", -1 if kernel else 10**9)
        idx, dist = knn_search(x, k=k, metric=metric, backend="exact")
    o_idx, o_dist = _oracle(x, metric, k)
    np.testing.assert_array_equal(idx, o_idx)
    np.testing.assert_allclose(dist, o_dist, atol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_copies_of_float_vectors_tie_at_zero_in_index_order(metric):
    # random floats: 1 - x.x and |x - x| computed by products are not exactly 0 in float32
    g = np.random.default_rng(8)
    pool = g.normal(size=(40, 24)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    which = g.choice(40, size=300, p=g.dirichlet(np.full(40, 0.3)))
    x = pool[which]
    k = 12
    idx, dist = knn_search(x, k=k, metric=metric, backend="exact")
    # one distance per pair of pool vectors (a BLAS product of x with itself may round
    # equal columns differently), 0 between copies
    p64 = pool.astype(np.float64)
    if metric == "cosine":
        d_pool = 1.0 - p64 @ p64.T
    else:
        d_pool = np.sqrt(((p64[:, None, :] - p64[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d_pool, 0.0)
    o_idx, o_dist = brute_force(d_pool[which][:, which], k)
    np.testing.assert_array_equal(idx, o_idx)
    np.testing.assert_allclose(dist, o_dist, atol=1e-5)
    copies = which[idx] == which[:, None]
    assert copies.any() and (dist[copies] == 0.0).all()  # exactly, not 1 - x.x rounded


@pytest.mark.parametrize("kernel", [False, True], ids=["numpy", "numba"])
def test_expand_lists_pads_empty_slots(monkeypatch, kernel):
    monkeypatch.setattr(_collapse, "NUMPY_MAX_ROWS", -1 if kernel else 10**9)
    rows = identical_rows(np.array([[1], [2], [1], [3]], dtype=np.uint8))
    assert rows is not None and rows.group.tolist() == [0, 1, 0, 2]
    ind = np.array([[1, -1], [-1, -1], [0, 1]])  # an approximate search's unfilled slots
    dist = np.array([[1.0, np.inf], [np.inf, np.inf], [2.0, 1.0]], dtype=np.float32)
    out_i, out_d = _collapse.expand_lists(rows, ind, dist, 3)
    assert out_i.tolist() == [[2, 1, -1], [-1, -1, -1], [0, 1, -1], [1, 0, 2]]
    assert out_d[0].tolist() == [0.0, 1.0, np.inf] and out_d[3].tolist() == [1.0, 2.0, 2.0]


def test_identical_rows_match_numpy_unique():
    g = np.random.default_rng(5)
    pool = g.normal(size=(30, 7)).astype(np.float32)
    x = pool[g.integers(0, 30, size=400)]
    rows = identical_rows(x)
    assert rows is not None
    _, first, inv = np.unique(x, axis=0, return_index=True, return_inverse=True)
    # same partition, groups numbered by their first row, representatives = first rows
    assert len(rows.first) == len(first)
    np.testing.assert_array_equal(rows.first, np.sort(first))
    np.testing.assert_array_equal(rows.first[rows.group], first[inv.ravel()])


def test_hash_collisions_never_merge_different_rows(monkeypatch):
    g = np.random.default_rng(6)
    pool = g.normal(size=(8, 5)).astype(np.float32)
    x = pool[g.integers(0, 8, size=60)]
    monkeypatch.setattr(_collapse, "row_hashes", lambda w: np.zeros(len(w), dtype=np.uint64))
    rows = identical_rows(x)
    assert rows is not None
    same = (x[:, None, :] == x[None, :, :]).all(-1)
    np.testing.assert_array_equal(rows.group[:, None] == rows.group[None, :], same)
    # every row distinct, but all hashes equal: no groups at all
    assert identical_rows(pool) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_odd_row_lengths_are_compared_whole(dtype):
    # 3 bytes / 12 bytes / 24 bytes per row: padded or 32-bit word views
    x = np.array([[1, 2, 3], [1, 2, 4], [1, 2, 3]], dtype=dtype)
    rows = identical_rows(x)
    assert rows is not None and rows.group.tolist() == [0, 1, 0]


def test_no_duplicates_leaves_the_search_unchanged():
    x, _ = blobs(400, 12, centers=5, seed=2)
    assert identical_rows(x) is None
    idx, dist = knn_search(x, k=9, backend="exact", n_jobs=1)
    ref_i, ref_d = exact_dense(np.ascontiguousarray(x, dtype=np.float32), 9, metric="cosine")
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_array_equal(dist, ref_d)
    codes = np.random.default_rng(1).integers(0, 256, size=(300, 8), dtype=np.uint8)
    np.testing.assert_array_equal(
        knn_search(codes, k=5, metric="hamming", backend="exact")[0], exact_hamming(codes, 5)[0]
    )


def test_groups_larger_than_k_and_all_identical_input():
    x = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (50, 1))
    idx, dist = knn_search(x, k=4, backend="exact")
    expect = [[j for j in range(6) if j != i][:4] for i in range(50)]
    np.testing.assert_array_equal(idx, expect)
    assert (dist == 0).all()
    # one huge group and one singleton: the singleton lists the group's lowest rows
    y = np.vstack([x, [[1.0, 0.0]]]).astype(np.float32)
    idx, dist = knn_search(y, k=3, backend="exact")
    assert idx[50].tolist() == [0, 1, 2]
    assert idx[7].tolist() == [0, 1, 2] and idx[0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("backend", ["cells", "pynndescent"])
def test_tiny_distinct_sets_with_approximate_backends(backend):
    # 3 distinct rows among 40: every list holds all other groups, searched exactly
    x = np.eye(3, dtype=np.float32)[np.arange(40) % 3]
    idx, dist = knn_search(x, k=20, backend=backend, rng=0)
    o_idx, o_dist = _oracle(x, "cosine", 20)
    np.testing.assert_array_equal(idx, o_idx)
    np.testing.assert_allclose(dist, o_dist, atol=1e-6)


def test_cells_backend_with_duplicates_lists_copies_first():
    x, _ = blobs(600, 16, centers=6, seed=4)
    g = np.random.default_rng(0)
    x = np.vstack([x, x[g.integers(0, 600, size=300)]])  # 300 copies
    idx, dist = knn_search(x, k=8, backend="cells", rng=0)
    rows = identical_rows(x)
    assert rows is not None and rows.n_groups == 600
    same = rows.group[idx] == rows.group[:, None]
    n_mates = np.bincount(rows.group)[rows.group] - 1
    # copies come first, at distance 0, in index order
    assert (same.sum(axis=1) == np.minimum(n_mates, 8)).all()
    assert (dist[same] == 0).all() and (dist[~same] > 0).all()
    ref, _ = knn_search(x, k=8, backend="exact")
    recall = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(idx, ref, strict=True)])
    assert recall > 0.95


def test_collapse_is_logged(caplog):
    x = np.eye(5, dtype=np.float32)[[0, 1, 2, 3, 4, 0, 0]]
    with caplog.at_level(logging.INFO, logger="ccgraph.graph.knn"):
        knn_search(x, k=2)
    assert "2 of 7 rows are exact duplicates; searching 5 distinct rows" in caplog.text
