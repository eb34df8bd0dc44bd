from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph import KnnGraph
from ccgraph.exceptions import ConvergenceWarning, InputError, ParameterError
from ccgraph.propagate import local_ppr, personalized_pagerank, personalized_pagerank_batch
from tests.propagate._graphs import random_graph


def _nx_pagerank(g: KnnGraph, v: np.ndarray, alpha: float) -> np.ndarray:
    a = g.adjacency.astype(np.float64)
    graph = nx.from_scipy_sparse_array(a)
    graph.add_nodes_from(range(a.shape[0]))  # isolated nodes are dangling
    pers = {i: float(v[i]) for i in range(len(v))}
    pr = nx.pagerank(
        graph, alpha=alpha, personalization=pers, tol=1e-12, max_iter=10_000, weight="weight"
    )
    return np.array([pr[i] for i in range(len(v))])


@pytest.mark.parametrize("alpha", [0.5, 0.85, 0.95])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_networkx_with_dangling_nodes(alpha, seed):
    g = random_graph(n=50, seed=seed, isolated=3)
    rng = np.random.default_rng(seed)
    v = rng.random(50) * (rng.random(50) < 0.3)
    v[-1] = 0.7  # restart mass on a dangling node too
    ours = personalized_pagerank(g, v, alpha=alpha)
    np.testing.assert_allclose(ours, _nx_pagerank(g, v, alpha), atol=1e-6)
    assert ours.sum() == pytest.approx(1.0, abs=1e-12)
    assert (ours >= 0).all()


def test_matches_networkx_on_karate():
    graph = nx.karate_club_graph()
    a = nx.to_scipy_sparse_array(graph, nodelist=range(34), weight="weight", format="csr")
    g = KnnGraph.from_adjacency(a)
    v = np.zeros(34)
    v[[0, 33]] = [1.0, 2.0]
    ref = nx.pagerank(
        graph, alpha=0.85, personalization={0: 1.0, 33: 2.0}, tol=1e-12, max_iter=10_000
    )
    np.testing.assert_allclose(personalized_pagerank(g, v), [ref[i] for i in range(34)], atol=1e-6)


def test_batch_equals_loop_of_single():
    g = random_graph(n=70, seed=3, isolated=2)
    rng = np.random.default_rng(3)
    p = rng.random((70, 9)) * (rng.random((70, 9)) < 0.2)
    p[0, :] += 0.1
    batch = personalized_pagerank_batch(g, p, block=4)
    loop = np.column_stack([personalized_pagerank(g, p[:, j]) for j in range(9)])
    np.testing.assert_allclose(batch, loop, atol=1e-9)
    sparse = personalized_pagerank_batch(g, sp.csr_matrix(p), block=9)
    np.testing.assert_allclose(sparse, batch, atol=1e-9)
    f32 = personalized_pagerank_batch(g, p, dtype="float32", tol=1e-6)
    np.testing.assert_allclose(f32, batch, atol=1e-5)


def test_batch_zero_column_is_refused_like_the_single_version():
    # before: the batch returned a zero column where personalized_pagerank raised
    g = random_graph(n=30, seed=4)
    p = np.zeros((30, 3))
    p[0, 0] = p[5, 2] = 1.0
    for restart in (p, sp.csr_matrix(p)):
        with pytest.raises(InputError, match=r"`personalizations` has 1 all-zero .*column 1\b"):
            personalized_pagerank_batch(g, restart)
    with pytest.raises(InputError, match="all zero"):
        personalized_pagerank(g, p[:, 1])


@pytest.mark.parametrize("sparse", [False, True])
def test_single_refuses_a_2d_restart(sparse):
    # before: personalized_pagerank(G, np.ones((n, 2))) answered for the first column only
    g = random_graph(n=20)
    v = np.ones((20, 2))
    with pytest.raises(InputError, match=r"shape \(20, 2\).*personalized_pagerank_batch"):
        personalized_pagerank(g, sp.csr_matrix(v) if sparse else v)
    row = personalized_pagerank(g, np.ones((1, 20)))  # one row or one column is one vector
    np.testing.assert_allclose(row, personalized_pagerank(g, np.ones(20)))


@pytest.mark.parametrize("seeds", [[1.5], [0, 2.25], [np.nan]])
def test_local_ppr_refuses_fractional_positions(seeds):
    # before: [1.5] was truncated to position 1 silently
    g = random_graph(n=20)
    shown = str(next(s for s in seeds if s != int(np.nan_to_num(s))))
    with pytest.raises(InputError, match=rf"whole numbers .*got {shown} in"):
        local_ppr(g, seeds)
    np.testing.assert_array_equal(
        local_ppr(g, [1.0, 3.0]).toarray(), local_ppr(g, [1, 3]).toarray()
    )


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    ("bad", "pattern"),
    [(np.nan, r"is nan \(not finite"), (np.inf, r"is inf \(not finite"), (-0.5, r"is -0\.5 \(neg")],
)
def test_local_ppr_names_a_bad_restart_weight(bad, pattern, sparse):
    # before: [nan, 1, 0, ...] said "needs a positive, finite restart weight" (there is one)
    g = random_graph(n=20)
    v = np.zeros(20)
    v[[2, 9]] = 1.0
    v[[4, 11]] = bad
    with pytest.raises(InputError, match=pattern + r".*2 such.*positions \[4, 11\]"):
        local_ppr(g, sp.csr_matrix(v) if sparse else v)
    with pytest.raises(InputError, match=r"position 4 is"):
        local_ppr(g, sp.csr_matrix(v) if sparse else v)
    with pytest.raises(InputError, match="at least one positive, finite restart weight"):
        local_ppr(g, np.zeros(20))
    good = np.zeros(20)
    good[[2, 9]] = 1.0
    np.testing.assert_array_equal(local_ppr(g, good).toarray(), local_ppr(g, [2, 9]).toarray())


def test_local_push_close_to_global():
    g = random_graph(n=300, density=0.03, seed=5, isolated=0, split=None)
    seeds = [3, 17, 42]
    v = np.zeros(300)
    v[seeds] = 1 / 3
    exact = personalized_pagerank(g, v, tol=1e-13)
    deg = np.asarray(g.adjacency.sum(axis=1)).ravel()
    for eps in (1e-3, 1e-4, 1e-5):
        p = local_ppr(g, seeds, epsilon=eps).toarray().ravel()
        err = np.abs(exact - p)
        assert err.sum() <= eps * deg.sum() + 1e-12
        assert (p <= exact + 1e-12).all()  # push never overshoots
    p = local_ppr(g, seeds, epsilon=1e-6).toarray().ravel()
    top = set(np.argsort(-exact)[:20])
    assert len(top & set(np.argsort(-p)[:20])) >= 19


def test_local_push_isolated_seed_matches_global():
    g = random_graph(n=40, seed=6, isolated=2)
    v = np.zeros(40)
    v[[0, 39]] = 0.5  # node 39 is isolated: its walk restarts at the seeds
    exact = personalized_pagerank(g, v, tol=1e-13)
    p = local_ppr(g, sp.csr_array(v.reshape(1, -1)), epsilon=1e-8).toarray().ravel()
    np.testing.assert_allclose(p, exact, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 30), st.integers(0, 1000), st.floats(0.1, 0.95))
def test_ppr_invariants(n, seed, alpha):
    rng = np.random.default_rng(seed)
    w = np.triu((rng.random((n, n)) < 0.2) * rng.random((n, n)), 1)
    g = KnnGraph.from_adjacency(w + w.T)
    v = rng.random(n)
    x = personalized_pagerank(g, v, alpha=alpha)
    assert (x >= 0).all() and x.sum() == pytest.approx(1.0)
    perm = rng.permutation(n)
    gp = KnnGraph.from_adjacency((w + w.T)[np.ix_(perm, perm)])
    np.testing.assert_allclose(personalized_pagerank(gp, v[perm], alpha=alpha), x[perm], atol=1e-9)


def test_bad_inputs():
    g = random_graph(n=20)
    with pytest.raises(InputError, match="personalization"):
        personalized_pagerank(g, np.ones(5))
    with pytest.raises(InputError, match="all zero"):
        personalized_pagerank(g, np.zeros(20))
    with pytest.raises(InputError, match="non-negative"):
        personalized_pagerank(g, -np.ones(20))
    with pytest.raises(ParameterError, match="alpha"):
        personalized_pagerank(g, np.ones(20), alpha=0.0)
    with pytest.raises(InputError, match="seeds"):
        local_ppr(g, [25])
    with pytest.raises(ParameterError, match="epsilon"):
        local_ppr(g, [1], epsilon=0)


def test_local_ppr_refuses_ids_where_positions_are_expected():
    # before: ValueError "could not convert string to float"
    graph = KnnGraph.from_adjacency(sp.csr_matrix(np.ones((3, 3)) - np.eye(3)), ["a", "b", "c"])
    with pytest.raises(
        InputError, match=r"`seeds` must be integer positions .*\['a'\].*get_indexer"
    ):
        local_ppr(graph, ["a"])


def _dense_ppr(w: np.ndarray, v: np.ndarray, alpha: float) -> np.ndarray:
    """Closed form of the dangling-to-restart PPR: solve (I - a P^T - a v dang^T) x = (1-a) v."""
    d = w.sum(axis=1)
    p = np.divide(w, d[:, None], out=np.zeros_like(w), where=d[:, None] > 0)
    m = np.eye(len(w)) - alpha * p.T - alpha * np.outer(v, d == 0)
    x = np.linalg.solve(m, (1 - alpha) * v)
    return x / x.sum()


@pytest.mark.parametrize(("alpha", "tol"), [(0.9999, 1e-4), (1 - 1e-12, 1e-10)])
def test_alpha_near_one_is_not_stopped_after_one_sweep(alpha, tol):
    # ring of 30 + triangle: before, the L1 test was scaled by 1 - alpha, so the first sweep
    # already "converged" and the answer was off by L1 ~1.07 without any warning
    w = np.zeros((34, 34))
    for i in range(30):
        w[i, (i + 1) % 30] = w[(i + 1) % 30, i] = 1.0
    for i, j in [(30, 31), (31, 32), (32, 30)]:
        w[i, j] = w[j, i] = 1.0
    v = np.zeros(34)
    v[[0, 31]] = 0.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = personalized_pagerank(sp.csr_matrix(w), v, alpha=alpha, tol=tol)
    err = np.abs(x - _dense_ppr(w, v, alpha)).sum()
    assert err < 0.01  # right even where the cap stops it early (then it warns)
    if alpha > 1 - 1e-6:
        assert any(issubclass(c.category, ConvergenceWarning) for c in caught)


def test_local_ppr_refuses_alpha_too_close_to_one():
    # before: 1 - alpha = 1e-12 pushed ~1e12 times (a hang)
    g = KnnGraph.from_adjacency(np.array([[0, 1], [1, 0]]))
    with pytest.raises(ParameterError, match=r"alpha.*local_ppr"):
        local_ppr(g, [0], alpha=1 - 1e-12)
    p = local_ppr(g, [0], alpha=0.999, epsilon=1e-6)  # still fine near the bound
    np.testing.assert_allclose(
        p.toarray().ravel(),
        _dense_ppr(np.array([[0.0, 1], [1, 0]]), np.array([1.0, 0.0]), 0.999),
        atol=1e-3,
    )
