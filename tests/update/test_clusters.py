"""Warm-started levels: initial labels, neighbourhoods, stable and fresh IDs on planted graphs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ccgraph.cluster import adjusted_rand_index, leiden
from ccgraph.config import config_from_mapping
from ccgraph.containers import KnnGraph
from ccgraph.update.clusters import initial_membership, neighbourhood, update_levels


def _planted(sizes: list[int], p_in: float, p_out: float, seed: int) -> sp.csr_matrix:
    g = nx.random_partition_graph(sizes, p_in, p_out, seed=seed)
    return sp.csr_matrix(nx.to_scipy_sparse_array(g, format="csr", dtype=np.float32))


def test_initial_membership_weighted_majority_and_waves() -> None:
    # 0-1 (w 1), 0-2 (w 3): 0 goes with 2; 3 only touches 4 (new) and is reached in wave two
    a = sp.csr_matrix(
        np.array(
            [
                [0, 1, 3, 0, 0, 0],
                [1, 0, 0, 0, 0, 0],
                [3, 0, 0, 0, 1, 0],
                [0, 0, 0, 0, 1, 0],
                [0, 0, 1, 1, 0, 0],
                [0, 0, 0, 0, 0, 0],
            ],
            dtype=float,
        )
    )
    out = initial_membership(a, np.array([-1, 4, 9, -1, -1, -1]))
    assert out.tolist()[:5] == [9, 4, 9, 9, 9]
    assert out[5] == 10  # isolated new item: a fresh label above the old maximum


def test_neighbourhood_matches_networkx_distances() -> None:
    a = _planted([30, 30], 0.2, 0.02, seed=1)
    seeds = np.zeros(60, dtype=bool)
    seeds[[0, 45]] = True
    g = nx.from_scipy_sparse_array(a)
    for hops in (0, 1, 2):
        want = set()
        for s in (0, 45):
            want |= set(nx.single_source_shortest_path_length(g, s, cutoff=hops))
        got = set(np.flatnonzero(neighbourhood(a, seeds, hops)).tolist())
        assert got == want


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_neighbourhood_kernel_is_the_sparse_products(seed: int) -> None:
    """CSR input takes the search kernel; the same matrix as CSC the sparse products (an
    asymmetric pattern with explicit zeros: a zero entry is no edge)."""
    g = np.random.default_rng(seed)
    a = sp.random(70, 70, density=0.03, random_state=seed, format="csr", dtype=np.float32)
    a.data[g.random(a.nnz) < 0.3] = 0.0
    seeds = g.random(70) < 0.05
    for hops in (0, 1, 2, 3, 10):
        got = neighbourhood(a, seeds, hops)
        np.testing.assert_array_equal(got, neighbourhood(a.tocsc(), seeds, hops))
        assert got[seeds].all()


def _cfg(**cluster: object) -> object:
    return config_from_mapping({"data": {"path": "x"}, "cluster": cluster})


@pytest.mark.parametrize(
    ("strategy", "refine", "refine_iterations"),
    [
        ("warm", "move", 1),
        ("local", "move", 1),
        ("local", "leidenalg", 1),
        ("local", "leidenalg", -1),
        ("local", "leidenalg", 2),
    ],
)
def test_ids_stable_and_new_block_gets_fresh_id(
    strategy: str, refine: str, refine_iterations: int
) -> None:
    sizes = [40, 40, 40, 40, 20]  # the last block arrives with the update
    a = _planted(sizes, 0.3, 0.005, seed=4)
    n_old = 160
    ids = np.array([f"x{i}" for i in range(sum(sizes))])
    old_graph = KnnGraph.from_adjacency(a[:n_old][:, :n_old], ids[:n_old])
    base = leiden(old_graph, rng=0)
    # as stored by a run: arbitrary stable IDs per level
    old_ids = np.array([11, 23, 35, 47])[base.membership]
    old_items = pd.DataFrame({"id": ids[:n_old], "cluster_l0": old_ids})
    # two late items of block 0 and the new block 4
    graph = KnnGraph.from_adjacency(a, ids)
    touched = np.zeros(len(ids), dtype=bool)
    touched[n_old:] = True
    levels, info = update_levels(
        graph,
        old_items,
        _cfg(),
        touched=touched,
        resolutions=[1.0],
        next_ids=[60],
        split_levels=[False],
        strategy=strategy,
        refine=refine,
        refine_iterations=refine_iterations,
        rng=0,
    )
    mem = levels[0].membership
    assert info["churn"] == [0.0]
    np.testing.assert_array_equal(mem[:n_old], old_ids)
    assert set(mem[n_old:].tolist()) == {60}  # minted at next_id, never below
    assert levels[0].params["n_fresh"] == 1
    truth = np.repeat(np.arange(5), sizes)
    assert adjusted_rand_index(truth, mem) == pytest.approx(1.0)
    if strategy == "local":
        assert info["n_fixed"] > 0
        assert info["refine_iterations"] == refine_iterations
        assert info["refine"] == refine


def test_refine_iterations_zero_is_rejected_by_the_config() -> None:
    with pytest.raises(Exception, match="refine_iterations"):
        config_from_mapping({"data": {"path": "x"}, "update": {"refine_iterations": 0}})


def test_unknown_strategy() -> None:
    a = _planted([10, 10], 0.5, 0.0, seed=0)
    g = KnnGraph.from_adjacency(a)
    items = pd.DataFrame({"id": g.ids, "cluster_l0": np.zeros(20, dtype=int)})
    with pytest.raises(Exception, match="strategy"):
        update_levels(
            g,
            items,
            _cfg(),
            touched=np.zeros(20, bool),
            resolutions=[1.0],
            next_ids=[1],
            split_levels=[False],
            strategy="global",
        )
