from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import kneighbors_graph

from ccgraph.containers import KnnGraph
from ccgraph.evaluate.popularity import (
    evaluate_popularity,
    knn_mean_popularity,
    provider_median_popularity,
)
from tests.conftest import blobs


def test_knn_mean_by_hand():
    a = np.array([[0, 1, 3, 0], [1, 0, 0, 0], [3, 0, 0, 1], [0, 0, 1, 0]], dtype=float)
    g = KnnGraph.from_adjacency(a, list("abcd"))
    pop = np.array([np.nan, 0.2, 0.6, np.nan])
    got = knn_mean_popularity(g, pop)
    assert got[0] == pytest.approx((1 * 0.2 + 3 * 0.6) / 4)
    assert np.isnan(got[1])  # its only neighbour is unobserved
    assert got[3] == pytest.approx(0.6)


def test_provider_median():
    got = provider_median_popularity(np.array([0.1, 0.3, np.nan, 0.8]), np.array(list("aaab")))
    np.testing.assert_allclose(got, [0.2, 0.2, 0.2, 0.8])


def test_evaluate_popularity_recovers_smooth_signal():
    pytest.importorskip("ccgraph.propagate", reason="needs ccgraph.propagate")
    from ccgraph import propagate

    if not hasattr(propagate, "infer_popularity"):
        pytest.skip("ccgraph.propagate.infer_popularity not available")
    x, labels = blobs(n=300, d=8, centers=3, spread=0.2, seed=0)
    ids = [str(i) for i in range(300)]
    g = KnnGraph.from_adjacency(kneighbors_graph(x, 8), ids)
    raw = np.array([10.0, 100.0, 1000.0])[labels] * np.random.default_rng(0).uniform(0.5, 1.5, 300)
    out = evaluate_popularity(g, raw, np.array(["p"] * 300), fraction=0.3, n_boot=100, rng=0)
    assert out["knn_mean"]["spearman"] > 0.5
    assert out["ppr"]["spearman"] > 0.5
    lo, hi = out["ppr"]["spearman 95% CI"]
    assert lo <= out["ppr"]["spearman"] <= hi
    assert out["_split"]["hidden"] == 90
