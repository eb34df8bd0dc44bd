"""Local tag spreading against closed forms and ccgraph.propagate.spread_tags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ccgraph.containers import KnnGraph, TagSet
from ccgraph.propagate import spread_tags
from ccgraph.propagate.calibration import Calibrator
from ccgraph.update.tags import item_mass, local_spread, recover_calibrator


def _problem(n: int = 60, seed: int = 0) -> tuple[KnnGraph, TagSet]:
    g = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.1, random_state=seed, format="csr")
    a = sp.csr_matrix(a + a.T)
    a.setdiag(0)
    a.eliminate_zeros()
    a.data = np.abs(a.data) + 0.1
    graph = KnnGraph.from_adjacency(a)
    rows = g.choice(n, size=n // 3, replace=False)
    tags = pd.DataFrame(
        {
            "id": graph.ids[rows],
            "tag": np.array(["red", "green", "blue", "grey"])[g.integers(0, 4, len(rows))],
            "weight": g.uniform(0.5, 1.0, len(rows)),
        }
    )
    return graph, TagSet.from_frame(tags, graph.ids)


def _closed_form(graph: KnnGraph, y: np.ndarray, alpha: float) -> np.ndarray:
    w = graph.adjacency.toarray().astype(np.float64)
    d = w.sum(axis=1)
    inv = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    s = inv[:, None] * w * inv[None, :]
    return (1 - alpha) * np.linalg.solve(np.eye(len(d)) - alpha * s, y)


def test_item_mass_is_the_spread_of_the_seed_row_sums() -> None:
    graph, seeds = _problem()
    got = item_mass(graph, seeds, alpha=0.8, tol=1e-12)
    want = _closed_form(graph, seeds.matrix.toarray().sum(axis=1), 0.8)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_whole_region_equals_a_full_spread() -> None:
    graph, seeds = _problem(seed=1)
    n, t = graph.n_items, seeds.n_tags
    zero = sp.csr_matrix((n, t))
    mass = item_mass(graph, seeds, alpha=0.8, tol=1e-12)
    got = local_spread(
        graph,
        seeds,
        zero,
        zero,
        np.ones(n, dtype=bool),
        alpha=0.8,
        tol=1e-10,
        max_iter=500,
        top_k=2,
        min_confidence=0.0,
        calibrator=None,
        mass=mass,
    )
    ref = spread_tags(graph, seeds, alpha=0.8, tol=1e-7, max_iter=500, top_k=2)
    np.testing.assert_allclose(got.scores.toarray(), ref.scores.toarray(), atol=1e-5)
    np.testing.assert_allclose(got.confidence.toarray(), ref.confidence.toarray(), atol=1e-4)
    # and both are the closed form at each item's top-2 non-seed tags
    f = _closed_form(graph, seeds.matrix.toarray(), 0.8)
    rows, cols = got.scores.nonzero()
    np.testing.assert_allclose(got.scores.toarray()[rows, cols], f[rows, cols], atol=1e-5)


def test_empty_region_keeps_the_run() -> None:
    graph, seeds = _problem(seed=2)
    ref = spread_tags(graph, seeds, top_k=3)
    got = local_spread(
        graph,
        seeds,
        ref.scores,
        ref.confidence,
        np.zeros(graph.n_items, dtype=bool),
        alpha=0.8,
        tol=1e-6,
        max_iter=50,
        top_k=3,
        min_confidence=0.0,
        calibrator=None,
        mass=item_mass(graph, seeds, alpha=0.8, tol=1e-10),
    )
    assert (got.scores != ref.scores).nnz == 0
    assert (got.confidence != ref.confidence).nnz == 0


def test_region_solve_with_exact_outside_values_is_exact() -> None:
    # Outside the region F is held at the run's values; when those are the exact solution of
    # the changed problem, the block solve must return that solution inside the region too
    # (including F at the seed entries outside, estimated from the non-seed entries).
    graph, seeds = _problem(seed=3)
    n = graph.n_items
    y_new = seeds.matrix.toarray().copy()
    target = int(np.flatnonzero(np.diff(graph.adjacency.indptr) > 0)[0])
    y_new[target] = 0.0
    y_new[target, 0] = 1.0
    f_new = _closed_form(graph, y_new, 0.8)
    region = np.zeros(n, dtype=bool)
    region[target] = True
    region[graph.adjacency[target].indices] = True
    new_seeds = TagSet(sp.csr_matrix(y_new, dtype=np.float32), seeds.ids, seeds.tags)
    held = sp.csr_matrix(f_new * (y_new == 0))
    got = local_spread(
        graph,
        new_seeds,
        held,
        held,
        region,
        alpha=0.8,
        tol=1e-13,
        max_iter=2000,
        top_k=new_seeds.n_tags,
        min_confidence=0.0,
        calibrator=None,
        mass=np.ones(n),
        seed_sweeps=300,
    )
    r = np.flatnonzero(region)
    want = np.where(y_new[r] == 0, f_new[r], 0.0)
    np.testing.assert_allclose(got.scores.toarray()[r], want, atol=1e-6)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrator_recovered_from_its_own_predictions(method: str) -> None:
    g = np.random.default_rng(4)
    cal = Calibrator(
        method,
        np.array([1.5, 0.3, -0.7]),
        0.2,
        np.linspace(-6, 3, 12),
        np.sort(g.uniform(0, 1, 12)),
        0.4,
        500,
        {},
    )
    score = g.uniform(0.01, 0.3, 400)
    rank = g.integers(1, 6, 400)
    mass = g.uniform(0.3, 2.0, 400)
    conf = cal.predict(score, rank, mass)
    rows = pd.DataFrame({"score": score, "rank": rank, "confidence": conf})
    back = recover_calibrator(cal.describe(), rows, mass)
    np.testing.assert_allclose(back.predict(score, rank, mass), conf, atol=1e-9)
    assert recover_calibrator(None, rows, mass) is None


def test_two_map_calibrator_recovered_per_kind_of_item() -> None:
    import json
    from dataclasses import replace

    g = np.random.default_rng(5)
    knots = np.linspace(-6, 3, 12)
    untagged = Calibrator(
        "isotonic",
        np.array([1.5, 0.3, -0.7]),
        0.2,
        knots,
        np.sort(g.uniform(0, 1, 12)),
        0.4,
        500,
        {"hide_fraction": 0.2},
    )
    tagged = Calibrator(
        "isotonic",
        np.array([0.9, 0.1, -1.2]),
        -0.8,
        knots,
        np.sort(g.uniform(0, 0.6, 12)),
        0.1,
        300,
        {},
    )
    cal = replace(untagged, tagged=tagged)
    score, rank = g.uniform(0.01, 0.3, 600), g.integers(1, 6, 600)
    mass, observed = g.uniform(0.3, 2.0, 600), g.integers(0, 3, 600)
    conf = cal.predict(score, rank, mass, observed)
    has = observed > 0
    np.testing.assert_allclose(conf[has], tagged.predict(score[has], rank[has], mass[has]))
    np.testing.assert_allclose(conf[~has], untagged.predict(score[~has], rank[~has], mass[~has]))
    rows = pd.DataFrame({"score": score, "rank": rank, "confidence": conf})
    describe = json.loads(json.dumps(cal.describe()))  # as the manifest keeps it
    back = recover_calibrator(describe, rows, mass, observed)
    assert back.tagged is not None and back.params == {"hide_fraction": 0.2}
    np.testing.assert_allclose(back.predict(score, rank, mass, observed), conf, atol=1e-9)
    assert back.describe() == describe  # the next update recovers it again


def test_old_one_map_description_still_loads() -> None:
    # stages.tags.calibrator as manifests written before the tagged map kept it
    old = {
        "method": "isotonic",
        "coef": [1.5, 0.3, -0.7],
        "intercept": 0.2,
        "base_rate": 0.4,
        "n_fit": 500,
        "hide_fraction": 0.2,
        "repeats": 1,
        "alpha": 0.8,
    }
    g = np.random.default_rng(6)
    score, rank, mass = g.uniform(0.01, 0.3, 300), g.integers(1, 6, 300), g.uniform(0.3, 2, 300)
    # confidences an old run wrote: its one isotonic map over z, for every item
    z = (
        np.array([1.5, 0.3, -0.7])
        @ np.log(np.vstack([np.clip(score / mass, 1e-12, 1), mass, rank]))
        + 0.2
    )
    conf = np.interp(z, np.linspace(-6, 3, 12), np.linspace(0.05, 0.9, 12))
    rows = pd.DataFrame({"score": score, "rank": rank, "confidence": conf})
    observed = g.integers(0, 3, 300)
    back = recover_calibrator(old, rows, mass, observed)
    assert back.tagged is None and back.method == "isotonic"
    np.testing.assert_allclose(back.predict(score, rank, mass, observed), conf, atol=1e-9)
    assert back.describe() == old


def test_spliced_table_equals_a_full_assembly() -> None:
    from ccgraph._assemble import tags_table
    from ccgraph.containers import REJECT_COLUMNS, Catalog
    from ccgraph.update._output import splice_tags

    graph, seeds = _problem(seed=5)
    ref = spread_tags(graph, seeds, top_k=2)
    obs = seeds.to_frame().assign(source="user", provider="x")
    obs["tag_raw"] = obs["tag"].str.upper()
    items = pd.DataFrame({"id": graph.ids})
    catalog = Catalog(items, obs, pd.DataFrame(columns=REJECT_COLUMNS))
    full = tags_table(catalog, graph.ids, ref)
    redo = np.zeros(graph.n_items, dtype=bool)
    redo[::3] = True
    stale = full.copy()
    stale.loc[stale["id"].isin(graph.ids[redo]), "score"] = -1.0  # must be rebuilt
    got = splice_tags(stale, catalog, graph.ids, ref, redo)
    pd.testing.assert_frame_equal(got, full)


def test_seed_values_are_the_sweeps_of_the_dense_equation() -> None:
    from ccgraph.update.tags import _normalised, _seed_values

    graph, seeds = _problem(seed=6)
    s, _ = _normalised(graph.adjacency)
    y = seeds.matrix.toarray().astype(np.float64)
    g = np.random.default_rng(6)
    known = np.where((y == 0) & (g.random(y.shape) < 0.3), g.random(y.shape), 0.0)
    est = 0.2 * y
    for _ in range(7):  # F = known + est on the seed entries; est <- (1-a) Y + a S F there
        est = np.where(y > 0, 0.2 * y + 0.8 * (s.toarray() @ (known + est)), 0.0)
    got = _seed_values(s, sp.csr_matrix(y), sp.csr_matrix(known), 0.8, 7)
    np.testing.assert_allclose(got.toarray(), est, atol=1e-13)


def test_dense_block_and_sparse_fallback_give_the_component_solve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ccgraph.update._region_solve as tags_module

    graph, seeds = _problem(seed=7)
    ref = spread_tags(graph, seeds, top_k=3)
    region = np.zeros(graph.n_items, dtype=bool)
    region[::4] = True
    args = (graph, seeds, ref.scores, ref.confidence, region)
    kw = {
        "alpha": 0.8,
        "tol": 1e-10,
        "max_iter": 500,
        "top_k": 3,
        "min_confidence": 0.0,
        "calibrator": None,
        "mass": item_mass(graph, seeds, alpha=0.8, tol=1e-10),
    }
    monkeypatch.setattr(tags_module, "DENSE_ENTRIES", 10**9)
    dense = local_spread(*args, **kw)  # this region's tags fill its rows: the dense block
    monkeypatch.setattr(tags_module, "DENSE_ENTRIES", 0)
    flat = local_spread(*args, **kw)
    monkeypatch.setattr(tags_module, "FLAT_ENTRIES", 0)
    sparse = local_spread(*args, **kw)
    np.testing.assert_allclose(dense.scores.toarray(), flat.scores.toarray(), atol=1e-12)
    np.testing.assert_allclose(dense.confidence.toarray(), flat.confidence.toarray(), atol=1e-12)
    np.testing.assert_allclose(flat.scores.toarray(), sparse.scores.toarray(), atol=1e-7)
    np.testing.assert_allclose(flat.confidence.toarray(), sparse.confidence.toarray(), atol=1e-6)
    assert flat.scores.has_sorted_indices and dense.scores.has_sorted_indices


def test_region_scores_are_local_spreads_region_rows_and_splice_alike() -> None:
    from ccgraph._assemble import tags_table
    from ccgraph.containers import REJECT_COLUMNS, Catalog
    from ccgraph.update._output import run_positions, splice_tags
    from ccgraph.update.tags import region_scores, solve_region

    graph, seeds = _problem(seed=8)
    ref = spread_tags(graph, seeds, top_k=3)
    region = np.zeros(graph.n_items, dtype=bool)
    region[1::3] = True
    mass = item_mass(graph, seeds, alpha=0.8, tol=1e-10)
    kw = {"alpha": 0.8, "tol": 1e-10, "max_iter": 500, "top_k": 3}
    full = local_spread(
        graph, seeds, ref.scores, ref.confidence, region,
        min_confidence=0.01, calibrator=None, mass=mass, **kw,
    )  # fmt: skip
    solved = solve_region(graph, seeds, ref.scores, region, **kw)
    part = region_scores(solved, mass, calibrator=None, min_confidence=0.01)
    np.testing.assert_array_equal(part.ids, graph.ids[region])
    for got, want in ((part.scores, full.scores), (part.confidence, full.confidence)):
        want = sp.csr_matrix(want[region])
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)
    assert dict(part.params) == dict(full.params)
    # the splice takes either and gives the table a full assembly gives
    obs = seeds.to_frame().assign(source="user", provider="x", tag_raw="raw")
    catalog = Catalog(pd.DataFrame({"id": graph.ids}), obs, pd.DataFrame(columns=REJECT_COLUMNS))
    want = tags_table(catalog, graph.ids, full)
    stale = tags_table(catalog, graph.ids, ref)
    pos = run_positions(stale["id"], graph.ids)
    for inferred in (full, part):
        got = splice_tags(stale, catalog, graph.ids, inferred, region, old_pos=pos)
        pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("by_row", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_entries_is_the_coo_conversion(by_row: bool, seed: int) -> None:
    from ccgraph.update.tags import _entries

    g = np.random.default_rng(seed)
    m = 300
    rows = g.integers(0, 40, m)
    rows = np.sort(rows) if by_row else rows
    cols = g.integers(0, 9, m)  # repeated (row, col) pairs are summed
    data = g.random(m)
    want = sp.csr_matrix((data, (rows, cols)), shape=(45, 9))
    want.sum_duplicates()
    got = _entries(45, 9, rows.copy(), cols.copy(), data.copy())
    assert got.has_canonical_format
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)
