"""cheb_step_dense: narrow blocks (one or two columns) compute what wide blocks compute."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.propagate._kernels import cheb_step_dense


def _step(m, x, x_prev, b, omega, w, bounds):
    xp = x_prev.copy()
    res_max = np.zeros((len(bounds) - 1, x.shape[1]))
    res_l1 = np.zeros((len(bounds) - 1, x.shape[1]))
    cheb_step_dense(
        m.indptr, m.indices, m.data, x, xp, b, omega, w, bounds, res_max, res_l1,
        0, len(bounds) - 1,
    )  # fmt: skip
    return xp, res_max, res_l1


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 40),
    density=st.floats(0.0, 0.5),
    omega=st.floats(1.0, 1.9),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),  # popularity's and the tags' solves
)
def test_narrow_blocks_match_a_wide_block_bit_for_bit(
    n: int, density: float, omega: float, seed: int, dtype: type
) -> None:
    g = np.random.default_rng(seed)
    m = sp.random(n, n, density=density, random_state=seed, format="csr", dtype=np.float64)
    m.sort_indices()
    m = m.astype(dtype)
    bounds = np.unique(np.r_[0, g.integers(0, n + 1, 3), n]).astype(np.int64)
    x, x_prev, b = (np.ascontiguousarray(g.normal(size=(n, 3)), dtype=dtype) for _ in range(3))
    w = g.random(n)
    wide = _step(m, x, x_prev, b, omega, w, bounds)
    for cols in ([0], [2], [0, 1], [1, 2]):
        sub = (np.ascontiguousarray(a[:, cols]) for a in (x, x_prev, b))
        narrow = _step(m, *sub, omega, w, bounds)
        for got, ref in zip(narrow, wide, strict=True):
            assert np.array_equal(got, ref[:, cols])
    if dtype is np.float32:
        return
    # and the sweep itself: J = M x + b, x_prev <- omega J + (1 - omega) x_prev
    j = m @ x + b
    np.testing.assert_allclose(wide[0], omega * j + (1 - omega) * x_prev, rtol=1e-12, atol=1e-12)
    r = np.abs(j - x)
    for c, (a, z) in enumerate(itertools.pairwise(bounds)):
        np.testing.assert_allclose(wide[1][c], r[a:z].max(axis=0, initial=0.0), rtol=1e-12)
        np.testing.assert_allclose(wide[2][c], (w[a:z, None] * r[a:z]).sum(axis=0), rtol=1e-12)
