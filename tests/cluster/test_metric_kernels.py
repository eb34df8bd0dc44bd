"""The cluster-sums kernel against the numpy sums it replaces (bit for bit)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.cluster._common import strength64
from ccgraph.cluster._metric_kernels import cluster_sums


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    density=st.floats(0.0, 0.6),
    k=st.integers(1, 8),
    seed=st.integers(0, 2**31 - 1),
)
def test_cluster_sums_match_the_bincounts(n: int, density: float, k: int, seed: int) -> None:
    a = sp.random(n, n, density=density, random_state=seed, format="csr", dtype=np.float32)
    a = sp.csr_matrix(a + a.T)
    mem = np.random.default_rng(seed).integers(0, k, n)
    coo = a.tocoo()
    same = mem[coo.row] == mem[coo.col]
    ref_internal = np.bincount(mem[coo.row[same]], weights=coo.data[same], minlength=k)
    ref_volume = np.bincount(mem, weights=strength64(a), minlength=k)
    internal, volume = cluster_sums(a.indptr, a.indices, a.data, mem, k)
    assert np.array_equal(internal, ref_internal)
    assert np.array_equal(volume, ref_volume)
