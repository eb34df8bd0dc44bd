"""Popularity with kept constants against ccgraph.propagate.infer_popularity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.containers import KnnGraph
from ccgraph.propagate import infer_popularity, standardize_popularity
from ccgraph.update.popularity import (
    popularity_constants,
    previous_propagation,
    propagate_from,
    standardize_with,
    update_popularity,
)


def _graph(n: int, seed: int) -> KnnGraph:
    g = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.08, random_state=seed, format="csr")
    a = a + a.T
    a.setdiag(0)
    a.eliminate_zeros()
    a.data = g.uniform(0.2, 1.0, size=a.nnz)
    a = (a + a.T) / 2
    return KnnGraph.from_adjacency(sp.csr_matrix(a))


def _inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    raw = np.where(g.random(n) < 0.4, g.integers(0, 300, n).astype(float), np.nan)
    prov = np.where(g.random(n) < 0.5, "flickr", "wikimedia")
    return raw, prov


def _table(pop: object, prov: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "provider": prov,
            "popularity_observed": pop.observed,  # type: ignore[attr-defined]
            "popularity": pop.value,  # type: ignore[attr-defined]
            "popularity_source": pop.source.astype(str),  # type: ignore[attr-defined]
        }
    )


def _standardized_constants(raw: np.ndarray, prov: np.ndarray) -> tuple[np.ndarray, dict]:
    """Standardise ``raw`` per provider and read the constants back from that items table."""
    std = standardize_popularity(raw, prov)
    table = pd.DataFrame(
        {
            "provider": prov,
            "popularity_observed": raw,
            "popularity": std,
            "popularity_source": np.where(np.isfinite(raw), "observed", "none"),
        }
    )
    return std, popularity_constants(table)


def test_same_data_gives_infer_popularity() -> None:
    graph = _graph(80, 0)
    raw, prov = _inputs(80, 1)
    ref = infer_popularity(graph, raw, prov)
    constants = popularity_constants(_table(ref, prov))
    assert set(constants) == {"flickr", "wikimedia"}
    got = update_popularity(
        graph, raw, prov, constants, alpha=0.85, tol=1e-12, percentile=85.0, r=0.85
    )
    np.testing.assert_array_equal(got.source, ref.source)
    np.testing.assert_allclose(got.value, ref.value, atol=1e-7, equal_nan=True)
    np.testing.assert_allclose(got.confidence, ref.confidence, atol=1e-7)


def test_constants_recovered_exactly() -> None:
    raw, prov = _inputs(200, 2)
    std, constants = _standardized_constants(raw, prov)
    again, fresh = standardize_with(raw, prov, constants, percentile=85.0, r=0.85)
    np.testing.assert_allclose(again, std, atol=1e-12, equal_nan=True)
    assert fresh == {}


def test_new_observations_do_not_move_old_values() -> None:
    raw, prov = _inputs(100, 3)
    std, constants = _standardized_constants(raw, prov)
    # a batch of very popular new items, one from a provider the run never saw
    raw2 = np.r_[raw, [5000.0, 9000.0, 40.0]]
    prov2 = np.r_[prov, ["flickr", "wikimedia", "museum"]]
    new, fresh = standardize_with(raw2, prov2, constants, percentile=85.0, r=0.85)
    np.testing.assert_allclose(new[:100], std, atol=1e-12, equal_nan=True)
    assert list(fresh) == ["museum"] and new[-1] == pytest.approx(0.85)
    # whereas standardising everything again would have moved them
    moved = standardize_popularity(raw2, prov2)[:100]
    assert np.nanmax(np.abs(moved - std)) > 1e-3


def _dense_f(graph: KnnGraph, x: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha)(I - alpha P)^{-1} X`` by a dense solve (isolated rows: ``(1 - alpha) X``)."""
    w = graph.adjacency.toarray().astype(np.float64)
    d = w.sum(axis=1)
    p = np.divide(w, d[:, None], out=np.zeros_like(w), where=d[:, None] > 0)
    return (1 - alpha) * np.linalg.solve(np.eye(len(d)) - alpha * p, x)


@pytest.mark.parametrize("guess", ["cold", "exact", "perturbed", "partly unknown"])
def test_propagation_from_any_start_is_the_dense_solution(guess: str) -> None:
    graph = _graph(90, 6)
    a = sp.lil_matrix(graph.adjacency)
    a[:, 0] = 0  # one isolated node
    a[0, :] = 0
    graph = KnnGraph.from_adjacency(sp.csr_matrix(a))
    g = np.random.default_rng(7)
    obs = g.random(90) < 0.4
    x = np.column_stack([np.where(obs, g.random(90), 0.0), obs.astype(float)])
    want = _dense_f(graph, x, 0.85)
    want[0] = 0.15 * x[0]
    start = {
        "cold": None,
        "exact": want,
        "perturbed": want * g.uniform(0.5, 1.5, want.shape),
        "partly unknown": np.where(g.random((90, 1)) < 0.5, np.nan, want),
    }[guess]
    got, sweeps = propagate_from(graph.adjacency, x, alpha=0.85, tol=1e-12, start=start)
    np.testing.assert_allclose(got, want, atol=1e-10)
    if guess == "exact":
        assert sweeps <= 2


def test_warm_start_agrees_with_personalized_pagerank_of_networkx() -> None:
    nx = pytest.importorskip("networkx")
    graph = _graph(70, 8)
    w = graph.adjacency.toarray()
    restart = np.zeros(70)
    restart[[3, 9, 20]] = 1.0
    x = restart[:, None]
    start = _dense_f(graph, x, 0.85) * 1.1  # a stale solution
    f, _ = propagate_from(graph.adjacency, x, alpha=0.85, tol=1e-12, start=start)
    # F = (1 - a) D^-1 (I - a P^T)^-1 D x: PageRank with restart D x, scaled by its mass
    d = w.sum(axis=1)
    pers = {i: float(d[i] * restart[i]) for i in range(70)}
    pr = nx.pagerank(nx.from_numpy_array(w), alpha=0.85, personalization=pers, tol=1e-14)
    y = np.array([pr[i] for i in range(70)]) * (d @ restart) / (1 - 0.85)
    np.testing.assert_allclose(f[:, 0], (1 - 0.85) * y / d, atol=1e-9)


def test_previous_propagation_reads_back_the_run() -> None:
    graph = _graph(80, 9)
    raw, prov = _inputs(80, 10)
    ref = update_popularity(graph, raw, prov, {}, alpha=0.85, tol=1e-13, percentile=85, r=0.85)
    std = np.where(ref.source == "observed", ref.value, np.nan)
    obs = np.isfinite(std)
    x = np.column_stack([np.where(obs, std, 0.0), obs.astype(float)])
    f = _dense_f(graph, x, 0.85)
    items = pd.DataFrame(
        {
            "popularity": ref.value,
            "popularity_source": pd.array(ref.source.astype(str), dtype="string"),
            "popularity_confidence": ref.confidence,
        }
    )
    rows = np.r_[np.arange(80), -1]
    got = previous_propagation(items, rows, alpha=0.85)
    inferred = np.r_[ref.source == "inferred", False]
    np.testing.assert_allclose(got[inferred], f[inferred[:80]], rtol=1e-9, atol=1e-12)
    assert np.isnan(got[np.r_[obs, True]]).all()  # observed and new: unknown


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jacobi_kernel_has_the_bits_of_the_sparse_products(m: int, seed: int) -> None:
    from ccgraph.update.popularity import _jacobi

    g = np.random.default_rng(seed)
    a = _graph(60, seed).adjacency.copy()
    a.data[g.random(a.nnz) < 0.1] = 0.0  # explicit zeros: the sparse product drops them
    assert a.has_canonical_format
    x = g.random((60, m))
    guess = g.random((60, m))
    rows = np.sort(g.choice(60, size=25, replace=False))
    scale = g.uniform(0.01, 2.0, size=len(rows))
    # the plain sparse products, as popularity ran them before the kernel
    expected = guess.copy()
    p_sub = sp.diags(scale) @ sp.csr_matrix(a[rows])
    for _ in range(7):
        expected[rows] = (1.0 - 0.85) * x[rows] + 0.85 * (p_sub @ expected)
    got = guess.copy()
    _jacobi(a, rows, scale, x, got, 0.85, 7)
    np.testing.assert_array_equal(got, expected)
    # unsorted indices take the plain sparse products: the same values up to rounding
    b = a.copy()
    for r in range(60):
        lo, hi = b.indptr[r], b.indptr[r + 1]
        b.indices[lo:hi], b.data[lo:hi] = b.indices[lo:hi][::-1], b.data[lo:hi][::-1]
    b.has_sorted_indices = False
    assert not b.has_canonical_format
    other = guess.copy()
    _jacobi(b, rows, scale, x, other, 0.85, 7)
    np.testing.assert_allclose(other, expected, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_constants_are_the_groupby_median_of_each_provider(seed: int) -> None:
    """Against pandas' groupby median (even and odd groups, missing providers and sources)."""
    g = np.random.default_rng(seed)
    n = 200
    items = pd.DataFrame(
        {
            "provider": pd.array(g.choice(["b", "a", "c", None], n), dtype="string"),
            "popularity_observed": g.integers(0, 50, n).astype(float),
            "popularity": g.choice([0.0, 0.3, 0.5, 0.9, 1.0, np.nan], n),
            "popularity_source": pd.array(
                g.choice(["observed", "inferred", "none", None], n), dtype="string"
            ),
        }
    )
    obs = items[items["popularity_source"].astype(str) == "observed"]
    x, p = obs["popularity_observed"].to_numpy(), obs["popularity"].to_numpy()
    ok = np.isfinite(x) & np.isfinite(p) & (x > 0) & (p > 0) & (p < 1)
    frame = pd.DataFrame(
        {"provider": obs["provider"].fillna("").astype(str).to_numpy()[ok],
         "c": x[ok] * (1.0 - p[ok]) / p[ok]}
    )  # fmt: skip
    want = {str(k): float(v) for k, v in frame.groupby("provider")["c"].median().items()}
    got = popularity_constants(items)
    assert list(got) == list(want)
    assert got == want


@pytest.mark.parametrize(
    "provider",
    [
        np.array(["b", "a", "b", ""], dtype=object),
        np.array(["b", "a", "b", "c"]),  # unicode dtype
        np.array(["b", None, "a", np.nan], dtype=object),  # missing: ""
        np.array(["b", 3, "a", "3"], dtype=object),  # not all strings
        ["b", "a"],
    ],
)
def test_providers_factorise_as_the_string_series(provider: object) -> None:
    from ccgraph.update.popularity import _providers

    codes, names = _providers(provider)  # type: ignore[arg-type]
    want_codes, want_names = pd.factorize(pd.Series(provider).fillna("").astype(str))
    np.testing.assert_array_equal(codes, want_codes)
    assert [str(x) for x in names] == [str(x) for x in want_names]
    assert all(type(x) is str for x in names)


def _operator(graph: KnnGraph, alpha: float) -> sp.csr_matrix:
    """``M = alpha D^{-1/2} W D^{-1/2}`` as a canonical CSR (plain scipy, no ccgraph code)."""
    w = sp.csr_matrix(graph.adjacency, dtype=np.float64)
    d = np.asarray(w.sum(axis=1)).ravel()
    s = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    m = sp.csr_matrix(alpha * (sp.diags(s) @ w @ sp.diags(s)))
    m.sort_indices()
    return m


@given(
    n=st.integers(2, 40),
    seed=st.integers(0, 2**16),
    alpha=st.floats(0.3, 0.95),
    done=st.sampled_from([None, 0, 1]),
)
@settings(max_examples=40, deadline=None)
def test_gauss_seidel_cg_is_the_dense_solve(
    n: int, seed: int, alpha: float, done: int | None
) -> None:
    """The preconditioned CG correction against ``numpy.linalg.solve(I - M, r)``."""
    from ccgraph.update._pop_kernels import sgs_cg, split_rows

    graph = _graph(n, seed)
    mm = _operator(graph, alpha)
    g = np.random.default_rng(seed)
    r = g.normal(size=(n, 2))
    mid = split_rows(mm.indptr, mm.indices)
    want = np.linalg.solve(np.eye(n) - mm.toarray(), r)
    w = g.uniform(0.1, 1.0, n)
    thr = np.full(2, 1e-13)
    if done is not None:  # a column already done: no correction
        thr[done] = np.inf
        want[:, done] = 0.0
    got, iters = sgs_cg(mm.indptr, mm.indices, mm.data, mid, r, w, thr, 500)
    np.testing.assert_allclose(got, want, atol=1e-10 * max(1.0, np.abs(want).max()))
    assert (iters <= 2 * n + 5).all()  # CG: at most ~n steps in exact arithmetic
    # the bound it stops on holds for the true residual
    res = r - (got - mm @ got)
    assert (w @ np.abs(res) < np.where(np.isinf(thr), np.inf, 1e-9)).all()


def test_split_rejects_a_diagonal_and_the_solve_falls_back() -> None:
    from ccgraph.update._pop_kernels import split_rows

    graph = _graph(50, 3)
    a = sp.lil_matrix(graph.adjacency)
    a[4, 4] = 0.7  # a self-loop: M has a diagonal, the splitting M = L + L^T does not hold
    a = sp.csr_matrix(a)
    a.sort_indices()
    assert split_rows(a.indptr, a.indices)[0] == -1
    mid = split_rows(graph.adjacency.indptr, graph.adjacency.indices)
    ind, ptr = graph.adjacency.indices, graph.adjacency.indptr
    assert all(
        (ind[ptr[i] : mid[i]] < i).all() and (ind[mid[i] : ptr[i + 1]] > i).all() for i in range(50)
    )
    g = np.random.default_rng(4)
    obs = g.random(50) < 0.4
    x = np.column_stack([np.where(obs, g.random(50), 0.0), obs.astype(float)])
    looped = KnnGraph.from_adjacency(a)
    got, _ = propagate_from(looped.adjacency, x, alpha=0.85, tol=1e-12)
    np.testing.assert_allclose(got, _dense_f(looped, x, 0.85), atol=1e-10)


def _weighted_residual(
    adj: sp.csr_matrix, x: np.ndarray, f: np.ndarray, alpha: float
) -> np.ndarray:
    """``sum_u (1 - alpha) sqrt(d_u) |b - (I - M) z|_u`` with ``z = D^{1/2} F / (1 - alpha)``."""
    d = np.asarray(sp.csr_matrix(adj, dtype=np.float64).sum(axis=1)).ravel()
    sd = np.sqrt(d)
    mm = _operator(KnnGraph.from_adjacency(adj), alpha)
    z = sd[:, None] * f / (1 - alpha)
    r = sd[:, None] * x - (z - mm @ z)
    return ((1 - alpha) * sd) @ np.abs(r)


def test_planted_update_needs_fewer_sweeps_and_meets_the_rule() -> None:
    """A run's solution, then 2 % new nodes: the warm CG uses far fewer sweeps than Chebyshev's."""
    from ccgraph.update.popularity import _solve_chebyshev

    n, extra, alpha, tol = 600, 12, 0.85, 1e-10
    full = sp.csr_matrix(_graph(n + extra, 11).adjacency, dtype=np.float64)
    old = KnnGraph.from_adjacency(sp.csr_matrix(full[:n, :n]))
    g = np.random.default_rng(12)
    obs = g.random(n + extra) < 0.3
    x = np.column_stack([np.where(obs, g.random(n + extra), 0.0), obs.astype(float)])
    before = _dense_f(old, x[:n], alpha)  # the run's exact solution
    start = np.full((n + extra, 2), np.nan)
    start[:n] = np.where(obs[:n, None], np.nan, before)  # observed and new rows unknown
    got, sweeps = propagate_from(full, x, alpha=alpha, tol=tol, start=start)
    sums = np.asarray(full.sum(axis=1)).ravel() @ x
    assert (_weighted_residual(full, x, got, alpha) < tol * sums).all()
    new = KnnGraph.from_adjacency(full)
    np.testing.assert_allclose(got, _dense_f(new, x, alpha), atol=1e-11)
    # the Chebyshev sweeps from the same start (the former solve)
    from ccgraph.propagate._graph import build_operator

    op = build_operator(full, alpha=alpha, dtype=np.dtype(np.float64), reorder="none")
    sd = op.sqrt_d
    guess = np.where(np.isfinite(start), start, _dense_f(new, x, alpha))  # even an exact fill-in
    z0 = sd[:, None] * guess / (1 - alpha)
    _, cheb = _solve_chebyshev(op, sd[:, None] * x, z0, tol * sums, alpha=alpha, max_iter=1000)
    assert sweeps < 0.7 * cheb
