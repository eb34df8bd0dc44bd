"""Local moving of an update's free items, checked against networkx's modularity."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.exceptions import InputError
from ccgraph.update.local_move import refine_local


def _planted(sizes: list[int], p_in: float, p_out: float, seed: int) -> sp.csr_matrix:
    g = nx.random_partition_graph(sizes, p_in, p_out, seed=seed)
    for u, v in g.edges:
        g.edges[u, v]["weight"] = 0.5 + ((u * 7 + v * 3) % 5) / 4  # uneven weights
    return sp.csr_matrix(nx.to_scipy_sparse_array(g, format="csr", dtype=np.float64))


def _communities(labels: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)]


def _q(a: sp.csr_matrix, labels: np.ndarray, gamma: float) -> float:
    g = nx.from_scipy_sparse_array(a)
    return float(nx.community.modularity(g, _communities(labels), resolution=gamma))


def _cpm(a: sp.csr_matrix, labels: np.ndarray, gamma: float) -> float:
    """CPM as leidenalg defines it: sum over clusters of ``e_c - gamma * n_c (n_c - 1) / 2``."""
    coo = sp.triu(a, k=1).tocoo()
    inside = labels[coo.row] == labels[coo.col]
    sizes = np.bincount(labels)
    return float(coo.data[inside].sum() - gamma * (sizes * (sizes - 1) / 2).sum())


def _single_moves(labels: np.ndarray, free: np.ndarray, a: sp.csr_matrix) -> list[np.ndarray]:
    """Every partition one free item's move away: to a neighbour's cluster or alone."""
    out = []
    fresh = int(labels.max()) + 1
    for i in np.flatnonzero(free):
        row = a.indices[a.indptr[i] : a.indptr[i + 1]]
        for c in {*labels[row].tolist(), fresh} - {int(labels[i])}:
            moved = labels.copy()
            moved[i] = c
            out.append(moved)
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    gamma=st.sampled_from([0.5, 1.0, 2.0]),
    n_new=st.integers(1, 12),
)
def test_result_is_a_local_optimum_of_networkx_modularity(
    seed: int, gamma: float, n_new: int
) -> None:
    a = _planted([12, 12, 12], 0.4, 0.04, seed=seed)
    n = a.shape[0]
    rng = np.random.default_rng(seed)
    init = np.repeat(np.arange(3), 12)
    free = np.zeros(n, dtype=bool)
    free[rng.choice(n, size=n_new, replace=False)] = True
    init[free] = 100 + np.arange(n_new)  # the free items start alone
    out = refine_local(a, init, ~free, resolution=gamma, rng=seed)
    np.testing.assert_array_equal(out[~free], init[~free])  # fixed items never move
    q = _q(a, out, gamma)
    assert q >= _q(a, init, gamma) - 1e-12
    for moved in _single_moves(out, free, a):
        assert _q(a, moved, gamma) <= q + 1e-9


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.sampled_from([0.05, 0.2]))
def test_cpm_is_a_local_optimum(seed: int, gamma: float) -> None:
    a = _planted([10, 10, 10], 0.5, 0.05, seed=seed)
    n = a.shape[0]
    free = np.random.default_rng(seed).random(n) < 0.3
    init = np.repeat(np.arange(3), 10)
    out = refine_local(a, init, ~free, resolution=gamma, objective="cpm", rng=seed)
    np.testing.assert_array_equal(out[~free], init[~free])
    q = _cpm(a, np.unique(out, return_inverse=True)[1].ravel(), gamma)
    assert q >= _cpm(a, init, gamma) - 1e-9
    for moved in _single_moves(out, free, a):
        assert _cpm(a, np.unique(moved, return_inverse=True)[1].ravel(), gamma) <= q + 1e-9


def test_a_new_group_joins_the_old_cluster_it_belongs_to_as_a_group() -> None:
    # block 0 of 30 old items; 6 new items densely tied to each other and to block 0
    a = _planted([30, 30, 6], 0.3, 0.0, seed=3).tolil()
    rng = np.random.default_rng(3)
    for i in range(60, 66):
        for j in rng.choice(30, size=8, replace=False):
            a[i, j] = a[j, i] = 1.0
    a = sp.csr_matrix(a)
    init = np.r_[np.zeros(30, int), np.ones(30, int), 2 + np.arange(6)]
    free = np.r_[np.zeros(60, bool), np.ones(6, bool)]
    out = refine_local(a, init, ~free, resolution=1.0, rng=0)
    # moving the new items one by one or as a group: whichever modularity prefers
    best = max((np.r_[init[:60], np.full(6, c)] for c in (0, 1, 7)), key=lambda m: _q(a, m, 1.0))
    assert _q(a, out, 1.0) >= _q(a, best, 1.0) - 1e-12


def test_new_items_of_an_unseen_block_form_one_fresh_cluster() -> None:
    a = _planted([25, 25, 15], 0.4, 0.01, seed=5)
    init = np.r_[np.zeros(25, int), np.ones(25, int), 10 + np.arange(15)]
    free = np.r_[np.zeros(50, bool), np.ones(15, bool)]
    out = refine_local(a, init, ~free, resolution=1.0, rng=1)
    assert len(set(out[50:].tolist())) == 1
    assert out[50] not in (0, 1)


def test_same_seed_same_result_and_nothing_free_is_a_copy() -> None:
    a = _planted([20, 20], 0.3, 0.05, seed=2)
    init = np.r_[np.zeros(20, int), np.ones(20, int)]
    free = np.random.default_rng(0).random(40) < 0.5
    first = refine_local(a, init, ~free, resolution=1.0, rng=7)
    np.testing.assert_array_equal(first, refine_local(a, init, ~free, resolution=1.0, rng=7))
    same = refine_local(a, init, np.ones(40, bool), resolution=1.0)
    np.testing.assert_array_equal(same, init)
    assert same is not init


def test_bad_arguments_name_the_problem() -> None:
    a = _planted([5, 5], 0.5, 0.1, seed=0)
    with pytest.raises(InputError, match="objective"):
        refine_local(a, np.zeros(10, int), np.ones(10, bool), resolution=1.0, objective="x")
    with pytest.raises(InputError, match="one entry per item"):
        refine_local(a, np.zeros(9, int), np.ones(10, bool), resolution=1.0)


def test_a_frozen_graph_gives_what_a_writable_copy_gives_at_every_level() -> None:
    # a KnnGraph's adjacency is read-only: its kernel arrays are made once and reused for
    # every level; each level must still see this graph's arrays
    from ccgraph.containers import KnnGraph

    a = _planted([30, 30, 30], 0.3, 0.02, seed=4)
    graph = KnnGraph(a.astype(np.float32), [f"i{i}" for i in range(90)])
    init = np.repeat([0, 1, 2], 30)
    fixed = np.arange(90) % 4 != 0
    writable = sp.csr_matrix(graph.adjacency, copy=True)
    for gamma in (0.5, 1.0, 2.0):
        for objective in ("modularity", "cpm"):
            kw = {"resolution": gamma if objective == "modularity" else gamma / 10,
                  "objective": objective, "rng": 1}  # fmt: skip
            got = refine_local(graph.adjacency, init, fixed, **kw)
            np.testing.assert_array_equal(got, refine_local(writable, init, fixed, **kw))
    other = KnnGraph(_planted([45, 45], 0.3, 0.02, seed=5).astype(np.float32), graph.ids)
    np.testing.assert_array_equal(
        refine_local(other.adjacency, init, fixed, resolution=1.0, rng=1),
        refine_local(sp.csr_matrix(other.adjacency, copy=True), init, fixed, resolution=1.0, rng=1),
    )
