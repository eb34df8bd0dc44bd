from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from ccgraph import KnnGraph
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.propagate import infer_popularity, standardize_popularity
from ccgraph.propagate.popularity import extreme_outliers
from tests.propagate._graphs import random_graph


def _disc_percentile(values, q):
    """PostgreSQL percentile_disc: the first sorted value whose cumulative share reaches q."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def test_standardize_by_hand():
    raw = [1, 5, 9, 42, 100, 7, np.nan, 3, 0, 12, 250]
    prov = ["f", "f", "f", "f", "f", "w", "w", "w", "w", "w", "w"]
    out = standardize_popularity(raw, prov, percentile=85, r=0.85)
    for name in ("f", "w"):
        vals = [x for x, p in zip(raw, prov, strict=True) if p == name and not math.isnan(x)]
        v = _disc_percentile(vals, 0.85)
        c = (1 - 0.85) / 0.85 * v
        for i, (x, p) in enumerate(zip(raw, prov, strict=True)):
            if p == name and not math.isnan(x):
                assert out[i] == pytest.approx(x / (x + c), abs=1e-12)
    assert math.isnan(out[6])
    # an item exactly at the provider's percentile scores r
    assert out[4] == pytest.approx(0.85)


def test_standardize_zero_percentile_provider():
    out = standardize_popularity([0, 0, 0, 0, 5, np.nan], ["a"] * 6, percentile=50)
    c = 0.15 / 0.85 * 5  # V falls back to the smallest positive value
    np.testing.assert_allclose(out[:5], [0, 0, 0, 0, 5 / (5 + c)])
    zeros = standardize_popularity([0, 0, 0], ["z"] * 3)
    np.testing.assert_array_equal(zeros, [0, 0, 0])


def test_standardize_bad_inputs():
    with pytest.raises(InputError, match="non-negative"):
        standardize_popularity([1, -1], ["a", "a"])
    with pytest.raises(InputError, match="provider"):
        standardize_popularity([1, 2], ["a"])
    with pytest.raises(ParameterError, match="percentile"):
        standardize_popularity([1], ["a"], percentile=100)


def test_infer_matches_dense_random_walk_average():
    g = random_graph(n=50, seed=2, isolated=3)
    rng = np.random.default_rng(2)
    raw = np.where(rng.random(50) < 0.3, rng.integers(0, 500, 50).astype(float), np.nan)
    raw[:2] = [10.0, 400.0]  # make sure the first component has observations
    prov = np.where(rng.random(50) < 0.5, "flickr", "wikimedia")
    pop = infer_popularity(g, raw, prov, alpha=0.85)
    std = standardize_popularity(raw, prov)
    obs = np.isfinite(std)
    w = g.adjacency.toarray().astype(float)
    d = w.sum(1)
    p = np.divide(w, d[:, None], out=np.zeros_like(w), where=d[:, None] > 0)
    pi = 0.15 * np.linalg.inv(np.eye(50) - 0.85 * p)
    num = pi @ np.where(obs, std, 0.0)
    den = pi @ obs.astype(float)
    inferred = ~obs & (den > 1e-12)
    np.testing.assert_allclose(pop.value[inferred], num[inferred] / den[inferred], atol=1e-8)
    np.testing.assert_allclose(pop.value[obs], std[obs])
    np.testing.assert_allclose(pop.confidence[inferred], den[inferred] / 0.85, atol=1e-8)
    assert set(pop.source[obs]) == {"observed"}
    assert (pop.source[inferred] == "inferred").all()
    none = ~obs & ~inferred
    assert (pop.source[none] == "none").all() and np.isnan(pop.value[none]).all()
    assert (pop.confidence[obs] == 1).all()
    assert ((pop.confidence >= 0) & (pop.confidence <= 1)).all()
    np.testing.assert_array_equal(np.isnan(pop.observed), np.isnan(raw))


def test_infer_component_without_observations_is_none():
    w = np.zeros((5, 5))
    w[0, 1] = w[1, 0] = 1.0
    w[2, 3] = w[3, 2] = w[3, 4] = w[4, 3] = 1.0
    g = KnnGraph.from_adjacency(w, list("abcde"))
    pop = infer_popularity(g, [5.0, np.nan, np.nan, np.nan, np.nan], ["x"] * 5)
    assert pop.source.tolist() == ["observed", "inferred", "none", "none", "none"]
    assert pop.value[1] == pytest.approx(pop.value[0])  # the only observed value reachable
    assert list(pop.ids) == list("abcde")


def test_infer_bad_length():
    g = random_graph(n=10)
    with pytest.raises(InputError, match="observed_raw"):
        infer_popularity(g, [1.0], ["a"])


def test_extreme_outliers_by_hand():
    from ccgraph.propagate.popularity import extreme_outliers

    # provider a: 14 ordinary counts and one 1e30 (above the 85th percentile: only itself
    # saturates); provider b: 3 of 5 values are 1e30 (the percentile falls on them).
    raw = [*range(1, 15), 1e30, 5, 7, 1e30, 1e30, 1e30, np.nan]
    prov = ["a"] * 15 + ["b"] * 6
    found = extreme_outliers(raw, prov)
    assert [(name, rows.tolist(), sets) for name, rows, sets in found] == [
        ("a", [14], False),
        ("b", [17, 18, 19], True),
    ]
    # b's ordinary items really are pushed to ~0 by the formula (the warned-about effect)
    std = standardize_popularity(raw, prov)
    assert std[15] < 1e-20 and std[0] > 0.05
    # heavy but ordinary tails (jumps well under 1e6x) are not outliers
    assert extreme_outliers([0, 1, 3, 40, 900, 9144, 2e5], ["f"] * 7) == []
    with pytest.raises(InputError, match="`provider` has 1 entries but `raw` has 2"):
        extreme_outliers([1, 2], ["a"])


@pytest.mark.parametrize("big", [1e308, 1.7e308])
def test_huge_raw_values_do_not_overflow(big):
    # before: numpy RuntimeWarning "overflow encountered in multiply" (outlier test) and
    # "... in add" (x + C) on top of the pipeline's outlier warning
    raw = np.array([1.0, 3.0, big, big, np.nan])
    prov = ["a"] * 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = extreme_outliers(raw, prov, percentile=50)
        got = standardize_popularity(raw, prov, percentile=50, r=0.85)
        pop = infer_popularity(KnnGraph.from_adjacency(np.ones((5, 5))), raw, prov)
    assert [(name, rows.tolist()) for name, rows, _ in found] == [("a", [2, 3])]
    # V = 3 (the median of 1, 3, big, big): C = 3 * 0.15 / 0.85, p = x / (x + C) in exact terms
    c = Fraction(3) * Fraction(15, 100) / Fraction(85, 100)
    want = [float(Fraction(x) / (Fraction(x) + c)) for x in raw[:4]]
    np.testing.assert_allclose(got[:4], want, rtol=1e-14)
    assert math.isnan(got[4]) and pop.source[4] == "inferred"


def test_huge_values_with_a_tiny_r_keep_their_ratio():
    # C = ((1 - r) / r) V passes float's max for V = 1e308 and r = 0.001 (before: inf, p = 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = standardize_popularity([1e308, 5e307], ["a", "a"], percentile=50, r=0.001)
    c = Fraction(999) * Fraction(5e307)
    want = [float(Fraction(x) / (Fraction(x) + c)) for x in (1e308, 5e307)]
    np.testing.assert_allclose(got, want, rtol=1e-14)


def _path_graph(n: int) -> KnnGraph:
    w = np.zeros((n, n))
    for i in range(n - 1):
        w[i, i + 1] = w[i + 1, i] = 1.0
    return KnnGraph.from_adjacency(w)


def test_alpha_too_close_to_one_for_tol_is_refused():
    # before: alpha=0.99999, tol=1e-4 stopped after one sweep: the unobserved items got
    # 0.85 / 0.001 with confidence 0.0 instead of ~0.425 each with confidence 1/3, silently
    raw = [1.0, np.nan, np.nan, 1e-4]
    with pytest.raises(ParameterError, match=r"`alpha`.*too close to 1 for `tol`"):
        infer_popularity(_path_graph(4), raw, ["a"] * 4, alpha=0.99999, tol=1e-4)


def test_alpha_near_one_matches_the_walk_average():
    # path 0-1-2-3, observed at both ends: as alpha -> 1 the walk from 1 or 2 ends at 0 or 3
    # with the stationary shares of the path (degrees 1 : 1), so each is the plain mean
    raw = np.array([1.0, np.nan, np.nan, 1e-4])
    std = standardize_popularity(raw, ["a"] * 4)
    pop = infer_popularity(_path_graph(4), raw, ["a"] * 4, alpha=0.99999, tol=1e-12,
                           max_iter=100_000)  # fmt: skip
    assert pop.value[1] == pytest.approx((std[0] + std[3]) / 2, abs=1e-3)
    assert pop.value[2] == pytest.approx((std[0] + std[3]) / 2, abs=1e-3)
