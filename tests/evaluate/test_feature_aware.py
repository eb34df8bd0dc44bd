from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import Ridge
from sklearn.neighbors import kneighbors_graph

from ccgraph.containers import Embeddings, KnnGraph, TagSet
from ccgraph.evaluate.feature_aware import (
    correct_and_smooth,
    feature_aware_tags,
    normalized_adjacency,
    ridge_fit_predict,
    smooth_features,
)
from tests.conftest import blobs


def _graph(n=30, seed=0):
    a = sp.random(n, n, density=0.2, random_state=seed)
    a = ((a + a.T) > 0).astype(float)
    a.setdiag(0)
    a.eliminate_zeros()
    return a


def _dense_s(a, loops):
    m = a.toarray() + (np.eye(a.shape[0]) if loops else 0)
    d = m.sum(axis=1)
    inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    return np.diag(inv) @ m @ np.diag(inv)


def test_normalized_adjacency_dense_formula():
    a = _graph()
    for loops in (True, False):
        np.testing.assert_allclose(
            normalized_adjacency(a, self_loops=loops).toarray(), _dense_s(a, loops)
        )


def test_smooth_features_sgc_and_ssgc():
    a = _graph(seed=1)
    x = np.random.default_rng(0).random((30, 4))
    s = _dense_s(a, True)
    np.testing.assert_allclose(smooth_features(a, x, k=2), s @ s @ x)
    expected = sum(0.9 * np.linalg.matrix_power(s, k) @ x + 0.1 * x for k in (1, 2, 3)) / 3
    np.testing.assert_allclose(smooth_features(a, x, k=3, method="ssgc", alpha=0.1), expected)


def test_smooth_step_converges_to_closed_form():
    a = _graph(seed=2)
    s = normalized_adjacency(a, self_loops=False)
    base = np.random.default_rng(1).random((30, 3))
    train = np.array([0, 5, 9])
    y = np.eye(3)
    got = correct_and_smooth(s, base, y, train, smooth_alpha=0.6, n_iter=400)
    g0 = base.copy()
    g0[train] = y
    closed = 0.4 * np.linalg.solve(np.eye(30) - 0.6 * s.toarray(), g0)
    np.testing.assert_allclose(got, closed, atol=1e-8)


def test_correct_step_keeps_training_residuals():
    a = _graph(seed=3)
    s = normalized_adjacency(a, self_loops=False)
    base = np.full((30, 2), 0.5)
    train = np.array([1, 2])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = correct_and_smooth(s, base, y, train, correct_alpha=0.5, smooth_alpha=0.0, scale=1.0)
    np.testing.assert_allclose(out[train], y)  # base + residual on the training rows


def test_ridge_matches_sklearn():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(50, 8))
    y = rng.normal(size=(50, 3))
    train = np.arange(0, 50, 2)
    for d_cut in (8, 3):  # primal (n > d) and dual (n <= d) forms
        zz = z[:, :d_cut] if d_cut == 8 else np.hstack([z] * 4)
        got = ridge_fit_predict(zz, train, y[train], lam=0.7)
        ref = Ridge(alpha=0.7).fit(zz[train], y[train]).predict(zz)
        np.testing.assert_allclose(got, ref, atol=1e-8)


def test_feature_aware_tags_recovers_cluster_tags():
    x, labels = blobs(n=200, d=12, centers=4, spread=0.15, seed=5)
    ids = np.array([f"i{i}" for i in range(200)])
    adj = kneighbors_graph(x, 8, metric="cosine", mode="connectivity")
    graph = KnnGraph.from_adjacency(adj, ids)
    rows = [(ids[i], f"c{labels[i]}") for i in range(150)]
    rows += [(ids[i], "common") for i in range(0, 150, 2)]
    seeds = TagSet.from_frame(pd.DataFrame(rows, columns=["id", "tag"]), ids, weight_column=None)
    out = feature_aware_tags(graph, Embeddings.from_array(x, ids), seeds, top_k=2, rng=0)
    frame = out.to_frame()
    test = frame[frame["id"].isin(ids[150:])]
    truth = dict(zip(ids[150:], [f"c{c}" for c in labels[150:]], strict=True))
    found = {i for i, t in zip(test["id"], test["tag"], strict=True) if truth[i] == t}
    assert len(found) / 50 > 0.95  # the cluster tag is in the top 2 (beside "common")
    # seeds are never proposed back to their item
    seeded = set(zip(*[seeds.to_frame()[c] for c in ("id", "tag")], strict=True))
    assert not seeded & set(zip(frame["id"], frame["tag"], strict=True))
    assert 0 <= out.confidence.data.min() and out.confidence.data.max() <= 1
    assert {"k_hops", "lam", "smooth_alpha"} <= set(out.params)


def test_feature_aware_needs_tagged_items():
    x, _ = blobs(n=20, d=4, seed=1)
    ids = [str(i) for i in range(20)]
    graph = KnnGraph.from_adjacency(kneighbors_graph(x, 3), ids)
    seeds = TagSet.from_frame(pd.DataFrame({"id": ["0"], "tag": ["a"]}), ids)
    with pytest.raises(Exception, match="at least 5 tagged"):
        feature_aware_tags(graph, x, seeds)
