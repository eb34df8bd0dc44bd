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
