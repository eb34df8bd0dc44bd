from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.exceptions import ParameterError
from ccgraph.report.select import (
    default_level,
    large_clusters,
    pick_members,
    resolution_sweep,
    sample_untagged,
    top_neighbours,
)


def test_top_neighbours_hand_made_graph():
    # item 0: edges to 1 (0.2), 2 (0.9), 3 (0.5), 4 (0.5); a self-loop that must be ignored
    w = {(0, 1): 0.2, (0, 2): 0.9, (0, 3): 0.5, (0, 4): 0.5, (2, 3): 0.7}
    rows, cols, vals = [], [], []
    for (i, j), x in w.items():
        rows += [i, j]
        cols += [j, i]
        vals += [x, x]
    rows.append(0)
    cols.append(0)
    vals.append(5.0)
    a = sp.csr_matrix((vals, (rows, cols)), shape=(6, 6))
    (i0, w0), (i2, _w2), (i5, w5) = top_neighbours(a, [0, 2, 5], 3)
    assert i0.tolist() == [2, 3, 4]  # 0.9, then the 0.5 tie broken by the smaller index
    assert w0.tolist() == pytest.approx([0.9, 0.5, 0.5])
    assert i2.tolist() == [0, 3]  # degree 2 < n
    assert i5.size == 0 and w5.size == 0  # isolated item
    assert top_neighbours(a, [0], 0)[0][0].size == 0


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 25), st.integers(0, 8), st.integers(0, 10_000))
def test_top_neighbours_match_dense_sort(n, k, seed):
    g = np.random.default_rng(seed)
    dense = np.triu(g.random((n, n)) * (g.random((n, n)) < 0.4), 1)
    dense = np.round(dense, 1)  # many ties
    dense = dense + dense.T
    a = sp.csr_matrix(dense)
    for r, (idx, w) in enumerate(top_neighbours(a, np.arange(n), k)):
        nz = np.flatnonzero(dense[r])
        expect = sorted(nz, key=lambda j: (-dense[r, j], j))[:k]
        assert idx.tolist() == expect
        assert np.allclose(w, dense[r, expect])


def test_top_neighbours_rejects_negative_n():
    with pytest.raises(ParameterError, match="`n`"):
        top_neighbours(sp.csr_matrix((3, 3)), [0], -1)


def test_pick_members_representatives_first_then_seeded_sample():
    members = np.arange(10, 40)
    out = pick_members(members, [25, 11, 99, 25], 8, rng=3)
    assert out[:2].tolist() == [25, 11]  # 99 is not a member, the duplicate 25 dropped
    assert len(out) == 8 and len(set(out.tolist())) == 8
    assert set(out.tolist()) <= set(members.tolist())
    assert np.array_equal(out, pick_members(members, [25, 11], 8, rng=3))
    assert len(pick_members(members, [], 100, rng=0)) == 30


def test_sample_untagged_only_items_without_observed_tags():
    ids = np.array(["a", "b", "c", "d", "e"])
    tags = pd.DataFrame(
        {
            "id": ["a", "a", "b", "c", "d", "d"],
            "tag": ["x", "y", "x", "y", "x", "z"],
            "source": ["observed", "inferred", "inferred", "inferred", "observed", "inferred"],
        }
    )
    idx, untagged = sample_untagged(tags, ids, 10, rng=0)
    assert untagged and idx.tolist() == [1, 2]  # b and c: inferred only; e has nothing
    idx, _ = sample_untagged(tags, ids, 1, rng=0)
    assert len(idx) == 1 and idx[0] in (1, 2)
    only_tagged = tags[tags["id"].isin(["a", "d"])]
    idx, untagged = sample_untagged(only_tagged, ids, 10, rng=0)
    assert not untagged and idx.tolist() == [0, 3]


def test_large_clusters_sizes_order_and_descriptions():
    items = pd.DataFrame({"id": list("abcdefgh"), "cluster": [2, 2, 2, 0, 0, 5, 7, 7]})
    desc = pd.DataFrame(
        {
            "level": [1, 1, 0],
            "cluster": [2, 7, 2],
            "size": [3, 2, 8],
            "label": ["dogs", "sea", "wrong level"],
            "top_tags": [["dog"], ["sea"], ["x"]],
            "top_tag_scores": [[0.9], [0.5], [1.0]],
            "representative_ids": [["b"], ["g"], ["a"]],
            "density": [1.0, 1.0, 0.1],
            "conductance": [0.1, 0.2, 0.3],
        }
    )
    big = large_clusters(items, desc, level=1, max_clusters=10)
    # singleton cluster 5 dropped; the size tie 0 / 7 broken by the smaller label
    assert big["cluster"].tolist() == [2, 0, 7]
    assert big["size"].tolist() == [3, 2, 2]
    assert big["label"].tolist() == ["dogs", "", "sea"]
    assert big["representative_ids"].tolist() == [["b"], [], ["g"]]
    assert np.isnan(big["density"][1])
    assert large_clusters(items, desc, level=1, max_clusters=1)["cluster"].tolist() == [2]


def test_default_level_from_manifest_or_columns():
    items = pd.DataFrame({"cluster": [1, 0, 1], "cluster_l0": [0, 0, 0], "cluster_l1": [1, 0, 1]})
    assert default_level(items, {"counts": {"default_level": 0}}) == 0
    assert default_level(items, {}) == 1


def test_resolution_sweep_from_manifest_and_from_levels():
    items = pd.DataFrame({"cluster_l0": [0, 0, 1, 1], "cluster_l1": [0, 1, 2, 3]})
    man = {
        "stages": {
            "cluster": {
                "sweep": [
                    {"resolution": 2.0, "n_clusters": 9, "modularity": 0.4},
                    {"resolution": 0.5, "n_clusters": 3, "modularity": 0.5},
                ]
            }
        }
    }
    sw = resolution_sweep(man, items)
    assert sw["resolution"].tolist() == [0.5, 2.0] and sw["quality"].tolist() == [0.5, 0.4]
    sw = resolution_sweep({"config": {"cluster": {"resolutions": [0.25, 1.0]}}}, items)
    assert sw["n_clusters"].tolist() == [2, 4] and sw["median_size"].tolist() == [2.0, 1.0]
    assert resolution_sweep({"config": {"cluster": {"resolutions": [1.0]}}}, items) is None
