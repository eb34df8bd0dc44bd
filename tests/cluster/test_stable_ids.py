from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from ccgraph.cluster import leiden, match_labels, stabilize, warm_start
from ccgraph.containers import KnnGraph, Partition
from ccgraph.exceptions import InputError, ParameterError
from tests.cluster._graphs import exact_knn_graph
from tests.conftest import blobs


def test_identical_rerun_keeps_every_id():
    old = np.array([4, 4, 9, 9, 9, 2])
    mem, churn, mapping = match_labels(np.array([1, 1, 0, 0, 0, 2]), old)
    np.testing.assert_array_equal(mem, old)
    assert churn == 0.0
    assert mapping == {0: 9, 1: 4, 2: 2}


@given(st.lists(st.integers(0, 8), min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_any_relabelling_of_the_same_partition_is_undone(labels, rnd):
    old = np.array(labels)
    perm = list(range(9))
    rnd.shuffle(perm)
    new = np.array(perm)[old]
    mem, churn, _ = match_labels(new, old, min_overlap=1.0)
    np.testing.assert_array_equal(mem, old)
    assert churn == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 100_000), st.integers(1, 8), st.integers(1, 8))
def test_matching_keeps_as_many_items_as_the_dense_optimum(seed, k_new, k_old):
    g = np.random.default_rng(seed)
    n = 50
    new = g.integers(0, k_new, size=n)
    old = g.integers(0, k_old, size=n) * 3 + 1  # arbitrary non-contiguous old IDs
    mem, churn, _ = match_labels(new, old, min_overlap=0.0)
    # dense Hungarian reference on the full contingency table
    table = np.zeros((new.max() + 1, old.max() + 1))
    np.add.at(table, (new, old), 1)
    r, c = linear_sum_assignment(table, maximize=True)
    best_kept = table[r, c].sum()
    assert np.sum(mem == old) == best_kept
    assert churn == pytest.approx(1 - best_kept / n)
    # the result is still the new partition, only renamed
    assert np.array_equal(new[:, None] == new[None, :], mem[:, None] == mem[None, :])


def test_new_clusters_get_fresh_ids_above_the_old_maximum():
    old = np.array([0, 0, 0, 5, 5, 5])
    new = np.array([0, 0, 0, 1, 2, 3])  # old 5 splits in three singletons
    _mem, churn, mapping = match_labels(new, old)
    assert mapping[0] == 0
    kept = [lab for lab in (1, 2, 3) if mapping[lab] == 5]
    assert len(kept) == 1
    fresh = sorted(v for k, v in mapping.items() if k not in (0, kept[0]))
    assert fresh == [6, 7]
    assert churn == pytest.approx(2 / 6)
    _, _, mapping2 = match_labels(new, old, next_id=100)
    assert sorted(v for v in mapping2.values() if v not in (0, 5)) == [100, 101]


def test_min_overlap_blocks_weak_matches():
    old = np.zeros(10, dtype=int)
    new = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8])  # old 0 shattered; best Jaccard is 2/10
    _, churn, mapping = match_labels(new, old, min_overlap=0.5)
    assert sorted(mapping.values()) == list(range(1, 10))
    assert churn == 1.0
    _, churn, mapping = match_labels(new, old, min_overlap=0.1)
    assert mapping[0] == 0
    assert churn == pytest.approx(0.8)
    # two old clusters merged: the new one keeps the ID of the larger part
    _, _, mapping = match_labels(np.zeros(10, dtype=int), np.r_[np.zeros(2), np.full(8, 3)])
    assert mapping == {0: 3}


def test_items_new_to_this_run_take_no_part():
    p = Partition(np.array([0, 0, 0, 1, 1]), ["a", "b", "c", "d", "e"])
    old = pd.Series([7, 7, 3, 3], index=["a", "b", "d", "zz"])  # c, e new; zz gone
    s = stabilize(p, old)
    assert s.membership.tolist() == [7, 7, 7, 3, 3]
    assert s.params["churn"] == 0.0
    assert s.params["n_new_items"] == 2
    assert s.params["n_matched"] == 2 and s.params["n_fresh"] == 0
    assert s.params["next_id"] == 8
    assert list(s.ids) == ["a", "b", "c", "d", "e"]


def test_stabilize_next_id_never_reuses_retired_ids():
    p = Partition(np.array([0, 0, 1, 1]), ["a", "b", "c", "d"])
    old = pd.Series([2, 2, 2, 2], index=["a", "b", "c", "d"])
    s = stabilize(p, old, next_id=10)
    assert sorted(set(s.membership.tolist())) == [2, 10]
    assert s.params["next_id"] == 11


def test_stabilize_validates_old_membership():
    p = Partition(np.array([0, 1]), ["a", "b"])
    with pytest.raises(InputError, match="pandas Series"):
        stabilize(p, {"a": 1})
    with pytest.raises(InputError, match="non-negative integer"):
        stabilize(p, pd.Series([1.5, 2], index=["a", "b"]))
    with pytest.raises(InputError, match="repeated"):
        stabilize(p, pd.Series([1, 2], index=["a", "a"]))
    with pytest.raises(ParameterError, match="`min_overlap`"):
        stabilize(p, pd.Series([1, 2], index=["a", "b"]), min_overlap=2.0)
    with pytest.raises(InputError, match="`old_membership`"):
        match_labels([0, 1], [0])


def perturb(a: sp.csr_matrix, share: float, seed: int) -> sp.csr_matrix:
    """Drop ``share`` of the edges and add as many random ones (weights from the kept edges)."""
    g = np.random.default_rng(seed)
    upper = sp.triu(a, k=1).tocoo()
    m = upper.nnz
    n_change = round(share * m)
    keep = np.ones(m, dtype=bool)
    keep[g.choice(m, n_change, replace=False)] = False
    rows = np.concatenate([upper.row[keep], g.integers(0, a.shape[0], n_change)])
    cols = np.concatenate([upper.col[keep], g.integers(0, a.shape[0], n_change)])
    w = np.concatenate([upper.data[keep], g.choice(upper.data, n_change)])
    ok = rows != cols
    b = sp.csr_matrix((w[ok], (rows[ok], cols[ok])), shape=a.shape)
    b.sum_duplicates()
    return b.maximum(b.T).tocsr()


@functools.lru_cache(maxsize=2)
def blob_knn(spread: float) -> tuple[sp.csr_matrix, list[str]]:
    x, _ = blobs(n=2000, d=16, centers=20, spread=spread, seed=8)
    a = exact_knn_graph(x, 10)
    return a, [f"img{i}" for i in range(a.shape[0])]


@pytest.mark.parametrize("backend", ["igraph", "leidenalg"])
def test_identical_rerun_and_one_percent_noise_keep_ids(backend):
    a, ids = blob_knn(spread=0.2)  # 20 clear clusters
    first = leiden(KnnGraph.from_adjacency(a, ids), backend=backend, rng=1)
    old = pd.Series(first.membership, index=first.ids)

    again = stabilize(leiden(KnnGraph.from_adjacency(a, ids), backend=backend, rng=1), old)
    np.testing.assert_array_equal(again.membership, first.membership)
    assert again.params["churn"] == 0.0

    noisy = perturb(a, 0.01, seed=2)
    second = stabilize(leiden(KnnGraph.from_adjacency(noisy, ids), backend=backend, rng=1), old)
    kept = np.mean(second.membership == first.membership)
    assert kept >= 0.95
    assert second.params["churn"] == pytest.approx(1 - kept)


@pytest.mark.parametrize("backend", ["igraph", "leidenalg"])
def test_warm_start_keeps_ids_where_clusters_are_ambiguous(backend):
    a, ids = blob_knn(spread=0.3)  # overlapping blobs: many near-equal optima
    first = leiden(KnnGraph.from_adjacency(a, ids), backend=backend, rng=1)
    old = pd.Series(first.membership, index=first.ids)
    noisy = KnnGraph.from_adjacency(perturb(a, 0.01, seed=2), ids)
    init = warm_start(noisy.ids, old)
    second = stabilize(leiden(noisy, backend=backend, initial_membership=init, rng=1), old)
    assert np.mean(second.membership == first.membership) >= 0.95
    assert second.quality == pytest.approx(leiden(noisy, backend=backend, rng=1).quality, rel=0.01)


def test_warm_start_gives_new_items_their_own_labels():
    old = pd.Series([3, 3, 0], index=["a", "b", "c"])
    init = warm_start(["x", "a", "y", "c"], old)
    assert init.tolist() == [4, 3, 5, 0]
    with pytest.raises(InputError, match="`old_membership`"):
        warm_start(["a"], pd.Series([-1], index=["a"]))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 200),
    n_a=st.integers(1, 30),
    n_b=st.sampled_from([1, 7, 50_000]),  # the last takes the sparse path
    seed=st.integers(0, 2**31 - 1),
)
def test_contingency_cells_are_counted_row_major(n: int, n_a: int, n_b: int, seed: int) -> None:
    from collections import Counter

    from ccgraph.cluster.stable_ids import _contingency

    g = np.random.default_rng(seed)
    a, b = g.integers(0, n_a, n), g.integers(0, n_b, n)
    rows, cols, counts = _contingency(a, b, n_a, n_b)
    ref = sorted(Counter(zip(a.tolist(), b.tolist(), strict=True)).items())
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [k for k, _ in ref]
    assert counts.dtype == np.float64 and counts.tolist() == [float(v) for _, v in ref]
