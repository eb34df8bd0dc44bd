"""The ``cells`` kNN backend (overlapping k-means cells + refinement) against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from ccgraph.exceptions import ParameterError
from ccgraph.graph import choose_backend, knn_search
from ccgraph.graph._ivf_kernels import reverse_lists
from tests.conftest import blobs


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(a) & set(e)) for a, e in zip(approx.tolist(), exact.tolist(), strict=True)]
    return float(np.sum(hits) / exact.size)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_recall_against_exact(metric):
    x, _ = blobs(6000, 32, centers=40, spread=0.3, seed=3)
    opts = {"cell_size": 500}  # 12 cells: the cell search and refinement both matter
    idx, dist = knn_search(x, k=10, metric=metric, backend="cells", rng=0, options=opts)
    e_idx, e_dist = knn_search(x, k=10, metric=metric, backend="exact")
    assert _recall(idx, e_idx) >= 0.95
    assert idx.dtype == np.int32 and dist.dtype == np.float32
    assert (idx != np.arange(len(x))[:, None]).all()  # no self
    assert (np.diff(dist, axis=1) >= 0).all()  # sorted
    # Every returned distance is the true distance to that neighbour.
    xn = x / np.linalg.norm(x, axis=1, keepdims=True) if metric == "cosine" else x
    rows = np.arange(len(x))[:, None]
    if metric == "cosine":
        true = 1.0 - np.einsum("ij,ikj->ik", xn, xn[idx])
    else:
        true = np.linalg.norm(x[rows] - x[idx], axis=2)
    np.testing.assert_allclose(dist, true, atol=1e-4)
    # The approximation only misses: its k-th distance is never below the exact one.
    assert (dist[:, -1] >= e_dist[:, -1] - 1e-5).all()


def test_same_seed_same_lists_and_threads_do_not_matter():
    x, _ = blobs(3000, 16, centers=20, spread=0.4, seed=5)
    opts = {"cell_size": 200}
    a = knn_search(x, k=8, backend="cells", rng=7, options=opts)
    b = knn_search(x, k=8, backend="cells", rng=7, options=opts, n_jobs=1)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_one_cell_is_exact():
    x, _ = blobs(200, 8, centers=3, seed=1)
    idx, dist = knn_search(x, k=6, backend="cells", rng=0)  # 200 items: a single cell
    e_idx, e_dist = knn_search(x, k=6, backend="exact")
    np.testing.assert_allclose(dist, e_dist, atol=1e-5)
    assert (idx == e_idx).mean() > 0.99


def test_cells_refuse_bit_codes_and_auto_picks_them_for_large_dense_inputs():
    codes = np.random.default_rng(0).integers(0, 256, size=(50, 8), dtype=np.uint8)
    with pytest.raises(ParameterError, match="cells"):
        knn_search(codes, k=5, metric="hamming", backend="cells")
    assert choose_backend(2_000_000, "cosine") == "cells"


def test_reverse_lists_equal_a_sorting_oracle():
    g = np.random.default_rng(2)
    n, k, cap = 300, 6, 4
    ind = g.integers(-1, n, size=(n, k))
    new = g.random((n, k)) < 0.5
    indptr, src, flag = reverse_lists(ind, new, cap)
    for j in range(n):
        # nearest ranks first, then rows; the first `cap` of them
        listed = sorted((r, i) for i in range(n) for r in range(k) if ind[i, r] == j)[:cap]
        want = [i for _, i in listed]
        got = src[indptr[j] : indptr[j + 1]].tolist()
        assert got == want
        assert flag[indptr[j] : indptr[j + 1]].tolist() == [new[i, r] for r, i in listed]
