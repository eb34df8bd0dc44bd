"""The pruned label-spreading solver against the dense closed form and the exact solver."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccgraph import KnnGraph, TagSet
from ccgraph.exceptions import ParameterError
from ccgraph.propagate import spread_tags
from ccgraph.propagate.spreading import AUTO_PRUNE_WORK, choose_solver
from tests.conftest import blobs
from tests.propagate._graphs import dense_inferred, random_graph, random_seeds


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    alpha=st.sampled_from([0.5, 0.8, 0.95]),
    n_tags=st.integers(1, 9),
)
def test_without_pruning_equals_closed_form(seed, alpha, n_tags):
    # Room for every tag and a freeze longer than any path: nothing is ever dropped, so the
    # pruned solver must reach the exact fixed point.
    g = random_graph(n=40, seed=seed, split=25, isolated=2)
    seeds = random_seeds(g.ids, n_tags=n_tags, seed=seed + 1)
    out = spread_tags(
        g,
        seeds,
        alpha=alpha,
        solver="pruned",
        prune=n_tags,
        freeze=45,
        top_k=n_tags,
        dtype="float64",
        tol=1e-11,
        max_iter=3000,
    )
    ref = dense_inferred(g, seeds, alpha)
    np.testing.assert_allclose(out.scores.toarray(), ref, atol=1e-8, rtol=0)
    assert out.params["solver"] == "pruned"
    assert out.converged


def _mixture_case(n: int = 1500, n_tags: int = 60, seed: int = 0) -> tuple[KnnGraph, TagSet]:
    """A kNN graph over clustered vectors; each cluster has its own few home tags."""
    from ccgraph.graph import build_knn_graph

    x, labels = blobs(n=n, centers=30, d=16, spread=0.35, seed=seed)
    ids = np.array([f"x{i:05d}" for i in range(n)])
    from ccgraph import Embeddings

    graph = build_knn_graph(Embeddings.from_array(x, ids), k=10, rng=seed, backend="exact")
    g = np.random.default_rng(seed)
    home = g.choice(n_tags, size=(labels.max() + 1, 3))
    tagged = np.flatnonzero(g.random(n) < 0.15)
    rows, tags = [], []
    for i in tagged:
        for t in set(g.choice(home[labels[i]], size=g.integers(1, 3)).tolist()):
            rows.append(i)
            tags.append(t)
        if g.random() < 0.2:  # noise tag
            rows.append(i)
            tags.append(int(g.integers(n_tags)))
    frame = pd.DataFrame({"id": ids[rows], "tag": [f"t{t}" for t in tags]})
    return graph, TagSet.from_frame(frame.drop_duplicates(), ids)


def test_pruned_top_tags_agree_with_exact_solver():
    graph, seeds = _mixture_case()
    exact = spread_tags(graph, seeds, solver="exact", top_k=5, calibrator="none")
    pruned = spread_tags(
        graph, seeds, solver="pruned", prune=8, freeze=6, top_k=5, calibrator="none"
    )
    a, b = exact.to_frame(), pruned.to_frame()
    top1_a = a[a["rank"] == 1].set_index("id")["tag"]
    top1_b = b[b["rank"] == 1].set_index("id")["tag"]
    common = top1_a.index.intersection(top1_b.index)
    assert len(common) >= 0.95 * len(top1_a)
    assert (top1_a[common] == top1_b[common]).mean() >= 0.97
    sets_a = a.groupby("id")["tag"].apply(set)
    sets_b = b.groupby("id")["tag"].apply(set)
    overlap = [len(sets_a[i] & sets_b.get(i, set())) / len(sets_a[i]) for i in sets_a.index]
    assert np.mean(overlap) >= 0.9


def test_pruned_result_does_not_depend_on_threads(monkeypatch):
    graph, seeds = _mixture_case(n=800, seed=2)
    from ccgraph.propagate import _solver

    runs = []
    for threads in (1, 2):
        monkeypatch.setattr(_solver, "n_threads_for", lambda work, t=threads: t)
        monkeypatch.setattr("ccgraph.propagate._pruned.n_threads_for", lambda w, t=threads: t)
        out = spread_tags(graph, seeds, solver="pruned", prune=6, top_k=3, calibrator="none")
        runs.append(out.scores.toarray())
    assert np.array_equal(runs[0], runs[1])


def test_seed_tags_are_never_inferred_and_stay_untouched():
    graph, seeds = _mixture_case(n=600, seed=3)
    out = spread_tags(graph, seeds, solver="pruned", prune=6, top_k=4, calibrator="none")
    both = out.scores.multiply(seeds.matrix)
    assert both.nnz == 0


def test_choose_solver_by_work():
    assert choose_solver(sp.csr_matrix((10, 3)), "auto") == "exact"
    n = AUTO_PRUNE_WORK // 2 + 1
    y = sp.csr_matrix((np.ones(3), ([0, 1, 2], [0, 1, 1])), shape=(n, 5))
    assert choose_solver(y, "auto") == "pruned"  # 2 seeded tags x n items > the limit
    assert choose_solver(y, "exact") == "exact"


def test_prune_smaller_than_top_k_is_refused():
    g = random_graph()
    seeds = random_seeds(g.ids)
    with pytest.raises(ParameterError, match="prune"):
        spread_tags(g, seeds, solver="pruned", prune=3, top_k=5)
    with pytest.raises(ParameterError, match="solver"):
        spread_tags(g, seeds, solver="fast")
