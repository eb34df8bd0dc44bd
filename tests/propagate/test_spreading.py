from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccgraph import KnnGraph, Partition, TagSet
from ccgraph.exceptions import ConvergenceWarning, IdMismatchError, InputError, ParameterError
from ccgraph.propagate import spread_tags
from tests.propagate._graphs import dense_inferred, random_graph, random_seeds


@pytest.mark.parametrize("tag_block", [None, 1, 3])
@pytest.mark.parametrize("alpha", [0.5, 0.8, 0.99])
def test_equals_dense_closed_form(tag_block, alpha):
    g = random_graph()
    seeds = random_seeds(g.ids)
    out = spread_tags(
        g,
        seeds,
        alpha=alpha,
        top_k=seeds.n_tags,
        tag_block=tag_block,
        dtype="float64",
        tol=1e-10,
        max_iter=2000,
    )
    ref = dense_inferred(g, seeds, alpha)
    np.testing.assert_allclose(out.scores.toarray(), ref, atol=1e-6, rtol=0)
    assert (out.scores.toarray() > 0).sum() == (ref > 1e-9).sum()
    assert out.converged


def test_float32_default_close_to_closed_form():
    g = random_graph(seed=3)
    seeds = random_seeds(g.ids, seed=4)
    out = spread_tags(g, seeds, top_k=seeds.n_tags, tol=1e-7)
    np.testing.assert_allclose(out.scores.toarray(), dense_inferred(g, seeds, 0.8), atol=1e-6)


def test_blocks_give_bitwise_identical_results():
    g = random_graph(n=80, seed=5, split=None)
    seeds = random_seeds(g.ids, n_tags=11, seed=6)
    ref = spread_tags(g, seeds, top_k=5)
    for block in (1, 2, 4, 11):
        out = spread_tags(g, seeds, top_k=5, tag_block=block)
        assert np.array_equal(out.scores.toarray(), ref.scores.toarray())


def test_jacobi_and_chebyshev_same_fixed_point_chebyshev_fewer_sweeps():
    g = random_graph(seed=7)
    seeds = random_seeds(g.ids, seed=8)
    jac = spread_tags(g, seeds, top_k=7, method="jacobi", dtype="float64", tol=1e-9, max_iter=500)
    che = spread_tags(g, seeds, top_k=7, dtype="float64", tol=1e-9)
    np.testing.assert_allclose(jac.scores.toarray(), che.scores.toarray(), atol=1e-7)
    assert che.n_iter < jac.n_iter


def test_rcm_reorder_same_result():
    g = random_graph(seed=9)
    seeds = random_seeds(g.ids, seed=10)
    a = spread_tags(g, seeds, top_k=7, reorder="none", dtype="float64", tol=1e-10)
    b = spread_tags(g, seeds, top_k=7, reorder="rcm", dtype="float64", tol=1e-10)
    np.testing.assert_allclose(a.scores.toarray(), b.scores.toarray(), atol=1e-9)


def test_top_k_are_the_largest_non_seed_scores():
    g = random_graph(seed=11)
    seeds = random_seeds(g.ids, n_tags=9, p=0.2, seed=12)
    ref = dense_inferred(g, seeds, 0.8)
    out = spread_tags(g, seeds, top_k=3, dtype="float64", tol=1e-10)
    s = out.scores.toarray()
    for i in range(len(g.ids)):
        want = np.argsort(-ref[i], kind="stable")[:3]
        want = set(want[ref[i, want] > 0])
        assert set(np.flatnonzero(s[i])) == want
    frame = out.to_frame()
    assert frame.groupby("id")["rank"].max().max() <= 3


def test_isolated_nodes_no_nan_and_no_tags():
    g = random_graph(isolated=4)
    seeds = random_seeds(g.ids, p=0.3)
    out = spread_tags(g, seeds, top_k=3)
    assert np.isfinite(out.scores.data).all() and np.isfinite(out.confidence.data).all()
    assert out.scores[-4:].nnz == 0


def test_zero_mass_component_gets_no_tag():
    w = np.zeros((6, 6))
    w[0, 1] = w[1, 0] = w[1, 2] = w[2, 1] = 1.0  # component {0,1,2}
    w[3, 4] = w[4, 3] = w[4, 5] = w[5, 4] = 1.0  # component {3,4,5}, no seeds
    g = KnnGraph.from_adjacency(w, list("abcdef"))
    seeds = TagSet.from_frame(pd.DataFrame({"id": ["a"], "tag": ["x"]}), g.ids)
    out = spread_tags(g, seeds)
    assert set(out.to_frame()["id"]) == {"b", "c"}


def test_sklearn_label_spreading_agrees():
    from sklearn.semi_supervised import LabelSpreading

    g = random_graph(n=80, density=0.1, seed=13, isolated=0, split=None)
    w = g.adjacency.toarray().astype(np.float64)
    rng = np.random.default_rng(14)
    labels = rng.integers(0, 3, size=80)
    labelled = rng.random(80) < 0.3
    y = np.where(labelled, labels, -1)
    frame = pd.DataFrame({"id": g.ids[labelled], "tag": [f"c{k}" for k in labels[labelled]]})
    seeds = TagSet.from_frame(frame, g.ids)
    # sklearn builds S = D^-1/2 W D^-1/2 (zero diagonal) from a callable kernel's matrix and
    # iterates F <- alpha S F + (1 - alpha) Y: the same alpha as ours.
    model = LabelSpreading(
        kernel=lambda a, b: w[np.ix_(a[:, 0].astype(int), b[:, 0].astype(int))],
        alpha=0.8,
        max_iter=5000,
        tol=1e-12,
    )
    model.fit(np.arange(80, dtype=float)[:, None], y)
    out = spread_tags(g, seeds, top_k=1, dtype="float64", tol=1e-12, max_iter=1000)
    top = out.to_frame().set_index("id")["tag"]
    unl = np.flatnonzero(~labelled)
    ours = np.array([int(top[g.ids[i]][1:]) for i in unl])
    np.testing.assert_array_equal(ours, model.transduction_[unl])
    # the normalised distributions match as well
    full = spread_tags(g, seeds, top_k=3, dtype="float64", tol=1e-12, max_iter=1000)
    f = full.scores.toarray()[unl][:, np.argsort(seeds.tags)]
    np.testing.assert_allclose(
        f / f.sum(1, keepdims=True), model.label_distributions_[unl], atol=1e-6
    )


def test_convergence_warning_and_record():
    g = random_graph(seed=15)
    seeds = random_seeds(g.ids, seed=16)
    with pytest.warns(ConvergenceWarning):
        out = spread_tags(g, seeds, max_iter=2, tol=1e-12)
    assert not out.converged and out.n_iter == 2


def test_min_confidence_abstains():
    g = random_graph(seed=17)
    seeds = random_seeds(g.ids, seed=18)
    full = spread_tags(g, seeds, top_k=5)
    cut = spread_tags(g, seeds, top_k=5, min_confidence=0.3)
    assert cut.scores.nnz < full.scores.nnz
    assert (cut.confidence.data >= 0.3).all()
    assert (full.confidence.data <= 1).all() and (full.confidence.data >= 0).all()


def test_cluster_prior_reaches_items_without_neighbourhood_mass():
    # component {0..3} has seeds; component {4,5} is one cluster with item 0's cluster? no:
    w = np.zeros((7, 7))
    for a, b in [(0, 1), (1, 2), (2, 3), (4, 5)]:
        w[a, b] = w[b, a] = 1.0
    g = KnnGraph.from_adjacency(w, list("abcdefg"))
    seeds = TagSet.from_frame(pd.DataFrame({"id": ["a", "e"], "tag": ["x", "y"]}), g.ids)
    part = Partition(np.array([0, 0, 0, 0, 1, 1, 0]), g.ids)
    plain = spread_tags(g, seeds, top_k=2).to_frame()
    prior = spread_tags(g, seeds, top_k=2, cluster_prior=0.5, partition=part).to_frame()
    assert "g" not in set(plain["id"])  # isolated, no mass
    got = prior[prior["id"] == "g"]
    assert got["tag"].tolist() == ["x"]  # its cluster's tag
    # seeded items keep their seeds out of the inferred tags
    assert not ((prior["id"] == "a") & (prior["tag"] == "x")).any()


def test_bad_inputs():
    g = random_graph()
    seeds = random_seeds(g.ids)
    with pytest.raises(ParameterError, match="alpha"):
        spread_tags(g, seeds, alpha=1.0)
    with pytest.raises(ParameterError, match="top_k"):
        spread_tags(g, seeds, top_k=0)
    with pytest.raises(ParameterError, match="partition"):
        spread_tags(g, seeds, cluster_prior=0.2)
    other = TagSet(seeds.matrix, np.array([f"x{i}" for i in range(len(g.ids))]), seeds.tags)
    with pytest.raises(IdMismatchError):
        spread_tags(g, other)
    with pytest.raises(InputError, match="symmetric"):
        spread_tags(sp.csr_matrix(np.triu(np.ones((60, 60)), 1)), seeds)


# ---- hypothesis invariants -------------------------------------------------------------------


@st.composite
def graphs_and_seeds(draw):
    n = draw(st.integers(4, 25))
    seed = draw(st.integers(0, 10_000))
    g = np.random.default_rng(seed)
    w = (g.random((n, n)) < draw(st.floats(0.05, 0.5))) * g.uniform(0.1, 1, (n, n))
    w = np.triu(w, 1)
    w = w + w.T
    y = (g.random((n, 4)) < 0.3) * g.uniform(0.2, 1, (n, 4))
    return w, y, seed


def _tagset(ids, y):
    r, c = np.nonzero(y)
    frame = pd.DataFrame({"id": ids[r], "tag": [f"t{k}" for k in c], "weight": y[r, c]})
    return TagSet.from_frame(frame, ids)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs_and_seeds())
def test_invariants(case):
    w, y, seed = case
    n = len(w)
    ids = np.array([f"n{i}" for i in range(n)])
    g = KnnGraph.from_adjacency(w, ids)
    seeds = _tagset(ids, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = spread_tags(g, seeds, top_k=4, dtype="float64", tol=1e-12, max_iter=500)
    s = out.scores.toarray()
    # non-negative scores, confidences in [0, 1]
    assert (s >= 0).all() and ((out.confidence.data >= 0) & (out.confidence.data <= 1)).all()
    # observed tags preserved: never among the inferred ones
    assert not (out.scores.multiply(seeds.matrix) != 0).nnz
    # no leakage across components: an inferred tag must be seeded in the item's component
    from scipy.sparse.csgraph import connected_components

    _, comp = connected_components(g.adjacency, directed=False)
    ym = seeds.matrix.toarray() > 0
    for i, t in zip(*np.nonzero(s), strict=True):
        assert ym[comp == comp[i], t].any()
    # permuting the items permutes the output
    perm = np.random.default_rng(seed).permutation(n)
    gp = KnnGraph.from_adjacency(w[np.ix_(perm, perm)], ids[perm])
    sp_ = _tagset(ids[perm], y[perm])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        outp = spread_tags(gp, sp_, top_k=4, dtype="float64", tol=1e-12, max_iter=500)
    a = out.to_frame().set_index(["id", "tag"])["score"]
    b = outp.to_frame().set_index(["id", "tag"])["score"]
    common = a.index.intersection(b.index)
    np.testing.assert_allclose(a[common], b[common], atol=1e-9)
    # differences only where the k-th score ties
    assert len(common) >= min(len(a), len(b)) - n


def test_thread_pool_path_gives_identical_results(monkeypatch):
    from ccgraph.propagate import _solver

    g = random_graph(n=80, seed=19, split=None)
    seeds = random_seeds(g.ids, n_tags=9, seed=20)
    serial = spread_tags(g, seeds, top_k=4)
    monkeypatch.setattr(_solver, "SERIAL_WORK", 0)
    monkeypatch.setenv("CCGRAPH_THREADS", "2")
    threaded = spread_tags(g, seeds, top_k=4)
    assert np.array_equal(serial.scores.toarray(), threaded.scores.toarray())


def test_thread_pool_survives_fork(monkeypatch):
    import multiprocessing as mp

    from ccgraph.propagate import _solver

    monkeypatch.setattr(_solver, "SERIAL_WORK", 0)
    monkeypatch.setenv("CCGRAPH_THREADS", "2")
    g = random_graph(n=40, seed=21, split=None)
    seeds = random_seeds(g.ids, seed=22)
    ref = spread_tags(g, seeds, top_k=3).scores.toarray()  # the parent's pool now exists
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        out = pool.apply_async(_spread_in_child, (g, seeds)).get(timeout=120)
    np.testing.assert_array_equal(out, ref)


def _spread_in_child(g, seeds):
    from ccgraph.propagate import _solver

    _solver.SERIAL_WORK = 0
    return spread_tags(g, seeds, top_k=3).scores.toarray()


def test_bad_calibrator_rejected_before_work():
    g = random_graph()
    seeds = random_seeds(g.ids)
    with pytest.raises(ParameterError, match="calibrator"):
        spread_tags(g, seeds, calibrator="isotonic")
    with pytest.raises(ParameterError, match="calibrator"):
        spread_tags(g, seeds, calibrator=3)
    none = spread_tags(g, seeds, calibrator="none")
    assert none.params["calibrator"] is None


@pytest.mark.parametrize(("alpha", "tol"), [(1 - 1e-8, 1e-6), (1 - 2e-3, 1e-3)])
def test_alpha_too_close_to_one_for_tol_is_refused(alpha, tol):
    # before: the first sweep moved no score by tol, so spreading "converged" after one sweep
    # and every item got its one-hop tags (30 of 40 rankings wrong vs the closed form), silently
    w = np.zeros((4, 4))
    w[0, 1] = w[1, 0] = w[1, 2] = w[2, 1] = 1.0
    seeds = TagSet(sp.csr_matrix(np.eye(4)[:, :1]), np.array(list("abcd")), np.array(["x"]), {})
    with pytest.raises(ParameterError, match=r"`alpha`.*too close to 1 for `tol`"):
        spread_tags(sp.csr_matrix(w), seeds, alpha=alpha, tol=tol)


def test_alpha_near_one_within_the_tol_rule_matches_closed_form():
    # 40-ring, seeds far apart, alpha = 0.99: scores and top tags agree with the
    # dense solution (1 - a)(I - a S)^-1 Y (tol 1e-9 is allowed: 1 - alpha >= 10 tol)
    n = 40
    w = np.zeros((n, n))
    for i in range(n):
        w[i, (i + 1) % n] = w[(i + 1) % n, i] = 1.0
    y = np.zeros((n, 3))
    y[0, 0] = y[13, 1] = y[27, 2] = 1.0
    seeds = TagSet(
        sp.csr_matrix(y), np.array([f"i{i}" for i in range(n)]), np.array(list("xyz")), {}
    )
    out = spread_tags(
        sp.csr_matrix(w), seeds, alpha=0.99, tol=1e-9, max_iter=2000, top_k=3, dtype="float64"
    )
    s = w / 2.0
    f = 0.01 * np.linalg.solve(np.eye(n) - 0.99 * s, y)
    fr = out.to_frame()
    for row in fr.itertuples():
        i, t = int(row.id[1:]), "xyz".index(row.tag)
        assert row.score == pytest.approx(f[i, t], rel=1e-5)
    top = fr[fr["rank"] == 1].set_index("id")["tag"]
    for i in range(n):
        if y[i].any():
            continue
        assert top[f"i{i}"] == "xyz"[int(np.argmax(f[i]))]
