from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import average_precision_score
from sklearn.neighbors import kneighbors_graph

from ccgraph.containers import Embeddings, KnnGraph, TagSet
from ccgraph.evaluate.baselines import (
    Neighbors,
    neighbors_from_embeddings,
    tagprop_tags,
    tagprop_votes,
)
from ccgraph.evaluate.feature_aware import normalized_adjacency
from ccgraph.evaluate.tagprop_smooth import (
    drop_neighbors,
    holdout_map,
    smooth_votes,
    tagprop_holdout,
    tagprop_smooth_tags,
)
from ccgraph.exceptions import InputError
from tests.conftest import blobs


def _data(n=150, seed=0, untagged=0.25):
    """Clustered vectors; each item tagged with its cluster, its cluster's parity, maybe 'photo'."""
    x, labels = blobs(n=n, d=10, centers=4, spread=0.25, seed=seed)
    rng = np.random.default_rng(seed)
    ids = np.array([f"i{i:03d}" for i in range(n)])
    rows = []
    for i in range(n):
        if rng.random() < untagged:
            continue
        rows += [(ids[i], f"c{labels[i]}"), (ids[i], f"p{labels[i] % 2}")]
        if rng.random() < 0.5:
            rows.append((ids[i], "photo"))
    seeds = TagSet.from_frame(pd.DataFrame(rows, columns=["id", "tag"]), ids, weight_column=None)
    graph = KnnGraph.from_adjacency(kneighbors_graph(x, 6, metric="cosine"), ids)
    emb = Embeddings.from_array(x, ids)
    nb = neighbors_from_embeddings(emb, k=8, candidates=seeds.is_tagged)
    return graph, nb, seeds, labels


def _dense_s(adjacency):
    a = sp.csr_matrix(adjacency).toarray().astype(float)
    a = np.maximum(a, a.T)  # KnnGraph adjacency is symmetric already; harmless
    d = a.sum(axis=1)
    inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    return inv[:, None] * a * inv[None, :]


@pytest.mark.parametrize("clamp", ["entries", "rows"])
def test_smooth_votes_equal_the_dense_closed_form(clamp):
    graph, _nb, seeds, _ = _data(n=40, seed=1)
    rng = np.random.default_rng(0)
    votes = rng.random(seeds.matrix.shape) * (rng.random(seeds.matrix.shape) < 0.4)
    alpha = 0.7
    got = smooth_votes(
        normalized_adjacency(graph.adjacency, self_loops=False),
        votes,
        seeds,
        smooth_alpha=alpha,
        clamp=clamp,
        n_iter=300,
    )
    y = seeds.matrix.toarray() > 0
    tagged = y.any(axis=1)
    g0 = votes.copy()
    g0[tagged] = np.maximum(votes[tagged], y[tagged]) if clamp == "entries" else y[tagged]
    s = _dense_s(graph.adjacency)
    want = (1 - alpha) * np.linalg.solve(np.eye(len(s)) - alpha * s, g0)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_correct_step_only_moves_untagged_rows_with_entry_clamp():
    graph, _nb, seeds, _ = _data(n=40, seed=2)
    votes = np.random.default_rng(1).random(seeds.matrix.shape) * 0.5
    s = normalized_adjacency(graph.adjacency, self_loops=False)
    got = smooth_votes(s, votes, seeds, smooth_alpha=0.0, correct_alpha=0.8, clamp="entries")
    y = seeds.matrix.toarray() > 0
    tagged = y.any(axis=1)
    # tagged rows: residual max(P0, Y) - P0 is zero off the visible tags, and is clamped
    np.testing.assert_allclose(got[tagged][~y[tagged]], votes[tagged][~y[tagged]])
    np.testing.assert_allclose(got[tagged][y[tagged]], 1.0)
    # untagged rows receive the positive residuals of their neighbours: never below the votes
    assert (got[~tagged] >= votes[~tagged] - 1e-12).all()
    assert (got[~tagged] > votes[~tagged] + 1e-6).any()


def test_without_smoothing_the_ranking_is_tagprop():
    graph, nb, seeds, _ = _data(seed=3)
    out = tagprop_smooth_tags(
        graph,
        nb,
        seeds,
        smooth_alphas=(0.0,),
        correct_alphas=(0.0,),
        clamps=("entries",),
        top_k=3,
        rng=0,
    )
    ref = tagprop_tags(nb, seeds, top_k=3)
    assert (out.scores != ref.scores).nnz == 0
    np.testing.assert_array_equal(out.scores.indices, ref.scores.indices)


def test_tagprop_votes_are_the_weighted_neighbour_sum():
    sim = np.array([[0.9, 0.6]] * 4, dtype=np.float32)
    index = np.array([[1, 2], [0, 2], [0, 1], [0, 1]])
    ids = np.array(["a", "b", "c", "d"])
    t = pd.DataFrame({"id": ["a", "b", "b", "c"], "tag": ["x", "x", "y", "y"]})
    seeds = TagSet.from_frame(t, ids, weight_column=None)
    prob, fit = tagprop_votes(Neighbors(index, sim, ids), seeds, bandwidths=[0.1])
    w = np.exp(-(1 - sim[0].astype(float)) / 0.1)
    w /= w.sum()
    y = seeds.matrix.toarray()
    want = np.stack([w[0] * y[r[0]] + w[1] * y[r[1]] for r in index])
    np.testing.assert_allclose(prob.toarray(), want, rtol=1e-5)
    assert fit["sigma"] == 0.1


def test_holdout_hides_visible_tags_only():
    _graph, _nb, seeds, _ = _data(n=200, seed=4)
    hold = tagprop_holdout(seeds, fraction=0.2, tag_fraction=0.3, rng=0)
    y = seeds.matrix.toarray() > 0
    kept = hold.seeds.matrix.toarray() > 0
    hid = hold.truth.toarray() > 0
    assert not (hid & ~y).any() and not (hid & kept).any()
    np.testing.assert_array_equal(kept | hid, y)
    assert len(np.intersect1d(hold.cold, hold.partial)) == 0
    assert len(hold.cold) + len(hold.partial) == round(0.2 * y.any(axis=1).sum())
    assert not kept[hold.cold].any() and hid[hold.cold].any(axis=1).all()
    n_tags = y[hold.partial].sum(axis=1)
    n_hid = hid[hold.partial].sum(axis=1)
    assert (kept[hold.partial].sum(axis=1) >= 1).all()
    np.testing.assert_array_equal(
        n_hid, np.minimum(np.maximum(1, np.round(0.3 * n_tags)), n_tags - 1)
    )
    other = np.setdiff1d(np.arange(len(y)), np.concatenate([hold.cold, hold.partial]))
    assert not hid[other].any()


def test_holdout_map_matches_sklearn():
    rng = np.random.default_rng(5)
    pred = rng.random((30, 12))
    truth = sp.csr_matrix(
        (rng.random((30, 12)) < 0.2) | (np.arange(12) == rng.integers(0, 12, 30)[:, None])
    )
    rows = np.arange(30)
    want = np.mean([average_precision_score(truth[r].toarray().ravel(), pred[r]) for r in rows])
    assert holdout_map(pred, truth, rows) == pytest.approx(want)
    # a sparse prediction ranks only its stored entries; a relevant tag left out is missed
    sparse = sp.csr_matrix(np.where(pred > 0.5, pred, 0))
    y = truth.toarray() > 0
    manual = []
    for r in rows:
        order = np.argsort(-np.where(pred[r] > 0.5, pred[r], -np.inf))
        hits = (y[r][order] & (pred[r][order] > 0.5)).astype(float)
        prec = np.cumsum(hits) / np.arange(1, 13)
        manual.append((prec * hits).sum() / y[r].sum())
    assert holdout_map(sparse, truth, rows) == pytest.approx(np.mean(manual))


def test_drop_neighbors_removes_only_those_rows():
    _graph, nb, _seeds, _ = _data(n=60, seed=6)
    gone = np.array([0, 5, 7])
    out = drop_neighbors(nb, gone)
    assert not np.isin(out.index, gone).any()
    keep = ~np.isin(nb.index, gone)
    np.testing.assert_array_equal(out.index[keep], nb.index[keep])
    assert (out.index[~keep] == -1).all()


def test_smoothed_tagprop_recovers_cluster_tags_and_keeps_its_choice():
    graph, nb, seeds, labels = _data(n=200, seed=7)
    out = tagprop_smooth_tags(graph, nb, seeds, top_k=3, rng=0)
    cold = np.flatnonzero(~seeds.is_tagged)
    right = 0
    for i in cold:
        row = out.scores[i]
        top = out.tags[row.indices[np.argmax(row.data)]]
        right += top in (f"c{labels[i]}", f"p{labels[i] % 2}")
    assert right / len(cold) > 0.9
    grid = out.params["grid"]
    best = max(grid, key=lambda g: g[3])
    assert [out.params["clamp"], out.params["correct_alpha"], out.params["smooth_alpha"]] == best[
        :3
    ]
    assert out.scores.multiply(seeds.matrix).nnz == 0
    assert (out.confidence.data >= 0).all() and (out.confidence.data <= 1).all()


def test_too_few_tagged_items_is_named():
    graph, nb, seeds, _ = _data(n=40, seed=8, untagged=0.97)
    with pytest.raises(InputError, match="at least 5 tagged"):
        tagprop_smooth_tags(graph, nb, seeds)
