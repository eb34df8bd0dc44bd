"""Answers about items of a run: clusters (by hand), related (vs global PageRank), tags."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from ccgraph.exceptions import CcgraphError, InputError
from ccgraph.propagate import personalized_pagerank
from ccgraph.query import RunIndex
from tests.query._hand import adjacency, hand_run


@pytest.fixture(scope="module")
def hand() -> RunIndex:
    return RunIndex(hand_run(duplicate_groups=[0, 0, 2, 3, 4, 5, 6]))


def test_cluster_shares_worked_by_hand(hand: RunIndex) -> None:
    # c: edges a 0.5, b 1, d 2 (total 3.5); l0: own {a,b,c} gets 1.5, cluster 1 gets 2
    ans = hand.clusters("c")
    assert ans.levels["cluster"].tolist() == [0, 1]
    np.testing.assert_allclose(ans.levels["strength"], [1.5 / 3.5, 0.0])
    assert ans.cluster == 1 and ans.strength == 0.0 and ans.default_level == 1
    sec = ans.secondary
    l0 = sec[sec["level"] == 0]
    assert l0["cluster"].tolist() == [1]
    np.testing.assert_allclose(l0["share"], [2 / 3.5])
    l1 = sec[sec["level"] == 1]
    assert l1["cluster"].tolist() == [2, 0]  # largest share first
    np.testing.assert_allclose(l1["share"], [2 / 3.5, 1.5 / 3.5])
    assert l1["label"].tolist() == ["de", "ab"] and l1["size"].tolist() == [2, 2]
    np.testing.assert_allclose(ans.shares(0)["share"].sum(), 1.0)
    np.testing.assert_allclose(ans.shares()["share"].sum(), 1.0)


def test_isolated_item_has_strength_one_and_no_secondary(hand: RunIndex) -> None:
    ans = hand.clusters("g")
    assert ans.levels["strength"].tolist() == [1.0, 1.0]
    assert ans.secondary.empty
    assert ans.to_dict()["cluster"] == 4


def test_default_strength_matches_the_run_column(index: RunIndex) -> None:
    stored = index.run.items["cluster_strength"].to_numpy()
    got = [index.clusters(i).strength for i in index.ids]
    np.testing.assert_allclose(got, stored, atol=1e-6)


def test_cluster_shares_match_a_dense_oracle(index: RunIndex) -> None:
    dense = index.graph.adjacency.toarray()
    for row in (0, 17, 101):
        ans = index.clusters(index.ids[row])
        for lev in range(index.n_levels):
            lab = index.levels[lev]
            want = {
                int(c): dense[row, lab == c].sum() / dense[row].sum()
                for c in np.unique(lab)
                if dense[row, lab == c].sum() > 0
            }
            got = ans.shares(lev).set_index("cluster")["share"]
            got = got[got > 0].to_dict()
            assert set(got) == set(want)
            np.testing.assert_allclose([got[c] for c in want], list(want.values()), rtol=1e-6)


def test_related_on_hand_graph_matches_networkx(hand: RunIndex) -> None:
    g = nx.from_scipy_sparse_array(adjacency())
    pr = nx.pagerank(g, alpha=0.85, personalization={2: 1.0}, tol=1e-14, max_iter=10_000)
    got = hand.related("c", 10, epsilon=1e-9, duplicates="include")
    want = sorted((v, k) for k, v in pr.items() if k != 2 and v > 0)[::-1]
    assert got["id"].tolist() == [hand.ids[k] for _, k in want]
    np.testing.assert_allclose(got["score"], [v for v, _ in want], atol=1e-6)
    assert "c" not in got["id"].tolist()


def test_related_agrees_with_global_pagerank(index: RunIndex) -> None:
    overlaps = []
    for row in range(0, index.n_items, 7):
        truth = personalized_pagerank(index.graph, np.eye(index.n_items)[row], tol=1e-12)
        truth[row] = -1
        got = index.related(index.ids[row], 20, epsilon=1e-4, duplicates="include")
        top = set(np.argsort(-truth, kind="stable")[:20].tolist())
        overlaps.append(len(top & {index.position(i) for i in got["id"]}) / 20)
        # the push never overestimates (p <= ppr)
        exact = truth[[index.position(i) for i in got["id"]]]
        assert (got["score"].to_numpy() <= exact + 1e-12).all()
    assert np.mean(overlaps) >= 0.9


def test_related_duplicate_modes(hand: RunIndex) -> None:
    sep = hand.related("a", 3, epsilon=1e-8)
    assert sep["relation"].tolist() == ["duplicate", "related", "related", "related"]
    assert sep["id"].tolist()[0] == "b"
    assert sep["rank"].tolist() == [1, 1, 2, 3]
    exc = hand.related("a", 3, epsilon=1e-8, duplicates="exclude")
    assert "b" not in exc["id"].tolist() and len(exc) == 3
    assert exc["id"].tolist() == sep["id"].tolist()[1:]
    inc = hand.related("a", 3, epsilon=1e-8, duplicates="include")
    assert "b" in inc["id"].tolist() and (inc["relation"] == "related").all()


def test_related_on_pipeline_run_separates_near_copies(index: RunIndex) -> None:
    # it0140 is a near-copy of it0000 (same duplicate group)
    ans = index.related("it0140", 10)
    dup = ans[ans["relation"] == "duplicate"]
    assert dup["id"].tolist() == ["it0000"]
    assert "it0000" not in ans.loc[ans["relation"] == "related", "id"].tolist()
    assert (ans.loc[ans["relation"] == "related", "rank"] == np.arange(1, 11)).all()


def test_related_shows_one_member_of_another_duplicate_group() -> None:
    # d and e are near-copies of each other (not of the query a): one slot, the better ranked
    index = RunIndex(hand_run(duplicate_groups=[0, 1, 2, 3, 3, 5, 6]))
    g = nx.from_scipy_sparse_array(adjacency())
    ppr = nx.pagerank(g, alpha=0.85, personalization={0: 1.0}, tol=1e-12, max_iter=10_000)
    ranked = [i for i in sorted(ppr, key=lambda i: (-ppr[i], i)) if i != 0 and ppr[i] > 0]
    names = list("abcdefg")
    groups = [0, 1, 2, 3, 3, 5, 6]
    oracle, seen = [], set()
    for i in ranked:
        if groups[i] not in seen:
            seen.add(groups[i])
            oracle.append(names[i])
    got = index.related("a", 10, epsilon=1e-10)
    assert got["id"].tolist() == oracle
    assert len(oracle) == len(ranked) - 1  # d or e left out
    every = index.related("a", 10, epsilon=1e-10, duplicates="include")["id"].tolist()
    assert every == [names[i] for i in ranked]


def test_related_fewer_than_n_in_a_small_component(hand: RunIndex) -> None:
    assert hand.related("g", 5).empty
    assert len(hand.related("a", 50, duplicates="include")) == 5  # b..f reachable


def test_tags_are_the_run_rows(index: RunIndex, run_dir) -> None:
    tags = pd.read_parquet(run_dir / "tags.parquet")
    for item in ("it0000", "it0001", "it0149"):
        want = tags[tags["id"] == item].reset_index(drop=True)
        got = index.tags(item)
        assert list(got.columns) == ["tag", "source", "score", "confidence", "rank", "origin"]
        pd.testing.assert_frame_equal(got, want[got.columns], check_dtype=False)
    assert index.tags("it0000")["source"].iloc[0] == "observed"


def test_item_without_tags(hand: RunIndex) -> None:
    assert hand.tags("c").empty


def test_unknown_id_is_a_clear_error(index: RunIndex) -> None:
    with pytest.raises(InputError, match=r"'it00001' is not an item of the run .*150 items"):
        index.clusters("it00001")
    with pytest.raises(InputError, match="close ids: 'it0000'"):
        index.related("IT0000")
    with pytest.raises(InputError, match="empty"):
        index.tags(" ")
    for bad in (None, 3.5, ["it0000"]):
        with pytest.raises(InputError, match="must be an item id"):
            index.related(bad)


def test_bad_parameters(index: RunIndex) -> None:
    for kw in ({"n": 0}, {"epsilon": 0.0}, {"alpha": 1.0}, {"duplicates": "maybe"}):
        with pytest.raises(CcgraphError, match=next(iter(kw))):
            index.related("it0000", **kw)
    with pytest.raises(InputError, match="RunResult"):
        RunIndex("not a run")  # type: ignore[arg-type]


def test_query_bundles_all_three(index: RunIndex) -> None:
    ans = index.query("it0003", 5)
    assert ans.clusters.id == "it0003"
    pd.testing.assert_frame_equal(ans.related, index.related("it0003", 5))
    d = ans.to_dict()
    assert d["query"] == "it0003" and len(d["related"]) == len(ans.related)
    assert d["clusters"]["levels"][0]["level"] == 0
