"""Cluster-probe neighbour search against an exact search (numpy brute force)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.containers import Embeddings
from ccgraph.graph import knn_search
from ccgraph.update._persist import KnnLists
from ccgraph.update._probe import probe_search, top_k_pairs
from ccgraph.update.knn import update_knn_lists
from tests.conftest import blobs


def _brute(x: np.ndarray, rows: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact neighbours of ``rows`` (self excluded), sorted by (distance, row)."""
    if metric == "cosine":
        d = 1.0 - x[rows].astype(np.float64) @ x.T.astype(np.float64)
    else:
        d = np.linalg.norm(x[rows, None, :].astype(np.float64) - x[None, :, :], axis=2)
    d[np.arange(len(rows)), rows] = np.inf
    order = np.lexsort((np.broadcast_to(np.arange(x.shape[0]), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


@settings(max_examples=25, deadline=None)
@given(
    q=st.lists(st.integers(0, 49), min_size=1, max_size=30),
    t=st.lists(st.integers(0, 9), min_size=30, max_size=30),
    k=st.integers(1, 6),
)
def test_top_k_pairs_is_a_sorted_selection(q: list[int], t: list[int], k: int) -> None:
    q_arr = np.array(q)
    t_arr = np.array(t[: len(q)])
    d = (q_arr * 7 + t_arr * 3) % 5 / 10.0  # many ties
    idx, dist = top_k_pairs(q_arr, t_arr, d.astype(np.float32), 50, k)
    for row in range(50):
        mine = sorted(zip(d[q_arr == row], t_arr[q_arr == row], strict=True))[:k]
        got = [(dd, ii) for dd, ii in zip(dist[row], idx[row], strict=True) if ii >= 0]
        assert [ii for _, ii in got] == [ii for _, ii in mine]
        np.testing.assert_allclose([dd for dd, _ in got], [dd for dd, _ in mine], rtol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_probe_finds_the_exact_neighbours_of_clustered_data(metric: str) -> None:
    x, labels = blobs(n=900, d=12, centers=12, spread=0.12, seed=4)
    n_old = 850
    lists, _ = knn_search(x[:n_old], k=6, metric=metric, backend="exact")
    stored = np.vstack([lists, np.full((len(x) - n_old, 6), -1)])
    queries = np.arange(n_old, len(x))
    lab = np.r_[labels[:n_old], np.full(len(x) - n_old, -1)]
    kth = np.full(len(x), -np.inf)
    idx, dist, _, info = probe_search(
        x, queries, lab, stored, kth, k=6, metric=metric, n_probe=2, min_candidates=50
    )
    ref_i, ref_d = _brute(x, queries, 6, metric)
    assert np.isclose(dist, ref_d, atol=1e-5).all(axis=1).mean() >= 0.96
    assert (idx == ref_i).mean() > 0.97
    assert info["estimated_recall"] > 0.95
    # far fewer pairs compared than an exact search
    assert info["n_compared"] < 0.5 * len(queries) * len(x)


def test_probe_distances_are_exact_and_gains_beat_the_kth() -> None:
    """With poor clusters the lists may miss neighbours, but never hold a wrong distance."""
    g = np.random.default_rng(0)
    x = g.normal(size=(400, 6)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lab = np.r_[g.integers(0, 40, 380), np.full(20, -1)]  # random clusters: a bad index
    queries = np.arange(380, 400)
    kth = np.r_[np.full(380, 0.3), np.full(20, -np.inf)]
    idx, dist, (gu, gb, gd), _ = probe_search(
        x,
        queries,
        lab,
        np.full((400, 5), -1),
        kth,
        k=5,
        metric="cosine",
        n_probe=1,
        min_candidates=1,
    )
    true = 1.0 - np.einsum("ij,ij->i", x[np.repeat(queries, 5)], x[idx.ravel()])
    np.testing.assert_allclose(dist.ravel(), np.maximum(true, 0), atol=1e-5)
    assert not (idx == queries[:, None]).any()
    assert (np.diff(dist, axis=1) >= 0).all()
    np.testing.assert_allclose(
        gd, np.maximum(1.0 - np.einsum("ij,ij->i", x[gu], x[gb]), 0), atol=1e-5
    )
    assert (gd <= kth[gu]).all() and (gu < 380).all()


def test_update_lists_with_probe_match_exact_update() -> None:
    x, labels = blobs(n=1200, d=16, centers=10, spread=0.2, seed=9)
    ids = np.array([f"i{i:04d}" for i in range(len(x))])
    n_old = 1100
    idx, dist = knn_search(x[:n_old], k=8, metric="cosine", backend="exact")
    old = KnnLists(ids[:n_old], idx, dist)
    emb = Embeddings(x, ids)
    batch = np.arange(len(x)) >= n_old
    lab = np.r_[labels[:n_old], np.full(len(x) - n_old, -1)]
    exact, _ = update_knn_lists(old, emb, batch=batch, metric="cosine", search="exact")
    probe, info = update_knn_lists(
        old, emb, batch=batch, metric="cosine", search="probe", labels=lab, n_probe=2
    )
    assert info["search"] == "probe" and info["estimated_recall"] > 0.98
    np.testing.assert_allclose(probe.distances, exact.distances, atol=1e-5)
    assert info["n_gained"] > 0
    auto, info_auto = update_knn_lists(old, emb, batch=batch, metric="cosine", search="auto")
    assert info_auto["search"] == "exact"  # small: the exact search is cheap
    np.testing.assert_array_equal(auto.indices, exact.indices)


def test_probe_update_with_removed_and_replaced_items() -> None:
    x, labels = blobs(n=1000, d=16, centers=8, spread=0.15, seed=5)
    ids = np.array([f"i{i:04d}" for i in range(len(x))])
    n_old = 950
    idx, dist = knn_search(x[:n_old], k=6, metric="cosine", backend="exact")
    old = KnnLists(ids[:n_old], idx, dist)
    x2 = x.copy()
    x2[[4, 40]] = x[[900, 901]]  # two items re-embedded next to other clusters' items
    keep = np.setdiff1d(np.arange(len(x)), [7, 70, 700])  # three items removed
    emb = Embeddings(x2[keep], ids[keep])
    batch = np.isin(keep, np.r_[4, 40, np.arange(n_old, len(x))])
    lab = np.where(keep < n_old, labels[keep], -1)
    exact, e_info = update_knn_lists(old, emb, batch=batch, metric="cosine", search="exact")
    probe, p_info = update_knn_lists(
        old, emb, batch=batch, metric="cosine", search="probe", labels=lab, n_probe=2
    )
    assert p_info["n_researched"] == e_info["n_researched"] > 0
    np.testing.assert_allclose(probe.distances, exact.distances, atol=1e-5)
    assert not (probe.indices == np.arange(len(keep))[:, None]).any()


def test_probe_without_any_cluster_falls_back_to_exact() -> None:
    x, _ = blobs(n=200, d=8, centers=3, seed=1)
    ids = np.array([f"i{i:03d}" for i in range(len(x))])
    idx, dist = knn_search(x[:180], k=5, metric="cosine", backend="exact")
    old = KnnLists(ids[:180], idx, dist)
    batch = np.arange(200) >= 180
    got, info = update_knn_lists(
        old, Embeddings(x, ids), batch=batch, metric="cosine", search="probe",
        labels=np.full(200, -1),
    )  # fmt: skip
    assert info["search"] == "exact"
    _, ref_d = knn_search(Embeddings(x, ids), k=5, metric="cosine", backend="exact")
    np.testing.assert_allclose(got.distances, ref_d, atol=1e-5)


def test_recall_on_a_thread_is_the_former_serial_estimate() -> None:
    from ccgraph.update._probe import _dist, _exact_kth, _pick, _recall

    def former(data, queries, top_d, sq, *, sample, rng):  # the serial code it replaces
        g = np.random.default_rng(rng)
        pick = np.sort(g.choice(len(queries), size=min(sample, len(queries)), replace=False))
        rows = queries[pick]
        dist = _dist(data[rows] @ data.T, _pick(sq, rows)[:, None] if sq is not None else None,
                     sq[None, :] if sq is not None else None)  # fmt: skip
        dist[np.arange(len(rows)), rows] = np.inf
        k = top_d.shape[1]
        kth = np.partition(dist, k - 1, axis=1)[:, k - 1]
        found = (top_d[pick] <= kth[:, None] * (1 + 1e-6) + 1e-7).sum(axis=1)
        return float(np.minimum(found, k).sum() / (k * len(rows)))

    g = np.random.default_rng(3)
    data = g.normal(size=(400, 8)).astype(np.float32)
    queries = np.sort(g.choice(400, 40, replace=False))
    for sq in (None, np.einsum("ij,ij->i", data, data)):
        if sq is None:
            data = data / np.linalg.norm(data, axis=1, keepdims=True)
        top_d = np.sort(g.uniform(0, 1.2, size=(40, 5)).astype(np.float32), axis=1)
        got = _recall(top_d, *_exact_kth(data, queries, sq, 5, sample=16, rng=0))
        assert got == former(data, queries, top_d, sq, sample=16, rng=0)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.integers(0, 5), min_size=0, max_size=40),
    pool=st.lists(
        st.sampled_from([-2.5, -1.0, -0.0, 0.0, 1e-30, 0.5, 1.0, 3.0, np.inf, -np.inf, np.nan]),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 100),
)
def test_row_value_order_is_lexsort(rows: list[int], pool: list[float], seed: int) -> None:
    """The one-key sort of :func:`_probes` against ``np.lexsort`` (ties, signed zeros, NaN)."""
    from ccgraph.update._probe import _row_value_order

    g = np.random.default_rng(seed)
    r = np.array(rows, dtype=np.int64)
    v = g.choice(np.array(pool, dtype=np.float32), size=len(r))
    np.testing.assert_array_equal(_row_value_order(r, v), np.lexsort((v, r)))
