from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from ccgraph.containers import Embeddings, KnnGraph, TagSet
from ccgraph.evaluate.baselines import (
    Neighbors,
    knn_vote_tags,
    neighbors_from_embeddings,
    neighbors_from_graph,
    prior_tags,
    random_tags,
    sklearn_label_spreading,
    tagprop_tags,
)
from ccgraph.exceptions import IdMismatchError
from tests.conftest import blobs

IDS = np.array(["a", "b", "c", "d", "e"])


def _seeds() -> TagSet:
    t = pd.DataFrame({"id": ["a", "b", "b", "c", "d"], "tag": ["x", "x", "y", "z", "x"]})
    return TagSet.from_frame(t, IDS, weight_column=None)


def _dense(ts) -> pd.DataFrame:
    return pd.DataFrame(ts.scores.toarray(), index=ts.ids, columns=ts.tags)


def test_prior_ranks_by_frequency_and_skips_own_tags():
    out = prior_tags(_seeds(), top_k=2)
    d = _dense(out)
    # x on 3 of 4 tagged items, y and z on 1: "e" gets x first
    assert d.loc["e"].idxmax() == "x" and d.loc["e", "x"] == pytest.approx(0.75)
    assert d.loc["a", "x"] == 0  # its own seed is never proposed
    assert (np.diff(out.scores.indptr) <= 2).all()


def test_random_is_seeded_and_excludes_seeds():
    a, b = random_tags(_seeds(), top_k=2, rng=1), random_tags(_seeds(), top_k=2, rng=1)
    assert (a.scores != b.scores).nnz == 0
    assert _dense(a).loc["b", ["x", "y"]].sum() == 0


def test_knn_vote_by_hand():
    # e's neighbours: a (x) and b (x, y); prior of x = 3/4, of y = 1/4 over 4 tagged items
    index = np.array([[1, 2], [0, 3], [3, 0], [0, 1], [0, 1]])
    nb = Neighbors(index, np.ones((5, 2), np.float32), IDS)
    d = _dense(knn_vote_tags(nb, _seeds(), top_k=3))
    assert d.loc["e", "x"] == pytest.approx(2 - 2 * 0.75)
    assert d.loc["e", "y"] == pytest.approx(1 - 2 * 0.25)
    assert d.loc["e", "z"] == 0  # no vote -> not proposed
    # c's neighbours d (x) and a (x): x relevance 2 - 1.5
    assert d.loc["c", "x"] == pytest.approx(0.5)


def test_tagprop_weights_dense_oracle():
    sim = np.array([[0.9, 0.5]] * 5, dtype=np.float32)
    index = np.array([[1, 2], [0, 3], [3, 0], [0, 1], [0, 1]])
    nb = Neighbors(index, sim, IDS)
    sigma = 0.2
    out = tagprop_tags(nb, _seeds(), top_k=3, bandwidths=[sigma])
    w = np.exp(-(1 - sim[0]) / sigma)
    w /= w.sum()
    d = _dense(out)
    # e: neighbours a (x) with w0, b (x, y) with w1
    assert d.loc["e", "x"] == pytest.approx(w[0] + w[1], rel=1e-5)
    assert d.loc["e", "y"] == pytest.approx(w[1], rel=1e-5)
    assert out.params["sigma"] == sigma


def test_tagprop_bandwidth_maximises_training_likelihood():
    x, labels = blobs(n=120, d=8, centers=3, seed=0)
    ids = np.array([f"i{i}" for i in range(120)])
    tags = pd.DataFrame({"id": ids[:90], "tag": [f"c{c}" for c in labels[:90]]})
    seeds = TagSet.from_frame(tags, ids, weight_column=None)
    nb = neighbors_from_embeddings(Embeddings.from_array(x, ids), k=8, candidates=seeds.is_tagged)
    out = tagprop_tags(nb, seeds, top_k=3)
    ll = out.params["log_likelihood"]
    assert out.params["sigma"] == out.params["bandwidths"][int(np.argmax(ll))]
    pred = _dense(out).iloc[90:].to_numpy().argmax(axis=1)
    assert (np.array([f"c{c}" for c in labels[90:]]) == seeds.tags[pred]).mean() > 0.9


def test_neighbors_from_embeddings_match_sklearn():
    x, _ = blobs(n=80, d=6, centers=4, seed=3)
    emb = Embeddings.from_array(x, [str(i) for i in range(80)])
    mask = np.arange(80) % 3 != 0
    nb = neighbors_from_embeddings(emb, k=5, candidates=mask, block=16)
    cand = np.flatnonzero(mask)
    ref = NearestNeighbors(n_neighbors=6, metric="cosine").fit(x[cand])
    _, idx = ref.kneighbors(x)
    for i in range(80):
        expected = [c for c in cand[idx[i]] if c != i][:5]
        assert set(nb.index[i]) == set(expected)
    assert not (nb.index == np.arange(80)[:, None]).any()


def test_neighbors_from_graph_keeps_heaviest():
    a = np.array([[0, 0.2, 0.9, 0.5], [0.2, 0, 0, 0], [0.9, 0, 0, 0.1], [0.5, 0, 0.1, 0]])
    g = KnnGraph.from_adjacency(a, ["p", "q", "r", "s"])
    nb = neighbors_from_graph(g, k=2)
    assert nb.index[0].tolist() == [2, 3]
    assert nb.index[1].tolist() == [0, -1]


def test_ids_must_align():
    nb = Neighbors(np.zeros((5, 1), int), np.ones((5, 1), np.float32), IDS[::-1].copy())
    with pytest.raises(IdMismatchError):
        knn_vote_tags(nb, _seeds())


def test_sklearn_label_spreading_matches_closed_form():
    a = sp.random(40, 40, density=0.15, random_state=1)
    a = ((a + a.T) > 0).astype(float)
    a.setdiag(0)
    labels = np.full(40, -1)
    labels[:6] = [0, 1, 2, 0, 1, 2]
    alpha = 0.7
    got = sklearn_label_spreading(a, labels, alpha=alpha, tol=1e-12, max_iter=5000)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0)
    s = np.diag(inv) @ a.toarray() @ np.diag(inv)
    y = np.zeros((40, 3))
    y[np.arange(6), labels[:6]] = 1
    f = np.linalg.solve(np.eye(40) - alpha * s, y)
    reached = f.sum(axis=1) > 0
    np.testing.assert_array_equal(got[reached].argmax(1), f[reached].argmax(1))
