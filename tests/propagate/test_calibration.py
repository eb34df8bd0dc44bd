from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph import KnnGraph, TagSet
from ccgraph.exceptions import DataQualityWarning, InputError, ParameterError
from ccgraph.propagate import (
    expected_calibration_error,
    fit_calibrator,
    holdout_predictions,
    precision_coverage,
    reliability_table,
    spread_tags,
)
from ccgraph.propagate.calibration import (
    _isotonic,
    fit_from_predictions,
    holdout_split,
    label_holdout,
)
from tests.conftest import blobs


def test_ece_by_hand():
    conf = [0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95]
    correct = [0, 0, 1, 1, 1, 1, 0]
    # bins: [0,.1): conf .05 acc 0 ; [.1,.2): conf .15 acc .5 ; [.9,1]: conf .95 acc .75
    want = (1 * 0.05 + 2 * 0.35 + 4 * 0.2) / 7
    assert expected_calibration_error(conf, correct) == pytest.approx(want)
    table = reliability_table(conf, correct)
    assert table["n"].sum() == 7 and table.loc[9, "accuracy"] == pytest.approx(0.75)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0


def test_isotonic_matches_sklearn():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(0)
    z = np.round(rng.normal(size=400), 2)  # with ties
    y = (rng.random(400) < 1 / (1 + np.exp(-2 * z))).astype(float)
    kx, ky = _isotonic(z, y)
    ref = IsotonicRegression(out_of_bounds="clip").fit(z, y)
    grid = np.linspace(-3, 3, 101)
    np.testing.assert_allclose(np.interp(grid, kx, ky), ref.predict(grid), atol=1e-12)
    assert (np.diff(ky) >= -1e-15).all()


def test_precision_coverage_by_hand():
    pc = precision_coverage(
        [0.9, 0.6, 0.2, 0.1], [1, 1, 0, 1], items=["a", "a", "b", "c"], thresholds=[0.0, 0.5, 0.95]
    )
    assert pc["kept"].tolist() == [1.0, 0.5, 0.0]
    assert pc["precision"].iloc[:2].tolist() == [0.75, 1.0] and np.isnan(pc["precision"].iloc[2])
    assert pc["item_coverage"].tolist() == [1.0, 1 / 3, 0.0]


def _blob_case(seed=0):
    from ccgraph import KnnGraph

    x, labels = blobs(n=400, d=16, centers=5, spread=0.6, seed=seed)
    sim = x @ x.T
    np.fill_diagonal(sim, -1)
    idx = np.argsort(-sim, axis=1)[:, :8]
    r = np.repeat(np.arange(400), 8)
    a = sp.csr_matrix((np.maximum(sim[r, idx.ravel()], 0.01), (r, idx.ravel())), shape=(400, 400))
    g = KnnGraph.from_adjacency(a)
    rng = np.random.default_rng(seed)
    tagged = rng.random(400) < 0.5
    rows = []
    for i in np.flatnonzero(tagged):  # a class tag plus a noisy second tag
        rows.append((g.ids[i], f"class{labels[i]}"))
        if rng.random() < 0.5:
            rows.append((g.ids[i], f"noise{rng.integers(0, 6)}"))
    return g, TagSet.from_frame(pd.DataFrame(rows, columns=["id", "tag"]), g.ids)


def test_holdout_predictions_are_labelled_against_hidden_seeds():
    g, seeds = _blob_case()
    df = holdout_predictions(g, seeds, hide_fraction=0.3, rng=1, top_k=3)
    truth = seeds.to_frame().set_index(["id", "tag"]).index
    assert (
        df["correct"].to_numpy().tolist() == df.set_index(["id", "tag"]).index.isin(truth).tolist()
    )
    assert set(df["id"]) <= set(seeds.ids[seeds.is_tagged])
    assert df["rank"].between(1, 3).all()
    again = holdout_predictions(g, seeds, hide_fraction=0.3, rng=1, top_k=3)
    pd.testing.assert_frame_equal(df, again)  # rng makes it reproducible


def test_holdout_split_hides_a_share_of_seeded_rows():
    _, seeds = _blob_case()
    y = sp.csr_matrix(seeds.matrix)
    seeded = np.flatnonzero(np.diff(y.indptr) > 0)
    hidden, train = holdout_split(y, hide_fraction=0.3, rng=4)
    assert len(hidden) == round(0.3 * len(seeded))
    assert np.all(np.diff(hidden) > 0) and np.isin(hidden, seeded).all()
    assert train.getnnz(axis=1)[hidden].sum() == 0
    rest = np.setdiff1d(np.arange(y.shape[0]), hidden)
    assert (train[rest] != y[rest]).nnz == 0
    # the draw is numpy's choice over the seeded rows with that seed (the local run's draw)
    expect = np.sort(np.random.default_rng(4).choice(seeded, size=len(hidden), replace=False))
    np.testing.assert_array_equal(hidden, expect)
    with pytest.raises(InputError, match="too few"):
        holdout_split(sp.csr_matrix((5, 2)), rng=0)


def test_label_holdout_marks_hidden_seed_tags():
    ids = np.array(["a", "b", "c"])
    seeds = TagSet.from_frame(pd.DataFrame({"id": ["a", "a", "c"], "tag": ["x", "y", "x"]}), ids)
    x, y = list(seeds.tags).index("x"), list(seeds.tags).index("y")
    df = label_holdout(seeds, [0, 0, 1, 2], [x, y, x, y], [0.5, 0.2, 0.1, 0.3], [1, 2, 1, 1],
                       [1.5, 1.5, 0.5, 1.0])  # fmt: skip
    assert df["correct"].tolist() == [True, True, False, False]
    assert df["id"].tolist() == ["a", "a", "b", "c"]
    assert df["tag"].tolist() == ["x", "y", "x", "y"]
    assert df["mass"].tolist() == [1.5, 1.5, 0.5, 1.0]


def test_calibrated_confidence_is_calibrated_out_of_sample():
    g, seeds = _blob_case(seed=2)
    fit = pd.concat([holdout_predictions(g, seeds, rng=s, top_k=5) for s in range(4)])
    test = pd.concat([holdout_predictions(g, seeds, rng=s, top_k=5) for s in range(10, 14)])
    for method in ("isotonic", "platt"):
        cal = fit_from_predictions(fit, method=method)
        conf = cal.predict(test["score"], test["rank"], test["mass"])
        assert ((conf >= 0) & (conf <= 1)).all()
        raw_ece = expected_calibration_error(np.clip(test["score"], 0, 1), test["correct"])
        ece = expected_calibration_error(conf, test["correct"])
        assert ece < 0.08 and ece < raw_ece
    json.dumps(cal.describe())


def test_spread_tags_auto_calibrator_and_abstention():
    g, seeds = _blob_case(seed=3)
    out = spread_tags(g, seeds, calibrator="auto", rng=0, top_k=3)
    assert out.params["calibrator"]["method"] == "isotonic"
    cut = spread_tags(g, seeds, calibrator="auto", rng=0, top_k=3, min_confidence=0.5)
    assert 0 < cut.scores.nnz < out.scores.nnz
    assert (cut.confidence.data >= 0.5).all()


def test_constant_calibrator_when_too_few_points():
    df = pd.DataFrame(
        {"score": [0.1, 0.2], "rank": [1, 2], "mass": [1.0, 1.0], "correct": [True, False]}
    )
    cal = fit_from_predictions(df)
    np.testing.assert_allclose(cal.predict([0.5, 0.01], [1, 1], [1, 1]), [0.5, 0.5])


def test_fit_calibrator_reproducible():
    g, seeds = _blob_case(seed=4)
    a = fit_calibrator(g, seeds, rng=5, top_k=3)
    b = fit_calibrator(g, seeds, rng=5, top_k=3)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.iso_y, b.iso_y)


# ---- acceptance on the real Openverse sample ----------------------------------------------


def openverse_case(path):
    """Seeds from the 2023 sample (user tags 1, Clarifai tags their accuracy) and a graph from
    TF-IDF of titles + descriptions (no tags in the graph)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    df = pd.read_csv(path).drop_duplicates("identifier").reset_index(drop=True)
    ids = df["identifier"].astype(str).to_numpy()
    rows = []
    for ident, t in zip(ids, df["tags"], strict=True):
        if not (isinstance(t, str) and t.strip().startswith("[")):
            continue
        try:
            entries = json.loads(t)
        except json.JSONDecodeError:
            continue
        for e in entries:
            name = str(e.get("name", "")).strip().lower()
            if name:
                acc = e.get("accuracy")
                rows.append((ident, name, float(acc) if acc is not None else 1.0))
    tags = pd.DataFrame(rows, columns=["id", "tag", "weight"])

    def desc(m):
        try:
            return json.loads(m).get("description", "") or ""
        except (TypeError, ValueError, AttributeError):
            return ""

    text = (df["title"].fillna("") + " " + df["meta_data"].map(desc)).to_numpy()
    vec = TfidfVectorizer(min_df=2, sublinear_tf=True, token_pattern=r"(?u)\b[^\W\d_]{3,}\b")
    x = vec.fit_transform(text)
    sim = (x @ x.T).toarray()
    np.fill_diagonal(sim, 0)
    k = 10
    idx = np.argsort(-sim, axis=1)[:, :k]
    r = np.repeat(np.arange(len(ids)), k)
    w = sim[r, idx.ravel()]
    ok = w >= 0.1
    a = sp.csr_matrix((w[ok], (r[ok], idx.ravel()[ok])), shape=(len(ids), len(ids)))
    return KnnGraph.from_adjacency(a, ids), TagSet.from_frame(tags, ids, min_count=2)


def test_openverse_ece_acceptance(openverse_dir):
    g, seeds = openverse_case(openverse_dir / "openverse_api_sample_images_to_clean_2023.csv")
    fit = pd.concat([holdout_predictions(g, seeds, rng=s) for s in range(3)])
    test = pd.concat([holdout_predictions(g, seeds, rng=s) for s in range(100, 103)])
    cal = fit_from_predictions(fit)
    conf = cal.predict(test["score"], test["rank"], test["mass"])
    assert expected_calibration_error(conf, test["correct"]) <= 0.05


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(4096, 12_000),
    knots=st.integers(1, 5000),
    seed=st.integers(0, 10_000),
    specials=st.booleans(),
)
def test_sorted_interp_is_np_interp(n: int, knots: int, seed: int, specials: bool) -> None:
    from ccgraph.propagate.calibration import _interp

    g = np.random.default_rng(seed)
    xp = np.unique(np.round(g.normal(size=knots), 3))
    fp = np.maximum.accumulate(g.random(len(xp)))
    x = np.round(g.normal(scale=1.5, size=n), 3)  # on knots, between them and outside
    if specials:
        x[:3] = [np.nan, np.inf, -np.inf]
    np.testing.assert_array_equal(_interp(x, xp, fp), np.interp(x, xp, fp))
    np.testing.assert_array_equal(_interp(x[:10], xp, fp), np.interp(x[:10], xp, fp))


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"tol": 0.0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"top_k": 0}, "top_k"),
        ({"tag_block": 0}, "tag_block"),
        ({"dtype": "float16"}, "dtype"),
        ({"reorder": "x"}, "reorder"),
        ({"prune": 1, "top_k": 5}, "prune"),
        ({"freeze": 0}, "freeze"),
    ],
)
def test_holdout_and_fit_validate_spreading_settings(kw, name):
    # before: alpha=1 / max_iter=0 raised numpy's "truth value of an array" ValueError,
    # alpha=-1 fitted a calibrator silently, top_k=0 crashed the process (free(): invalid pointer)
    w = np.zeros((20, 20))
    for i in range(19):
        w[i, i + 1] = w[i + 1, i] = 1.0
    g = KnnGraph.from_adjacency(w, [f"i{i}" for i in range(20)])
    rows = pd.DataFrame({"id": [f"i{i}" for i in range(0, 20, 2)], "tag": ["a", "b"] * 5})
    seeds = TagSet.from_frame(rows, g.ids)
    for fn in (holdout_predictions, fit_calibrator):
        with pytest.raises(ParameterError, match=f"`{name}`"):
            fn(g, seeds, rng=0, **kw)


def test_no_held_out_prediction_leaves_confidences_uncalibrated():
    # path 0-1-2 seeded at 0, items 3..6 isolated and seeded: whichever seeded item is hidden
    # gets no inferred tag. Before: label_holdout raised numpy's "truth value of an array"
    # ValueError on the empty selection; with that fixed, a constant-0 calibrator would have
    # given every inferred tag confidence 0.0. Now calibration is skipped with a warning.
    w = np.zeros((7, 7))
    w[0, 1] = w[1, 0] = w[1, 2] = w[2, 1] = 1.0
    g = KnnGraph.from_adjacency(w, [f"i{i}" for i in range(7)])
    rows = pd.DataFrame({"id": ["i0", "i3", "i4", "i5", "i6"], "tag": ["x"] * 5})
    seeds = TagSet.from_frame(rows, g.ids)
    assert label_holdout(seeds, [], [], [], [], []).empty
    with pytest.raises(InputError, match="nothing to calibrate"):
        fit_calibrator(g, seeds, rng=0)
    with pytest.warns(DataQualityWarning, match="calibration skipped"):
        out = spread_tags(g, seeds, calibrator="auto", rng=0)
    frame = out.to_frame()
    assert sorted(frame["id"]) == ["i1", "i2"]
    np.testing.assert_allclose(frame["confidence"], 1.0)  # the only tag: all of the mass
