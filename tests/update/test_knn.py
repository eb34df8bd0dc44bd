"""Updated kNN lists against an exact search over all items after the update."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccgraph.containers import Embeddings
from ccgraph.exceptions import InputError
from ccgraph.graph import build_knn_graph, knn_search
from ccgraph.update._persist import KnnLists
from ccgraph.update.knn import update_knn_lists


def _scenario(
    x: np.ndarray, n_old: int, removed: np.ndarray, replaced: np.ndarray, seed: int, kind: str
) -> tuple[KnnLists, Embeddings, np.ndarray, str]:
    """Old lists over the first ``n_old`` rows; after: some removed, some replaced, rest added."""
    metric = "hamming" if kind == "binary" else "cosine" if kind == "cosine" else "euclidean"
    ids = np.array([f"i{i:03d}" for i in range(len(x))])
    old_emb = Embeddings(x[:n_old], ids[:n_old], "binary" if kind == "binary" else "dense")
    idx, dist = knn_search(old_emb, k=5, metric=metric, backend="exact")
    old = KnnLists(ids[:n_old], idx, dist)
    g = np.random.default_rng(seed)
    x2 = x.copy()
    if kind == "binary":
        x2[replaced] = g.integers(0, 256, size=(len(replaced), x.shape[1]), dtype=np.uint8)
    else:
        x2[replaced] = g.normal(size=(len(replaced), x.shape[1]))
    keep = np.setdiff1d(np.arange(len(x)), removed)
    emb = Embeddings(x2[keep], ids[keep], "binary" if kind == "binary" else "dense")
    batch = np.isin(keep, np.r_[replaced, np.arange(n_old, len(x))])
    return old, emb, batch, metric


@pytest.mark.parametrize("kind", ["cosine", "euclidean", "binary"])
def test_lists_equal_exact_search_after_add_replace_remove(kind: str) -> None:
    g = np.random.default_rng(1)
    if kind == "binary":
        x = g.integers(0, 256, size=(300, 8), dtype=np.uint8)
    else:
        x = g.normal(size=(300, 6)).astype(np.float32)
    old, emb, batch, metric = _scenario(
        x,
        260,
        removed=np.array([0, 7, 100, 259]),
        replaced=np.array([3, 50, 51]),
        seed=2,
        kind=kind,
    )
    new, info = update_knn_lists(old, emb, batch=batch, metric=metric)
    ref_i, ref_d = knn_search(emb, k=5, metric=metric, backend="exact")
    np.testing.assert_allclose(new.distances, ref_d, atol=1e-5)
    if kind != "binary":  # Hamming distances tie often; the sets of distances must agree
        assert (new.indices == ref_i).mean() > 0.99
    assert info["n_batch"] == 43 and info["n_removed"] == 4
    assert info["n_researched"] > 0 and info["n_gained"] > 0
    np.testing.assert_array_equal(new.ids, emb.ids)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_old=st.integers(12, 60),
    n_new=st.integers(0, 15),
    n_removed=st.integers(0, 5),
    seed=st.integers(0, 10_000),
)
def test_lists_exact_for_any_batch(n_old: int, n_new: int, n_removed: int, seed: int) -> None:
    g = np.random.default_rng(seed)
    x = g.normal(size=(n_old + n_new, 4)).astype(np.float32)
    removed = g.choice(n_old, size=n_removed, replace=False)
    old, emb, batch, metric = _scenario(x, n_old, removed, np.zeros(0, int), seed, "cosine")
    new, _ = update_knn_lists(old, emb, batch=batch, metric=metric)
    _, ref_d = knn_search(emb, k=5, metric=metric, backend="exact")
    np.testing.assert_allclose(new.distances, ref_d, atol=1e-5)
    # every list is sorted and never names its own row
    assert (np.diff(new.distances, axis=1) >= -1e-7).all()
    assert not (new.indices == np.arange(len(emb.ids))[:, None]).any()


def test_graph_from_updated_lists_equals_full_build() -> None:
    g = np.random.default_rng(3)
    x = g.normal(size=(200, 5)).astype(np.float32)
    old, emb, batch, metric = _scenario(x, 180, np.array([5, 6]), np.array([9]), 4, "cosine")
    new, _ = update_knn_lists(old, emb, batch=batch, metric=metric)
    a = build_knn_graph(emb, k=5, min_degree=2, knn=(new.indices, new.distances))
    b = build_knn_graph(emb, k=5, min_degree=2, backend="exact")
    assert abs(a.adjacency - b.adjacency).max() < 1e-6
    assert a.adjacency.nnz == b.adjacency.nnz


def test_no_batch_keeps_lists() -> None:
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    old, emb, batch, metric = _scenario(x, 40, np.zeros(0, int), np.zeros(0, int), 0, "cosine")
    new, info = update_knn_lists(old, emb, batch=batch, metric=metric)
    np.testing.assert_array_equal(new.indices, old.indices)
    assert info == {
        "search": "exact",
        "n_batch": 0,
        "n_researched": 0,
        "n_gained": 0,
        "n_removed": 0,
    }


def test_too_few_items_left() -> None:
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    old, emb, batch, metric = _scenario(x, 8, np.arange(4), np.zeros(0, int), 0, "cosine")
    with pytest.raises(InputError, match=r"graph\.k"):
        update_knn_lists(old, emb, batch=batch, metric=metric)


@pytest.mark.parametrize("search", ["exact", "probe"])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_copies_are_listed_as_the_full_search_lists_them(search: str, metric: str) -> None:
    """New items that repeat old vectors (and each other): lists equal the collapsed search's.

    The full search lists a row's bitwise copies at distance 0, ties by row; an update must
    give the same lists, not ones ordered by the rounding of ``1 - x.x``.
    """
    g = np.random.default_rng(5)
    distinct = g.normal(size=(40, 24)).astype(np.float32) * g.uniform(0.5, 3.0, size=(40, 1))
    pick = np.r_[np.arange(40), g.integers(0, 40, size=80)]  # old: 40 distinct + 80 copies
    new = np.r_[g.integers(0, 40, size=25), g.integers(0, 40, size=5).repeat(3)]
    x = distinct[np.r_[pick, new]].astype(np.float32)
    n_old = len(pick)
    old, emb, batch, _ = _scenario(x, n_old, np.zeros(0, int), np.zeros(0, int), 0, metric)
    labels = np.where(batch, -1, np.arange(len(x)) % 7)  # any clusters serve as the index
    got, _ = update_knn_lists(
        old, emb, batch=batch, metric=metric, search=search, labels=labels, min_candidates=1
    )
    ref_i, ref_d = knn_search(emb, k=5, metric=metric, backend="exact")
    np.testing.assert_array_equal(got.indices, ref_i)
    np.testing.assert_allclose(got.distances, ref_d, atol=1e-5)
    kept = np.r_[pick, new]
    has_copy = np.bincount(kept, minlength=40)[kept] > 1
    assert has_copy.sum() > 100
    assert (got.distances[has_copy, 0] == 0).all()  # a row's copies: at exactly 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_old=st.integers(12, 60), n_new=st.integers(0, 15), seed=st.integers(0, 10_000))
def test_additions_in_place_equal_the_general_path(n_old: int, n_new: int, seed: int) -> None:
    # only new items, after the old ones: the in-place path; the same update with the old
    # items listed in another order takes the general path, and both must agree row by row
    g = np.random.default_rng(seed)
    x = g.normal(size=(n_old + n_new, 4)).astype(np.float32)
    old, emb, batch, metric = _scenario(
        x, n_old, np.zeros(0, int), np.zeros(0, int), seed, "cosine"
    )
    idx = np.asarray(old.indices).copy()
    idx[g.random(idx.shape) < 0.1] = -1  # slots the old search left empty
    dist = np.where(idx >= 0, old.distances, np.inf).astype(np.float32)
    order = np.argsort(np.where(idx >= 0, dist, np.inf), axis=1, kind="stable")
    idx, dist = np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)
    old = KnnLists(old.ids, idx, dist)
    fast, _ = update_knn_lists(old, emb, batch=batch, metric=metric)
    perm = np.r_[g.permutation(n_old), np.arange(n_old, n_old + n_new)]
    emb_p = Embeddings(np.asarray(emb.vectors)[perm], emb.ids[perm], "dense")
    slow, _ = update_knn_lists(old, emb_p, batch=batch[perm], metric=metric)
    back = np.argsort(perm)
    slow_i = np.where(slow.indices >= 0, perm[np.maximum(slow.indices, 0)], -1)[back]
    np.testing.assert_array_equal(fast.distances, slow.distances[back])
    np.testing.assert_array_equal(fast.indices, slow_i)
