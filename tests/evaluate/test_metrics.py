from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, average_precision_score

from ccgraph.evaluate.clusters import cluster_agreement, tag_coherence
from ccgraph.evaluate.metrics import (
    bootstrap_ci,
    coverage,
    expected_calibration_error,
    per_item_metrics,
    per_tag_metrics,
    rank_correlation,
    ranked_hits,
    reliability_table,
)
from ccgraph.exceptions import InputError


def test_hand_computed_precision_recall_ap():
    # item 0: ranking t1 (hit), t3 (miss), t0 (hit); relevant {t0, t1, t2}
    truth = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 1]]))
    scores = sp.csr_matrix(np.array([[0.2, 0.9, 0.0, 0.5], [0.0, 0.3, 0.0, 0.1]]))
    assert scores[0, 2] == 0 and scores.nnz == 5  # t2 is not stored -> never retrieved
    ranked = ranked_hits(truth, scores, depth=3)
    m = per_item_metrics(ranked, k=[1, 2, 3])
    assert m.loc[0, "precision@1"] == 1.0
    assert m.loc[0, "precision@2"] == 0.5
    assert m.loc[0, "recall@3"] == pytest.approx(2 / 3)
    assert m.loc[0, "f1@3"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    # AP = (1/1 + 2/3) / 3 relevant
    assert m.loc[0, "ap"] == pytest.approx((1 + 2 / 3) / 3)
    # item 1: t1 (miss) then t3 (hit)
    assert m.loc[1, "precision@1"] == 0.0
    assert m.loc[1, "ap"] == pytest.approx(0.5)
    assert m.loc[1, "recall@2"] == 1.0


def test_items_without_relevant_tags_are_nan():
    truth = sp.csr_matrix((2, 3))
    scores = sp.csr_matrix(np.ones((2, 3)))
    m = per_item_metrics(ranked_hits(truth, scores, depth=3), k=[1])
    assert m["precision@1"].isna().all() and m["ap"].isna().all()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12))
def test_ap_matches_sklearn_when_every_tag_is_ranked(seed, n_tags):
    rng = np.random.default_rng(seed)
    y = (rng.random((6, n_tags)) < 0.4).astype(int)
    y[:, 0] = 1  # every row has a relevant tag
    s = rng.random((6, n_tags)) + 0.01  # distinct, all stored
    ap = per_item_metrics(ranked_hits(sp.csr_matrix(y), sp.csr_matrix(s), depth=n_tags), k=[1])[
        "ap"
    ]
    expected = [average_precision_score(y[i], s[i]) for i in range(6)]
    np.testing.assert_allclose(ap, expected)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_per_tag_ap_matches_sklearn_columnwise(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((9, 4)) < 0.35).astype(int)
    y[0] = 1
    s = rng.random((9, 4)) + 0.01
    got = per_tag_metrics(sp.csr_matrix(y), sp.csr_matrix(s), k=2).set_index("tag")["ap"]
    for t in got.index:
        assert got[t] == pytest.approx(average_precision_score(y[:, t], s[:, t]))


def test_per_tag_recall_and_n_plus():
    truth = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]]))
    scores = sp.csr_matrix(np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0.0, 0.5, 0.4]]))
    t = per_tag_metrics(truth, scores, k=1).set_index("tag")
    # top-1: item0 -> t0 (hit), item1 -> t1 (hit), item2 -> t1 (miss)
    assert t.loc[0, "recall"] == 0.5 and t.loc[1, "recall"] == 1.0 and t.loc[2, "recall"] == 0
    assert t.loc[1, "precision"] == 0.5
    assert int((t["recall"] > 0).sum()) == 2


def test_coverage():
    s = sp.csr_matrix(np.array([[0.0, 0.3], [0.0, 0.0], [0.05, 0.0]]))
    np.testing.assert_array_equal(coverage(s), [1, 0, 1])
    np.testing.assert_array_equal(coverage(s, min_score=0.1), [1, 0, 0])


def test_reliability_and_ece_by_hand():
    conf = np.array([0.1, 0.1, 0.9, 0.9, 0.9, 0.9])
    ok = np.array([0, 0, 1, 1, 1, 0])
    table = reliability_table(conf, ok, n_bins=2)
    assert table["count"].tolist() == [2, 4]
    assert table["accuracy"].tolist() == [0.0, 0.75]
    # ECE = 2/6 * |0 - 0.1| + 4/6 * |0.75 - 0.9|
    assert expected_calibration_error(conf, ok, n_bins=2) == pytest.approx(
        2 / 6 * 0.1 + 4 / 6 * 0.15
    )
    with pytest.raises(InputError):
        reliability_table(np.array([1.5]), np.array([1]))


def test_rank_correlation_against_scipy_values():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([5.0, 6.0, 7.0, 8.0, 7.5])
    r = rank_correlation(x, y)
    assert r["spearman"] == pytest.approx(0.9)  # one adjacent swap: 1 - 6*2/(5*24)
    assert r["kendall"] == pytest.approx(0.8)  # 9 concordant, 1 discordant of 10
    assert np.isnan(rank_correlation(np.ones(5), y)["spearman"])


def test_cluster_agreement_purity_by_hand():
    m = np.array([0, 0, 0, 1, 1, 1])
    c = np.array([0, 0, 1, 1, 1, 1])
    out = cluster_agreement(m, c)
    assert out["purity"] == pytest.approx(5 / 6)
    assert out["ari"] == pytest.approx(adjusted_rand_score(c, m))
    perfect = cluster_agreement(np.array([3, 3, 7, 7]), np.array([0, 0, 1, 1]))
    assert perfect["nmi"] == pytest.approx(1.0) and perfect["purity"] == 1.0


def test_tag_coherence_dense_oracle():
    rng = np.random.default_rng(0)
    tags = sp.csr_matrix((rng.random((30, 6)) < 0.3).astype(float))
    m = rng.integers(0, 4, 30)
    got = tag_coherence(m, tags, rng=0)["coherence"]
    dense = tags.toarray()
    norms = np.linalg.norm(dense, axis=1)
    total, pairs = 0.0, 0
    for i in range(30):
        for j in range(30):
            if i != j and m[i] == m[j] and norms[i] > 0 and norms[j] > 0:
                total += dense[i] @ dense[j] / (norms[i] * norms[j])
                pairs += 1
    assert got == pytest.approx(total / pairs)


def test_tag_coherence_lift_for_tag_aligned_clusters():
    tags = sp.csr_matrix(np.kron(np.eye(3), np.ones((10, 1))))
    out = tag_coherence(np.repeat([0, 1, 2], 10), tags, rng=1)
    assert out["coherence"] == pytest.approx(1.0)
    assert out["lift"] > 2


def test_bootstrap_ci_covers_known_mean():
    # 200 independent samples: the 95 % interval should cover the true mean ~95 % of the time
    rng = np.random.default_rng(0)
    x = rng.normal(loc=3.0, scale=1.0, size=(200, 200))
    ci = bootstrap_ci(x, n_boot=400, rng=1)
    covered = ((ci["ci_low"] < 3.0) & (3.0 < ci["ci_high"])).mean()
    assert 0.88 <= covered <= 0.99
    # width close to the normal-theory 2 * 1.96 / sqrt(200)
    assert (ci["ci_high"] - ci["ci_low"]).mean() == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.1)
    np.testing.assert_allclose(ci["mean"], x.mean(axis=0))


def test_bootstrap_ignores_nan_and_is_seeded():
    x = np.array([1.0, np.nan, 3.0, 5.0])
    a = bootstrap_ci(x, n_boot=100, rng=3)
    b = bootstrap_ci(x, n_boot=100, rng=3)
    pd.testing.assert_frame_equal(a, b)
    assert a.loc[0, "mean"] == 3.0 and a.loc[0, "n"] == 3
    assert 1.0 <= a.loc[0, "ci_low"] <= a.loc[0, "ci_high"] <= 5.0


def test_bootstrap_paired_difference_excludes_zero():
    rng = np.random.default_rng(2)
    base = rng.random(300)
    better = base + 0.05 + 0.01 * rng.normal(size=300)
    ci = bootstrap_ci(np.column_stack([better - base]), n_boot=300, rng=0)
    assert ci.loc[0, "ci_low"] > 0


def test_tag_coherence_without_tagged_items_is_nan():
    # before: scipy ValueError "cannot infer dimensions from zero sized index arrays" (a run
    # of `ccgraph evaluate` whose split left no visible tag)
    out = tag_coherence(np.array([0, 0, 1]), sp.csr_matrix((3, 4)), rng=0)
    assert np.isnan(out["coherence"]) and np.isnan(out["shuffled"]) and np.isnan(out["lift"])
