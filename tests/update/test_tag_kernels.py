"""The tag-spreading kernels of an update against the numpy/scipy code they replace, bit for bit."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.update._tag_kernels import csr_find, flat_sweep, top_k_sorted


def _random_csr(n_rows: int, n_cols: int, density: float, seed: int) -> sp.csr_matrix:
    m = sp.random(n_rows, n_cols, density=density, random_state=seed, format="csr")
    m.sum_duplicates()
    return m


@settings(max_examples=40, deadline=None)
@given(
    n_rows=st.integers(1, 30),
    n_cols=st.integers(1, 30),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
)
def test_csr_find_is_a_sorted_key_lookup(
    n_rows: int, n_cols: int, density: float, seed: int
) -> None:
    m = _random_csr(n_rows, n_cols, density, seed)
    g = np.random.default_rng(seed)
    rows = g.integers(0, n_rows, 200)
    cols = g.integers(0, n_cols, 200)
    got = csr_find(m.indptr, m.indices, rows, cols)
    # oracle: the entries' (row, col) keys, sorted as a canonical CSR lists them
    keys = np.repeat(np.arange(n_rows), np.diff(m.indptr)) * n_cols + m.indices
    want = np.full(len(rows), -1)
    for i, key in enumerate(rows * n_cols + cols):
        hit = np.flatnonzero(keys == key)
        if len(hit):
            want[i] = hit[0]
    np.testing.assert_array_equal(got, want)
    dense = m.toarray()
    found = got >= 0
    np.testing.assert_array_equal(m.data[got[found]], dense[rows[found], cols[found]])


def _expanded(s: sp.csr_matrix, start: np.ndarray, width: np.ndarray) -> sp.csr_matrix:
    """The flat operator as the update built it before the kernel: ``S`` on every cell."""
    e = sp.coo_matrix(s)
    rep = width[e.row]
    within = np.arange(int(rep.sum())) - np.repeat(np.cumsum(rep) - rep, rep)
    size = int(start[-1])
    return sp.csr_matrix(
        (
            np.repeat(e.data, rep),
            (np.repeat(start[e.row], rep) + within, np.repeat(start[e.col], rep) + within),
        ),
        shape=(size, size),
    )


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 25), seed=st.integers(0, 10_000), sweeps=st.integers(1, 6))
def test_flat_sweeps_equal_the_expanded_matrix_sweeps(n: int, seed: int, sweeps: int) -> None:
    from scipy.sparse.csgraph import connected_components

    from ccgraph.propagate._solver import _omegas

    g = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.2, random_state=seed, format="csr")
    s = sp.csr_matrix(a + a.T) * 0.3
    s.sum_duplicates()
    _, comp = connected_components(s, directed=False)
    per_comp = g.integers(0, 4, comp.max() + 1)  # cells of each component's rows
    width = per_comp[comp].astype(np.int64)
    start = np.concatenate([[0], np.cumsum(width)]).astype(np.int64)
    b = g.random(int(start[-1]))
    f0 = g.random(int(start[-1]))
    m = _expanded(s, start, width)
    alpha = 0.8
    want_f, want_prev = f0, f0
    got_f, got_prev = f0, f0
    omegas_a, omegas_b = _omegas(alpha, "chebyshev"), _omegas(alpha, "chebyshev")
    for _ in range(sweeps):
        omega = next(omegas_a)
        y = alpha * (m @ want_f) + b
        want_change = float(np.abs(y - want_f).max(initial=0.0))
        want_prev, want_f = want_f, omega * y + (1.0 - omega) * want_prev
        out = np.empty_like(got_f)
        change = flat_sweep(
            s.indptr, s.indices, s.data, start, width, alpha, b, got_f, got_prev,
            next(omegas_b), out,
        )  # fmt: skip
        got_prev, got_f = got_f, out
        assert change == want_change
        np.testing.assert_array_equal(got_f, want_f)  # the same floats, not close ones


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 12), min_size=1, max_size=20),
    top_k=st.integers(0, 6),
    seed=st.integers(0, 10_000),
    ties=st.booleans(),
)
def test_top_k_equals_a_stable_sort(counts: list[int], top_k: int, seed: int, ties: bool) -> None:
    g = np.random.default_rng(seed)
    rows = np.repeat(np.arange(len(counts)), counts)
    score = g.integers(1, 4, len(rows)).astype(np.float64) if ties else g.random(len(rows))
    pick, rank = top_k_sorted(rows, score, top_k)
    order = np.lexsort((-score, rows))  # the numpy code path
    srt = rows[order]
    first = np.flatnonzero(np.r_[True, srt[1:] != srt[:-1]]) if len(srt) else np.zeros(0, int)
    want_rank = np.arange(len(srt)) - np.repeat(first, np.diff(np.r_[first, len(srt)])) + 1
    keep = want_rank <= top_k
    np.testing.assert_array_equal(pick, order[keep])
    np.testing.assert_array_equal(rank, want_rank[keep])


def _seed_values_scipy(
    s: sp.csr_matrix, y: sp.csr_matrix, known: sp.csr_matrix, alpha: float, sweeps: int
) -> np.ndarray:
    """The numpy/scipy code :func:`seed_sweeps` replaced (``tags._seed_values``)."""
    n = y.shape[0]
    yc = sp.csr_matrix(y)
    yc.sum_duplicates()
    e_row = np.repeat(np.arange(n), np.diff(yc.indptr))
    e_col, e_y = yc.indices.astype(np.int64), yc.data
    cnt = np.diff(s.indptr)[e_row]
    src = np.repeat(np.arange(len(e_row)), cnt)
    first = np.repeat(s.indptr[e_row] - (np.cumsum(cnt) - cnt), cnt)
    p = first + np.arange(len(src))
    v, w = s.indices[p], s.data[p]
    tag = e_col[src]
    kn = sp.csr_matrix(known)
    kn.sum_duplicates()
    at = csr_find(kn.indptr, kn.indices, v, tag)
    hit = at >= 0
    fixed = np.bincount(src[hit], weights=w[hit] * kn.data[at[hit]], minlength=len(e_row))
    at = csr_find(yc.indptr, yc.indices, v, tag)
    hit = at >= 0
    m = sp.csr_matrix((w[hit], (src[hit], at[hit])), shape=(len(e_row), len(e_row)))
    est = (1.0 - alpha) * e_y
    for _ in range(sweeps):
        est = (1.0 - alpha) * e_y + alpha * (fixed + m @ est)
    return est


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    n_tags=st.integers(1, 8),
    density=st.floats(0.0, 0.5),
    sweeps=st.integers(0, 6),
    alpha=st.floats(0.05, 0.99),
    seed=st.integers(0, 10_000),
)
def test_seed_sweeps_equal_the_sparse_products(
    n: int, n_tags: int, density: float, sweeps: int, alpha: float, seed: int
) -> None:
    from ccgraph.update._tag_kernels import seed_sweeps
    from ccgraph.update.tags import _normalised

    w = _random_csr(n, n, density, seed)
    s, _ = _normalised(sp.csr_matrix(w + w.T))
    y = _random_csr(n, n_tags, 0.3, seed + 1)
    known = _random_csr(n, n_tags, 0.4, seed + 2)
    known = sp.csr_matrix(known - known.multiply(y.astype(bool)))  # zero at the seed entries
    known.sum_duplicates()
    want = _seed_values_scipy(s, y, known, alpha, sweeps)
    got = seed_sweeps(
        s.indptr, s.indices, s.data, y.indptr, y.indices, y.data,
        known.indptr, known.indices, known.data, alpha, sweeps,
    )  # fmt: skip
    np.testing.assert_array_equal(got, want)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 40),
    density=st.floats(0.0, 0.6),
    zeros=st.booleans(),
    alpha=st.floats(0.05, 0.99),
    seed=st.integers(0, 10_000),
)
def test_operator_from_degrees_and_normalised_are_build_operator_and_the_diag_products(
    n: int, density: float, zeros: bool, alpha: float, seed: int
) -> None:
    from ccgraph.propagate._graph import build_operator
    from ccgraph.update.tags import _normalised, degrees

    w = _random_csr(n, n, density, seed).astype(np.float32)
    a = sp.csr_matrix(w + w.T)  # isolated nodes too
    if zeros and a.nnz:
        a.data[:: max(1, a.nnz // 3)] = 0.0  # explicit zero weights (the operator drops them)
    want = build_operator(a, alpha=alpha, dtype=np.dtype(np.float64), reorder="none")
    got = build_operator(
        a, alpha=alpha, dtype=np.dtype(np.float64), reorder="none", degrees=degrees(a).deg
    )
    for name in ("indptr", "indices", "data"):
        have, ref = getattr(got.m, name), getattr(want.m, name)
        assert have.dtype == ref.dtype
        np.testing.assert_array_equal(have, ref)
    np.testing.assert_array_equal(got.sqrt_d, want.sqrt_d)
    np.testing.assert_array_equal(got.bounds, want.bounds)
    assert got.perm is None and got.alpha == want.alpha
    # the region solve's S = D^-1/2 W D^-1/2, as numpy's products make it
    w64 = sp.csr_matrix(a, dtype=np.float64)
    deg = np.asarray(w64.sum(axis=1)).ravel()
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    rows = np.repeat(np.arange(n), np.diff(w64.indptr))
    s, d = _normalised(a)
    np.testing.assert_array_equal(s.data, (inv[rows] * w64.data) * inv[w64.indices])
    np.testing.assert_array_equal(s.indices, w64.indices)
    np.testing.assert_array_equal(d, deg)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), density=st.floats(0.0, 0.6), seed=st.integers(0, 10_000))
def test_split_rows_is_the_masked_row_selection(n: int, density: float, seed: int) -> None:
    from ccgraph.update._tag_kernels import split_rows

    m = _random_csr(n, n, density, seed)
    g = np.random.default_rng(seed)
    region = g.random(n) < 0.4
    r = np.flatnonzero(region)
    to_r = np.full(n, -1, dtype=np.int64)
    to_r[r] = np.arange(len(r))
    o_ptr, o_idx, o_val, i_ptr, i_idx, i_val = split_rows(m.indptr, m.indices, m.data, r, to_r)
    dense = m.toarray()[r]
    out = sp.csr_matrix((o_val, o_idx, o_ptr), shape=(len(r), n))
    inside = sp.csr_matrix((i_val, i_idx, i_ptr), shape=(len(r), len(r)))
    np.testing.assert_array_equal(out.toarray(), np.where(region[None, :], 0.0, dense))
    np.testing.assert_array_equal(inside.toarray(), dense[:, r])
    assert out.nnz + inside.nnz == m[r].nnz
    assert out.has_canonical_format and inside.has_canonical_format


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 60),
    density=st.floats(0.0, 0.5),
    alpha=st.floats(0.05, 0.99),
    tol=st.sampled_from([1e-3, 1e-6, 1e-9]),
    max_iter=st.sampled_from([0, 1, 3, 1000]),
    seed=st.integers(0, 10_000),
)
def test_item_mass_is_spread_mass_bit_for_bit(
    n: int, density: float, alpha: float, tol: float, max_iter: int, seed: int
) -> None:
    from ccgraph.containers import KnnGraph, TagSet
    from ccgraph.propagate._graph import build_operator
    from ccgraph.propagate.spreading import spread_mass
    from ccgraph.update.tags import item_mass

    w = _random_csr(n, n, density, seed)
    a = sp.csr_matrix(w + w.T)
    a.setdiag(0)
    a.eliminate_zeros()
    graph = KnnGraph.from_adjacency(a)  # isolated nodes too
    y = _random_csr(n, 4, 0.3, seed + 1).astype(np.float32)
    seeds = TagSet(y, graph.ids, np.array(["a", "b", "c", "d"]))
    op = build_operator(graph.adjacency, alpha=alpha, dtype=np.dtype(np.float64), reorder="none")
    want = spread_mass(op, sp.csr_matrix(seeds.matrix), tol=tol, max_iter=max_iter)
    got = item_mass(graph, seeds, alpha=alpha, tol=tol, max_iter=max_iter)
    np.testing.assert_array_equal(got, want)
