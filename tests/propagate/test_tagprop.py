"""TagProp's votes and their blend with label spreading (a run's ``tagprop_weight``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ccgraph import Embeddings, TagSet
from ccgraph.exceptions import ParameterError
from ccgraph.graph import build_knn_graph
from ccgraph.propagate import spread_tags
from ccgraph.propagate.spread_tagprop import (
    WEIGHT_GRID,
    choose_on_holdout,
    spread_tagprop_tags,
    tagprop_holdout,
)
from ccgraph.propagate.tagprop import (
    blend_scores,
    fused_features,
    neighbors_from_embeddings,
    tagprop_votes,
)
from tests.conftest import blobs

N = 160
K = 6
TOP_K = 4


def _data(n: int) -> tuple:
    x, labels = blobs(n=n, d=12, centers=4, spread=0.35, seed=5)
    ids = np.array([f"i{j:03d}" for j in range(n)])
    emb = Embeddings.from_array(x, ids)
    gen = np.random.default_rng(2)
    rows = []
    for j in range(n):
        if gen.random() < 0.6:
            rows.append((ids[j], f"topic{labels[j]}"))
            rows.append((ids[j], f"shade{(labels[j] + (gen.random() < 0.3)) % 4}"))
            if gen.random() < 0.5:
                rows.append((ids[j], f"noise{gen.integers(6)}"))
    seeds = TagSet.from_frame(pd.DataFrame(rows, columns=["id", "tag"]), ids, min_count=2)
    graph = build_knn_graph(emb, k=K, rng=0)
    return emb, graph, seeds


@pytest.fixture(scope="module")
def data() -> tuple:
    """Blobs in 4 topics; 60 % of items tagged with their topic's tags plus a noisy extra."""
    return _data(N)


def _ranked(scores: sp.csr_matrix) -> list[list[int]]:
    out = []
    for i in range(scores.shape[0]):
        row = scores[i]
        out.append(row.indices[np.argsort(-row.data, kind="stable")].tolist())
    return out


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, (3, 4), elements=st.floats(0, 5)),
    arrays(np.float64, (3, 4), elements=st.floats(0, 5)),
    st.floats(0, 1),
)
def test_blend_equals_its_dense_formula(a: np.ndarray, b: np.ndarray, w: float) -> None:
    def norm(m: np.ndarray) -> np.ndarray:
        s = m.sum(axis=1, keepdims=True)
        return np.divide(m, s, out=np.zeros_like(m), where=s > 0)

    got = blend_scores(sp.csr_matrix(a), sp.csr_matrix(b), weight=w).toarray()
    np.testing.assert_allclose(got, (1 - w) * norm(a) + w * norm(b), atol=1e-12)


@pytest.mark.parametrize("block_bytes", [None, 1])
def test_neighbours_are_the_exact_cosine_neighbours_among_candidates(
    data: tuple, block_bytes: int | None, monkeypatch
) -> None:
    from sklearn.metrics.pairwise import cosine_similarity

    from ccgraph.propagate import tagprop

    if block_bytes is not None:  # the smallest blocks (16 rows): the same answer
        monkeypatch.setattr(tagprop, "BLOCK_BYTES", block_bytes)
    emb, _, seeds = data
    cand = np.asarray(seeds.is_tagged, bool)
    nb = neighbors_from_embeddings(emb, k=5, candidates=cand)
    sim = cosine_similarity(emb.vectors)
    sim[:, ~cand] = -np.inf
    np.fill_diagonal(sim, -np.inf)
    want = np.argsort(-sim, axis=1, kind="stable")[:, :5]
    np.testing.assert_allclose(
        np.take_along_axis(sim, nb.index, axis=1), np.take_along_axis(sim, want, axis=1), atol=1e-5
    )
    assert cand[nb.index].all()


def test_tagprop_votes_equal_the_dense_formula_for_a_given_bandwidth(data: tuple) -> None:
    emb, _, seeds = data
    nb = neighbors_from_embeddings(emb, k=5, candidates=seeds.is_tagged)
    sigma = 0.07
    prob, fit = tagprop_votes(nb, seeds, bandwidths=np.array([sigma]))
    d = 1.0 - nb.similarity.astype(np.float64)
    w = np.exp(-(d - d.min(axis=1, keepdims=True)) / sigma)
    w /= w.sum(axis=1, keepdims=True)
    dense = np.zeros((N, N))
    for i in range(N):
        dense[i, nb.index[i]] = w[i]
    y = (seeds.matrix > 0).toarray().astype(np.float64)
    np.testing.assert_allclose(prob.toarray(), dense @ y, atol=1e-6)
    assert fit["sigma"] == sigma


def test_weight_zero_gives_exactly_the_spread_tags(data: tuple) -> None:
    _, graph, seeds = data
    spread = spread_tags(graph, seeds, top_k=TOP_K, min_confidence=0.0, rng=3)
    blend = spread_tagprop_tags(graph, data[0], seeds, weight=0.0, k=5, top_k=TOP_K, rng=3)
    assert _ranked(blend.scores) == _ranked(spread.scores)
    assert blend.params["tagprop_weight"] == 0.0


def test_weight_one_ranks_as_tagprop_votes(data: tuple) -> None:
    emb, graph, seeds = data
    blend = spread_tagprop_tags(graph, emb, seeds, weight=1.0, k=5, top_k=TOP_K, rng=3)
    nb = neighbors_from_embeddings(emb, k=5, candidates=seeds.is_tagged)
    prob, _ = tagprop_votes(nb, seeds)
    p = prob.toarray()
    p[(seeds.matrix > 0).toarray()] = 0.0  # own seeds are never proposed
    got = _ranked(blend.scores)
    for i in range(N):
        want = np.sort(p[i])[::-1][:TOP_K]
        vals = p[i, got[i]]
        # the same top votes (ties may pick either tag), in the votes' order
        np.testing.assert_allclose(vals, want[want > 0], atol=1e-6, err_msg=str(i))


def test_auto_picks_the_best_holdout_weight_and_calibrates(data: tuple) -> None:
    emb, graph, seeds = data
    out = spread_tagprop_tags(graph, emb, seeds, weight="auto", k=5, top_k=TOP_K, rng=4)
    tp = out.params["tagprop"]
    grid = dict((w, s) for w, s in tp["grid"])
    assert sorted(grid) == list(WEIGHT_GRID)
    assert grid[out.params["tagprop_weight"]] == max(grid.values())
    conf = out.confidence
    assert conf.nnz == out.scores.nnz
    assert (conf.data >= 0).all() and (conf.data <= 1).all()
    # the tagged items' isotonic map: a higher blended score never gets a lower confidence
    assert [m["method"] for m in tp["calibration"].values()] == ["isotonic"]
    tagged = np.asarray(seeds.is_tagged, bool)
    s = out.scores[tagged].toarray().ravel()
    c = out.confidence[tagged].toarray().ravel()
    order = np.argsort(s[s > 0], kind="stable")
    assert (np.diff(c[s > 0][order]) >= -1e-6).all()


def test_untagged_items_get_the_blend_of_the_two_methods_probabilities(data: tuple) -> None:
    # oracle: the spreading with its own calibrator and TagProp's votes, run independently
    from ccgraph.propagate import spread_tags
    from ccgraph.propagate.tagprop import neighbors_from_embeddings, tagprop_proposals

    emb, graph, seeds = data
    w = 0.3
    out = spread_tagprop_tags(graph, emb, seeds, weight=w, k=5, top_k=TOP_K, rng=4)
    sp_out = spread_tags(graph, seeds, top_k=TOP_K, min_confidence=0.0, calibrator="auto", rng=4)
    nb = neighbors_from_embeddings(emb, k=5, candidates=seeds.is_tagged)
    prob, _ = tagprop_proposals(nb, seeds, top_k=TOP_K)  # each method's top_k proposals
    untagged = np.flatnonzero(~np.asarray(seeds.is_tagged, bool))
    sub = out.confidence[untagged].tocoo()
    rows, cols = untagged[sub.row], sub.col
    c = np.asarray(sp.csr_matrix(sp_out.confidence)[rows, cols]).ravel()
    p = np.asarray(sp.csr_matrix(prob)[rows, cols]).ravel()
    assert len(rows) > 50
    np.testing.assert_allclose(sub.data, (1 - w) * c + w * p, atol=1e-6)


def test_confidence_matches_precision_on_items_whose_tags_are_hidden() -> None:
    emb, graph, seeds = _data(800)
    gen = np.random.default_rng(7)
    hidden = gen.choice(np.flatnonzero(seeds.is_tagged), size=120, replace=False)
    y = sp.lil_matrix(seeds.matrix)
    truth = (seeds.matrix[hidden] > 0).toarray()
    for i in hidden:
        y[i, :] = 0
    visible = TagSet(sp.csr_matrix(y), seeds.ids, seeds.tags)
    out = spread_tagprop_tags(graph, emb, visible, weight="auto", k=5, top_k=TOP_K, rng=1)
    sub = out.scores[hidden].tocoo()
    correct = truth[sub.row, sub.col]
    conf = np.asarray(out.confidence[hidden][sub.row, sub.col]).ravel()
    assert len(correct) > 300
    assert abs(conf.mean() - correct.mean()) < 0.1  # calibrated on average
    assert conf[correct].mean() > conf[~correct].mean()  # and informative


def test_observed_tags_are_never_proposed(data: tuple) -> None:
    emb, graph, seeds = data
    out = spread_tagprop_tags(graph, emb, seeds, weight=0.5, k=5, top_k=TOP_K, rng=0)
    assert out.scores.multiply(seeds.matrix > 0).nnz == 0


def test_min_confidence_drops_low_confidence_tags(data: tuple) -> None:
    emb, graph, seeds = data
    full = spread_tagprop_tags(graph, emb, seeds, weight=0.5, k=5, top_k=TOP_K, rng=0)
    cut = float(np.median(full.confidence.data)) - 1e-6
    kept = spread_tagprop_tags(
        graph, emb, seeds, weight=0.5, k=5, top_k=TOP_K, min_confidence=cut, rng=0
    )
    assert (kept.confidence.data >= cut).all()
    assert kept.scores.nnz == int((full.confidence.data >= cut).sum())


@pytest.mark.parametrize("weight", [-0.1, 1.5, "best"])
def test_bad_weight_is_refused(data: tuple, weight: object) -> None:
    emb, graph, seeds = data
    with pytest.raises(ParameterError, match="weight"):
        spread_tagprop_tags(graph, emb, seeds, weight=weight, k=5)  # type: ignore[arg-type]


def test_choose_on_holdout_picks_the_prediction_that_recovers_the_holdout(data: tuple) -> None:
    _, _, seeds = data
    hold = tagprop_holdout(seeds, rng=0)
    truth = hold.truth.toarray()
    noise = np.random.default_rng(0).random(truth.shape)
    preds = {"truth": truth + 0.1 * noise, "noise": noise, "inverse": 1.0 - truth}
    best, scores = choose_on_holdout(hold, preds.__getitem__, ["noise", "inverse", "truth"])
    assert best == "truth" and scores["truth"] == pytest.approx(1.0)
    assert scores["inverse"] < scores["noise"] < 1.0


def test_fused_features_concatenate_normalised_dense_modalities() -> None:
    ids = np.array(["a", "b", "c"])
    img = Embeddings.from_array(np.array([[3.0, 4.0], [1.0, 0.0]], np.float32), ids[:2])
    txt = Embeddings.from_array(np.array([[0.0, 2.0, 0.0]] * 3, np.float32), ids)
    fused = fused_features({"image": img, "text": txt}, ids)
    assert fused is not None
    np.testing.assert_allclose(
        fused.vectors,
        [[0.6, 0.8, 0, 1, 0], [1, 0, 0, 1, 0], [0, 0, 0, 1, 0]],
        atol=1e-6,
    )
