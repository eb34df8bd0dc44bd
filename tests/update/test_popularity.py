"""Popularity with kept constants against ccgraph.propagate.infer_popularity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ccgraph.containers import KnnGraph
from ccgraph.propagate import infer_popularity, standardize_popularity
from ccgraph.update.popularity import popularity_constants, standardize_with, update_popularity


def _graph(n: int, seed: int) -> KnnGraph:
    g = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.08, random_state=seed, format="csr")
    a = a + a.T
    a.setdiag(0)
    a.eliminate_zeros()
    a.data = g.uniform(0.2, 1.0, size=a.nnz)
    a = (a + a.T) / 2
    return KnnGraph.from_adjacency(sp.csr_matrix(a))


def _inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    raw = np.where(g.random(n) < 0.4, g.integers(0, 300, n).astype(float), np.nan)
    prov = np.where(g.random(n) < 0.5, "flickr", "wikimedia")
    return raw, prov


def _table(pop: object, prov: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "provider": prov,
            "popularity_observed": pop.observed,  # type: ignore[attr-defined]
            "popularity": pop.value,  # type: ignore[attr-defined]
            "popularity_source": pop.source.astype(str),  # type: ignore[attr-defined]
        }
    )


def test_same_data_gives_infer_popularity() -> None:
    graph = _graph(80, 0)
    raw, prov = _inputs(80, 1)
    ref = infer_popularity(graph, raw, prov)
    constants = popularity_constants(_table(ref, prov))
    assert set(constants) == {"flickr", "wikimedia"}
    got = update_popularity(
        graph, raw, prov, constants, alpha=0.85, tol=1e-12, percentile=85.0, r=0.85
    )
    np.testing.assert_array_equal(got.source, ref.source)
    np.testing.assert_allclose(got.value, ref.value, atol=1e-7, equal_nan=True)
    np.testing.assert_allclose(got.confidence, ref.confidence, atol=1e-7)


def test_constants_recovered_exactly() -> None:
    raw, prov = _inputs(200, 2)
    std = standardize_popularity(raw, prov)
    table = pd.DataFrame(
        {
            "provider": prov,
            "popularity_observed": raw,
            "popularity": std,
            "popularity_source": np.where(np.isfinite(raw), "observed", "none"),
        }
    )
    constants = popularity_constants(table)
    again, fresh = standardize_with(raw, prov, constants, percentile=85.0, r=0.85)
    np.testing.assert_allclose(again, std, atol=1e-12, equal_nan=True)
    assert fresh == {}


def test_new_observations_do_not_move_old_values() -> None:
    raw, prov = _inputs(100, 3)
    std = standardize_popularity(raw, prov)
    table = pd.DataFrame(
        {
            "provider": prov,
            "popularity_observed": raw,
            "popularity": std,
            "popularity_source": np.where(np.isfinite(raw), "observed", "none"),
        }
    )
    constants = popularity_constants(table)
    # a batch of very popular new items, one from a provider the run never saw
    raw2 = np.r_[raw, [5000.0, 9000.0, 40.0]]
    prov2 = np.r_[prov, ["flickr", "wikimedia", "museum"]]
    new, fresh = standardize_with(raw2, prov2, constants, percentile=85.0, r=0.85)
    np.testing.assert_allclose(new[:100], std, atol=1e-12, equal_nan=True)
    assert list(fresh) == ["museum"] and new[-1] == pytest.approx(0.85)
    # whereas standardising everything again would have moved them
    moved = standardize_popularity(raw2, prov2)[:100]
    assert np.nanmax(np.abs(moved - std)) > 1e-3
