from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import normalized_mutual_info_score

from ccgraph.cluster import (
    choose_default_level,
    leiden,
    leiden_levels,
    modularity,
    recursive_split,
    resolution_sweep,
)
from ccgraph.containers import KnnGraph, Partition
from ccgraph.exceptions import IdMismatchError, ParameterError


def two_level_graph(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """4 groups of 4 blocks of 25 nodes: dense blocks, sparser groups, sparse between groups."""
    g = np.random.default_rng(seed)
    block = np.repeat(np.arange(16), 25)
    group = block // 4
    n = len(block)
    prob = np.where(
        block[:, None] == block[None, :],
        0.5,
        np.where(group[:, None] == group[None, :], 0.04, 0.002),
    )
    upper = np.triu(g.random((n, n)) < prob, k=1)
    return sp.csr_matrix((upper | upper.T).astype(float)), group, block


@pytest.fixture(scope="module")
def hier():
    return two_level_graph()


def test_levels_go_from_coarse_to_fine_and_find_both_scales(hier):
    a, group, block = hier
    levels = leiden_levels(a, resolutions=(4.0, 0.1, 1.0), rng=0)
    counts = [p.n_clusters for p in levels]
    assert counts == sorted(counts)
    assert [p.params["level"] for p in levels] == [0, 1, 2]
    assert [p.params["resolution"] for p in levels] == [0.1, 1.0, 4.0]
    assert normalized_mutual_info_score(group, levels[0].membership) >= 0.95
    assert normalized_mutual_info_score(block, levels[-1].membership) >= 0.95


def test_levels_equal_single_runs_with_the_same_seed(hier):
    a, _, _ = hier
    levels = leiden_levels(a, resolutions=(0.5, 2.0), backend="leidenalg", rng=11)
    for p in levels:
        single = leiden(a, resolution=p.params["resolution"], backend="leidenalg", rng=11)
        np.testing.assert_array_equal(p.membership, single.membership)


def test_resolution_sweep_reports_each_run(hier):
    a, _, _ = hier
    table = resolution_sweep(a, [0.1, 1.0, 4.0], rng=0)
    assert list(table.columns) == [
        "resolution",
        "n_clusters",
        "modularity",
        "quality",
        "median_size",
        "item_median_size",
        "largest_share",
        "singletons",
    ]
    for row in table.itertuples():
        p = leiden(a, resolution=row.resolution, rng=0)
        assert row.n_clusters == p.n_clusters
        assert row.modularity == pytest.approx(modularity(a, p.membership))
        assert row.quality == pytest.approx(p.quality)
        assert row.median_size == np.median(np.bincount(p.membership))
    assert table["n_clusters"].is_monotonic_increasing


def test_choose_default_level_uses_the_size_of_a_typical_items_cluster():
    n = 1000
    # level 0: one cluster of 900 and 100 singletons -> the median cluster has size 1, but a
    # typical item sits in a cluster of 900; level 1: 20 clusters of 50.
    lumpy = np.concatenate([np.zeros(900, dtype=int), np.arange(1, 101)])
    even = np.repeat(np.arange(20), 50)
    levels = [Partition(lumpy, np.arange(n)), Partition(even, np.arange(n))]
    assert choose_default_level(levels, target_size=2) == 1
    assert choose_default_level(levels, target_size=50) == 1
    assert choose_default_level(levels, target_size=1000) == 0
    # log-scale distance: 100 vs 25 around a target of 50 is a tie -> the coarser level
    tie = [
        Partition(np.repeat(np.arange(10), 100), np.arange(n)),
        Partition(np.repeat(np.arange(40), 25), np.arange(n)),
    ]
    assert choose_default_level(tie, target_size=50) == 0


def test_choose_default_level_validates():
    with pytest.raises(ParameterError, match="`levels`"):
        choose_default_level([])
    with pytest.raises(ParameterError, match="`target_size`"):
        choose_default_level([Partition(np.zeros(3, dtype=int), np.arange(3))], target_size=0)


def test_recursive_split_refines_big_clusters(hier):
    a, group, block = hier
    coarse = Partition(group, np.arange(len(group)))
    out = recursive_split(a, coarse, max_cluster_size=40, rng=0)
    assert np.bincount(out.membership).max() <= 40
    # a refinement: every new cluster lies inside one old cluster
    pairs = np.unique(np.column_stack([out.membership, group]), axis=0)
    assert len(np.unique(pairs[:, 0])) == len(pairs)
    assert normalized_mutual_info_score(block, out.membership) >= 0.95
    assert out.params["n_oversize"] == 0 and out.params["n_split"] >= 4


def test_recursive_split_leaves_small_clusters_alone(hier):
    a, _, block = hier
    fine = Partition(block, np.arange(len(block)))
    out = recursive_split(a, fine, max_cluster_size=30, rng=0)
    assert normalized_mutual_info_score(block, out.membership) == pytest.approx(1.0)
    assert out.params["n_split"] == 0


def test_recursive_split_reports_unsplittable_clusters():
    # CPM at a tiny resolution keeps any connected graph whole, even at 8x the resolution
    clique = sp.csr_matrix(np.ones((12, 12)) - np.eye(12))
    whole = Partition(np.zeros(12, dtype=int), np.arange(12))
    out = recursive_split(
        clique, whole, max_cluster_size=5, objective="cpm", resolution=1e-4, rng=0
    )
    assert out.params["n_oversize"] == 1 and out.params["n_split"] == 0
    assert out.n_clusters == 1
    # modularity at 8x splits it
    split = recursive_split(clique, whole, max_cluster_size=5, rng=0)
    assert split.params["n_oversize"] == 0
    assert np.bincount(split.membership).max() <= 5


def test_recursive_split_checks_ids(hier):
    a, group, _ = hier
    g = KnnGraph.from_adjacency(a, [f"x{i}" for i in range(a.shape[0])])
    with pytest.raises(IdMismatchError):
        recursive_split(g, Partition(group, np.arange(len(group))), max_cluster_size=10)
    with pytest.raises(ParameterError, match="`max_cluster_size`"):
        recursive_split(a, Partition(group, np.arange(len(group))), max_cluster_size=0)


@pytest.mark.parametrize("bad", [[], [1.0, -1.0], "1.0"])
def test_resolutions_are_validated(hier, bad):
    with pytest.raises(ParameterError, match="resolutions"):
        leiden_levels(hier[0], resolutions=bad)


def test_leiden_levels_accepts_a_numpy_array_of_resolutions():
    # before: np.array([0.5, 2.0]) raised "`resolutions` must be a sequence of floats"
    a = sp.csr_matrix(np.kron(np.eye(3), np.ones((5, 5)) - np.eye(5)))
    from_list = leiden_levels(a, resolutions=[0.5, 2.0], rng=0)
    from_array = leiden_levels(a, resolutions=np.array([0.5, 2.0]), rng=0)
    assert [p.membership.tolist() for p in from_array] == [p.membership.tolist() for p in from_list]
    with pytest.raises(ParameterError, match="resolutions"):
        leiden_levels(a, resolutions=np.ones((2, 2)), rng=0)
