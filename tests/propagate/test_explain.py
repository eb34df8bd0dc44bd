from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccgraph import KnnGraph, TagSet
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.propagate import explain_tags, spread_tags
from tests.propagate._graphs import closed_form, random_graph, random_seeds


def test_contributions_match_dense_fixed_point():
    g = random_graph(n=50, seed=1)
    seeds = random_seeds(g.ids, seed=2)
    out = spread_tags(g, seeds, top_k=3, dtype="float64", tol=1e-10)
    ex = explain_tags(g, seeds, pairs=out, top=100, tol=1e-10)
    f = closed_form(g, seeds.matrix.toarray().astype(float), 0.8)
    w = g.adjacency.toarray().astype(float)
    d = w.sum(1)
    inv = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    pos = {k: i for i, k in enumerate(g.ids)}
    tpos = {k: i for i, k in enumerate(seeds.tags)}
    for row in ex.itertuples():
        i, j, t = pos[row.id], pos[row.neighbour_id], tpos[row.tag]
        assert row.contribution == pytest.approx(
            0.8 * w[i, j] * inv[i] * inv[j] * f[j, t], abs=1e-9
        )
    # every inferred score is fully explained by its neighbours
    sums = ex.groupby(["id", "tag"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-6)
    assert len(sums) == out.scores.nnz


def test_top_and_order():
    g = random_graph(n=50, seed=3)
    seeds = random_seeds(g.ids, seed=4)
    out = spread_tags(g, seeds, top_k=2)
    ex = explain_tags(g, seeds, pairs=out, top=2)
    assert ex.groupby(["id", "tag"])["rank"].max().max() <= 2
    for _, grp in ex.groupby(["id", "tag"]):
        assert grp["contribution"].is_monotonic_decreasing
        assert grp["rank"].tolist() == list(range(1, len(grp) + 1))


def test_single_pair_and_table_forms_agree():
    g = random_graph(n=50, seed=5)
    seeds = random_seeds(g.ids, seed=6)
    out = spread_tags(g, seeds, top_k=1).to_frame()
    first = out.iloc[0]
    a = explain_tags(g, seeds, pairs=(first["id"], first["tag"]))
    b = explain_tags(g, seeds, pairs=pd.DataFrame({"id": [first["id"]], "tag": [first["tag"]]}))
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(InputError, match="unknown ids"):
        explain_tags(g, seeds, pairs=("nope", first["tag"]))
    with pytest.raises(InputError, match="vocabulary"):
        explain_tags(g, seeds, pairs=(first["id"], "nope"))


def test_alpha_too_close_to_one_for_tol_is_refused():
    # before: alpha = 1 - 1e-9 explained a score of 3.5e-10 with share 0.0, silently
    g = KnnGraph.from_adjacency(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]), ["a", "b", "c"])
    seeds = TagSet.from_frame(pd.DataFrame({"id": ["a"], "tag": ["x"]}), g.ids)
    with pytest.raises(ParameterError, match=r"`alpha`.*too close to 1 for `tol`"):
        explain_tags(g, seeds, pairs=("c", "x"), alpha=1 - 1e-9)
