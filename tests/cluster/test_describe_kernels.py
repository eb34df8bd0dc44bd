"""The numba kernels of cluster descriptions against the numpy formulas they replace."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ccgraph.cluster._describe_kernels import inner_edges, top_members


def _graph(n: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.1, random_state=rng, format="csr", dtype=np.float32)
    a = sp.csr_matrix(a.maximum(a.T))
    a.setdiag(0)
    a.eliminate_zeros()
    a.data = np.round(a.data * 4) / 4 + np.float32(0.25)  # few distinct weights: many ties
    return a


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inner_edges_equal_bincounts_bitwise(seed: int) -> None:
    a = _graph(60, seed)
    codes = np.random.default_rng(seed).integers(0, 5, a.shape[0])
    coo = a.tocoo()
    same = codes[coo.row] == codes[coo.col]
    count, weight, inner = inner_edges(a.indptr, a.indices, a.data, codes, 5)
    assert np.array_equal(count, np.bincount(codes[coo.row][same], minlength=5))
    assert np.array_equal(
        weight, np.bincount(codes[coo.row][same], weights=coo.data[same], minlength=5)
    )
    assert np.array_equal(inner, np.bincount(coo.row[same], weights=coo.data[same], minlength=60))


@pytest.mark.parametrize("n_top", [1, 3, 50])
def test_top_members_equal_a_stable_sort(n_top: int) -> None:
    rng = np.random.default_rng(n_top)
    codes = rng.integers(0, 6, 200)
    score = rng.integers(0, 4, 200).astype(np.float64)  # many ties: earlier rows first
    codes[codes == 5] = 4  # cluster 5 stays empty
    got = top_members(codes, score, 6, n_top)
    order = np.lexsort((-score, codes))
    for c in range(6):
        want = order[codes[order] == c][:n_top]
        assert got[c, : len(want)].tolist() == want.tolist()
        assert (got[c, len(want) :] == -1).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strength64_equals_bincount_bitwise(seed: int) -> None:
    from ccgraph.cluster._common import strength64

    rng = np.random.default_rng(seed)
    a = _graph(80, seed)
    a.data = rng.random(a.nnz).astype(np.float32) * np.float32(1e3)  # many roundings
    a.data[a.indptr[7] : a.indptr[8]] = 0  # a row without entries
    a.eliminate_zeros()
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    want = np.bincount(rows, weights=a.data.astype(np.float64), minlength=a.shape[0])
    got = strength64(a)
    assert got.dtype == np.float64 and got[7] == 0.0
    assert np.array_equal(got.view(np.int64), want.view(np.int64))
