from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph import KnnGraph, TagSet
from ccgraph.exceptions import ParameterError
from ccgraph.propagate import fit_calibrator, holdout_predictions, spread_tags
from ccgraph.propagate.calibration import (
    MIN_FIT_POINTS,
    expected_calibration_error,
    fit_from_predictions,
    holdout_split,
    holdout_tags,
)
from tests.conftest import blobs


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), frac=st.floats(0.05, 0.95), share=st.floats(0.05, 1.0))
def test_holdout_tags_hides_some_but_not_all_tags_of_the_chosen_items(seed, frac, share):
    g = np.random.default_rng(seed)
    y = sp.random(60, 12, density=0.25, format="csr", random_state=seed)
    y.data[:] = g.uniform(0.5, 1.0, y.nnz)
    before = y.copy()
    partial, train = holdout_tags(y, hide_fraction=share, tag_fraction=frac, rng=seed)
    assert (y != before).nnz == 0  # input untouched
    counts, kept = np.diff(y.indptr), np.diff(train.indptr)
    eligible = np.flatnonzero(counts >= 2)
    assert len(partial) == round(share * len(eligible)) and np.isin(partial, eligible).all()
    assert np.all(np.diff(partial) > 0)
    assert (kept[partial] >= 1).all() and (kept[partial] < counts[partial]).all()
    rest = np.setdiff1d(np.arange(60), partial)
    assert (train[rest] != y[rest]).nnz == 0
    # what stays is a subset of the item's entries, with their weights
    d = (y - train).tocsr()
    d.eliminate_zeros()
    assert (d.data > 0).all() and set(np.unique(d.tocoo().row)) <= set(partial)
    again = holdout_tags(y, hide_fraction=share, tag_fraction=frac, rng=seed)
    np.testing.assert_array_equal(again[0], partial)
    assert (again[1] != train).nnz == 0


def test_holdout_tags_hides_the_expected_share():
    y = sp.csr_matrix(np.ones((4000, 10)))
    partial, train = holdout_tags(y, hide_fraction=0.5, tag_fraction=0.33, rng=0)
    hidden = 10 - np.diff(train.indptr)[partial]
    # floor(3.3 + u): 3 with probability 0.7, 4 with 0.3
    assert set(hidden) == {3, 4}
    assert hidden.mean() == pytest.approx(3.3, abs=0.03)
    none = holdout_tags(sp.eye(5, format="csr"), rng=0)
    assert none[0].size == 0 and none[1].nnz == 5


def _planted(seed: int = 0, n: int = 900):
    """Blob graph; tagged items carry their class tag and often a weaker class-specific tag.

    Hiding all tags of an item leaves the easy class tag to guess; hiding part of them (the
    class tag usually stays visible and is excluded from the guesses) leaves the weak ones,
    so the two kinds of item have very different hit rates at the same score.
    """
    x, labels = blobs(n=n, d=16, centers=6, spread=0.5, seed=seed)
    sim = x @ x.T
    np.fill_diagonal(sim, -1)
    k = 10
    idx = np.argsort(-sim, axis=1)[:, :k]
    r = np.repeat(np.arange(n), k)
    a = sp.csr_matrix((np.maximum(sim[r, idx.ravel()], 0.01), (r, idx.ravel())), shape=(n, n))
    graph = KnnGraph.from_adjacency(a)
    g = np.random.default_rng(seed)
    rows = []
    for i in np.flatnonzero(g.random(n) < 0.6):
        c = labels[i]
        rows.append((graph.ids[i], f"class{c}"))
        for j in range(3):
            if g.random() < 0.5:
                rows.append((graph.ids[i], f"c{c}_{j}" if g.random() < 0.6 else f"any{j}"))
    tags = pd.DataFrame(rows, columns=["id", "tag"]).drop_duplicates()
    return graph, TagSet.from_frame(tags, graph.ids)


def test_two_maps_match_each_kinds_hit_rate():
    graph, seeds = _planted()
    cal = fit_calibrator(graph, seeds, rng=0, top_k=5, repeats=3)
    one = fit_calibrator(graph, seeds, rng=0, top_k=5, repeats=3, tag_fraction=None)
    assert cal.tagged is not None and one.tagged is None
    # oracle: fresh holdouts (other seeds), labelled against the hidden tags
    test = pd.concat([holdout_predictions(graph, seeds, rng=s, top_k=5) for s in range(50, 56)])
    hit = test["correct"].to_numpy(float)
    has = test["observed"].to_numpy() > 0
    assert has.sum() > 500 and (~has).sum() > 500
    conf = cal.predict(test["score"], test["rank"], test["mass"], test["observed"])
    old = one.predict(test["score"], test["rank"], test["mass"], test["observed"])
    for kind in (has, ~has):
        # the map's mean confidence is the kind's empirical hit rate, bin by bin
        assert conf[kind].mean() == pytest.approx(hit[kind].mean(), abs=0.03)
        assert expected_calibration_error(conf[kind], hit[kind]) < 0.05
    # the planted gap: partly tagged items are right far less often at the same features,
    # which the one-map calibrator (fitted on wholly hidden items) does not see
    assert hit[has].mean() < hit[~has].mean() - 0.1
    assert old[has].mean() - hit[has].mean() > 0.05
    assert expected_calibration_error(old[has], hit[has]) > 0.07
    # one map for the untagged items is the same fit either way up to the training seeds
    assert expected_calibration_error(old[~has], hit[~has]) < 0.05
    # and spread_tags applies each map to its kind of item
    out = spread_tags(graph, seeds, calibrator=cal, top_k=5)
    assert out.params["calibrator"]["tagged"]["n_fit"] == cal.tagged.n_fit
    json.dumps(out.params["calibrator"])
    untagged_map = spread_tags(graph, seeds, calibrator=replace(cal, tagged=None), top_k=5)
    same = np.isclose(out.confidence.toarray(), untagged_map.confidence.toarray()).all(axis=1)
    tagged_rows = seeds.matrix.getnnz(axis=1) > 0
    has_guess = out.confidence.getnnz(axis=1) > 0
    assert same[~tagged_rows].all()
    assert same[tagged_rows & has_guess].mean() < 0.05
    # the switch back to one map, and the default's two
    auto = spread_tags(graph, seeds, calibrator="auto", rng=0, top_k=5)
    assert (
        auto.params["calibrator"]["tag_fraction"] == 0.3 and "tagged" in auto.params["calibrator"]
    )
    one_auto = spread_tags(
        graph, seeds, calibrator="auto", rng=0, top_k=5, calibration_tag_fraction=None
    )
    assert "tagged" not in one_auto.params["calibrator"]
    with pytest.raises(ParameterError, match="calibration_tag_fraction"):
        spread_tags(graph, seeds, calibrator="auto", calibration_tag_fraction=1.0)


def test_fit_from_predictions_keeps_one_map_without_enough_of_a_kind():
    g = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "score": g.uniform(0.01, 1, n),
            "rank": g.integers(1, 6, n),
            "mass": g.uniform(0.5, 2, n),
            "observed": np.r_[np.zeros(n - MIN_FIT_POINTS + 1), np.ones(MIN_FIT_POINTS - 1)],
            "correct": g.random(n) < 0.4,
        }
    )
    assert fit_from_predictions(df).tagged is None
    df.loc[: MIN_FIT_POINTS * 2, "observed"] = 3
    two = fit_from_predictions(df)
    assert two.tagged is not None
    assert two.tagged.n_fit == (df["observed"] > 0).sum() and two.n_fit == (df.observed == 0).sum()
    # no observed column (e.g. an older table): one map on all rows
    assert fit_from_predictions(df.drop(columns="observed")).n_fit == n


def test_holdout_predictions_draws_items_then_tags_from_one_stream():
    graph, seeds = _planted(seed=1, n=300)
    df = holdout_predictions(graph, seeds, rng=3, top_k=3)
    gen = np.random.default_rng(3)
    hidden, train = holdout_split(seeds.matrix, rng=gen)
    partial, train = holdout_tags(train, rng=gen)
    ids = set(df["id"])
    assert ids <= set(graph.ids[np.union1d(hidden, partial)])
    obs = df.set_index("id")["observed"].groupby(level=0).first()
    want = pd.Series(np.diff(train.indptr), index=graph.ids)
    pd.testing.assert_series_equal(obs, want[obs.index], check_names=False, check_dtype=False)
    assert (obs[list(set(graph.ids[hidden]) & ids)] == 0).all()
    pd.testing.assert_frame_equal(df, holdout_predictions(graph, seeds, rng=3, top_k=3))
    only_items = holdout_predictions(graph, seeds, rng=3, top_k=3, tag_fraction=None)
    assert (only_items["observed"] == 0).all()
    assert set(only_items["id"]) <= set(graph.ids[hidden])
