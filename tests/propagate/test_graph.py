"""The normalised operator against the sparse diagonal products that define it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ccgraph.propagate._graph import build_operator


@pytest.mark.parametrize("alpha", [0.8, 0.85])
def test_operator_entries_are_the_diagonal_products_bitwise(alpha: float) -> None:
    rng = np.random.default_rng(3)
    a = sp.random(77, 77, density=0.08, random_state=rng, format="csr", dtype=np.float32)
    a = sp.csr_matrix(a.maximum(a.T))
    a = sp.csr_matrix(sp.block_diag([a, sp.csr_matrix((3, 3), dtype=np.float32)]))  # isolated
    before = (a.indptr.copy(), a.indices.copy(), a.data.copy())
    op = build_operator(a, alpha=alpha, dtype=np.dtype(np.float64), reorder="none")
    w = sp.csr_matrix(a, dtype=np.float64)
    d = np.sqrt(np.asarray(w.sum(axis=1)).ravel())
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    want = sp.csr_matrix(sp.diags(alpha * inv) @ w @ sp.diags(inv))
    want.sort_indices()
    assert np.array_equal(op.m.indptr, want.indptr)
    assert np.array_equal(op.m.indices, want.indices)
    assert np.array_equal(op.m.data, want.data)
    after = (a.indptr, a.indices, a.data)
    assert all(np.array_equal(x, y) for x, y in zip(before, after, strict=True))  # not mutated


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", [0, 1])
def test_operator_kernel_equals_the_sparse_products(dtype: str, seed: int) -> None:
    """A canonical graph takes the one-pass kernel; the same matrix with rows reversed the
    numpy/scipy products (then sorted): the operators are bitwise equal."""
    g = np.random.default_rng(seed)
    a = sp.random(80, 80, density=0.1, random_state=seed, format="csr", dtype=np.float32)
    a = sp.csr_matrix(a + a.T)
    a.data[g.random(a.nnz) < 0.1] = 0.0  # explicit zeros are dropped by both
    assert a.has_canonical_format
    fast = build_operator(a, alpha=0.85, dtype=np.dtype(dtype), reorder="none")
    b = a.copy()
    for r in range(80):
        lo, hi = b.indptr[r], b.indptr[r + 1]
        b.indices[lo:hi], b.data[lo:hi] = b.indices[lo:hi][::-1], b.data[lo:hi][::-1]
    b.has_sorted_indices = False
    slow = build_operator(b, alpha=0.85, dtype=np.dtype(dtype), reorder="none")
    for name in ("indptr", "indices", "data"):
        x, y = getattr(fast.m, name), getattr(slow.m, name)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(fast.sqrt_d, slow.sqrt_d)
    np.testing.assert_array_equal(fast.bounds, slow.bounds)
    assert fast.m.has_sorted_indices and fast.perm is None
