from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from ccgraph.containers import KnnGraph
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.experiment.plan import REASONS, plan_substitutions

# ---------------------------------------------------------------- brute-force oracle


def _dup_key(item_id, group):
    return ("g", group) if pd.notna(group) else ("i", item_id)


def _oracle(items, results, passing):
    """Static reason (or None) and the eligible alternates of every row, by plain loops."""
    ids = items["id"].astype(str).tolist()
    cl = dict(zip(ids, items["cluster"], strict=True))
    groups = items["duplicate_group"] if "duplicate_group" in items else [None] * len(ids)
    dup = {i: _dup_key(i, g) for i, g in zip(ids, groups, strict=True)}
    ok = dict(zip(ids, passing, strict=True))
    shown = results.groupby("query")["id"].apply(lambda s: {dup[i] for i in s if i in dup})
    out = []
    for q, i in zip(results["query"], results["id"], strict=True):
        if i not in cl:
            out.append(("unknown id", []))
            continue
        if pd.isna(cl[i]):
            out.append(("no cluster", []))
            continue
        members = [j for j in ids if pd.notna(cl[j]) and cl[j] == cl[i]]
        nondup = [j for j in members if dup[j] != dup[i]]
        passing_nondup = [j for j in nondup if ok[j]]
        elig = [j for j in passing_nondup if dup[j] not in shown[q]]
        if len(members) == 1:
            out.append(("singleton cluster", []))
        elif not nondup:
            out.append(("only duplicates in cluster", []))
        elif not passing_nondup:
            out.append(("filtered", []))
        elif not elig:
            out.append(("no eligible alternate", []))
        else:
            out.append((None, elig))
    return out, dup


def _check_plan(items, results, plan, passing, *, rule, adjacency=None, exposure=None):
    static, dup = _oracle(items, results, passing)
    if adjacency is not None:
        a = adjacency.toarray()
        adjacency = (a, a @ a)
    assert list(plan.columns)[:8] == [
        "query",
        "position",
        "id",
        "alternate_id",
        "cluster",
        "rule",
        "skipped",
        "reason",
    ]
    assert plan["query"].tolist() == results["query"].tolist()
    assert set(plan["reason"].dropna()) <= set(REASONS)
    ids = items["id"].astype(str).tolist()
    pos_of = {i: k for k, i in enumerate(ids)}
    used = {}  # query -> list of (row, dup key of its alternate)
    for r, alt in enumerate(plan["alternate_id"]):
        if pd.notna(alt):
            used.setdefault(plan["query"].iloc[r], []).append((r, dup[alt]))
    for q, lst in used.items():
        keys = [k for _, k in lst]
        assert len(keys) == len(set(keys)), f"query {q} shows one duplicate group twice"
    query_ids = results.groupby("query")["id"].apply(set)
    for r, (reason, elig) in enumerate(static):
        row = plan.iloc[r]
        alt = row["alternate_id"]
        others = {k for rr, k in used.get(row["query"], []) if rr != r}
        if reason is not None:
            assert row["reason"] == reason and pd.isna(alt) and row["skipped"]
            continue
        if pd.isna(alt):
            assert row["skipped"]
            assert row["reason"] in {
                "alternates used at other positions",
                "no graph neighbour in cluster",
            }
            if rule == "closest":
                cands = _graph_candidates(adjacency, pos_of, row["id"], elig)
                assert all(dup[c] in others for c, _ in cands)
            else:
                assert all(dup[j] in others for j in elig)
            continue
        assert not row["skipped"] and pd.isna(row["reason"])
        assert alt in elig and alt != row["id"] and alt not in query_ids[row["query"]]
        if rule == "closest":
            cands = dict(_graph_candidates(adjacency, pos_of, row["id"], elig))
            assert alt in cands
            better = [c for c, rank in cands.items() if rank < cands[alt] - 1e-6]
            assert all(dup[c] in others for c in better)
        if rule == "least_exposed":
            better = [j for j in elig if exposure.get(j, 0) < exposure.get(alt, 0)]
            assert all(dup[j] in others for j in better)


def _graph_candidates(dense, pos_of, item, elig):
    """(candidate, rank) with rank = (hop, -score) flattened into one sortable number."""
    a, two = dense  # weights and dense two-hop scores sum_k w_ik w_kj
    i = pos_of[item]
    out = []
    for j in elig:
        k = pos_of[j]
        if a[i, k] > 0:
            out.append((j, 0.0 - a[i, k]))
        elif two[i, k] > 0:
            out.append((j, 1e6 - two[i, k]))
    return out


# ---------------------------------------------------------------- hypothesis


@st.composite
def scenarios(draw):
    n = draw(st.integers(2, 24))
    ids = [f"i{k}" for k in range(n)]
    clusters = draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n))
    groups = draw(st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=n, max_size=n))
    lic = draw(st.lists(st.sampled_from(["by", "cc0"]), min_size=n, max_size=n))
    strength = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    items = pd.DataFrame(
        {
            "id": ids,
            "cluster": pd.array(clusters, dtype="Int64"),
            "duplicate_group": pd.array(groups, dtype="Int64"),
            "license": lic,
            "cluster_strength": strength,
        }
    )
    rows = []
    for q in range(draw(st.integers(1, 3))):
        picks = draw(st.lists(st.sampled_from([*ids, "zz"]), min_size=1, max_size=8, unique=True))
        rows += [(f"q{q}", p, i) for p, i in enumerate(picks)]
    results = pd.DataFrame(rows, columns=["query", "position", "id"])
    filters = draw(
        st.sampled_from(
            [
                {},
                {"license": ["by"]},
                {"min_cluster_strength": 0.4},
                {"license": "cc0", "max_cluster_strength": 0.8},
            ]
        )
    )
    rule = draw(st.sampled_from(["random", "closest", "least_exposed"]))
    dense = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.0, 0.3, 0.7, 1.0]), min_size=n * n, max_size=n * n))
    ).reshape(n, n)
    dense = np.triu(dense, 1)
    adjacency = sp.csr_matrix(dense + dense.T)
    exposure = pd.Series(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), index=ids)
    seed = draw(st.integers(0, 2**16))
    return items, results, filters, rule, adjacency, exposure, seed


def _passing(items, filters):
    mask = np.ones(len(items), dtype=bool)
    for key, value in filters.items():
        if key == "license":
            mask &= items["license"].isin([value] if isinstance(value, str) else value)
        elif key == "min_cluster_strength":
            mask &= items["cluster_strength"] >= value
        elif key == "max_cluster_strength":
            mask &= items["cluster_strength"] <= value
    return np.asarray(mask)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_plan_invariants_against_brute_force(scenario):
    items, results, filters, rule, adjacency, exposure, seed = scenario
    items_before, results_before = items.copy(), results.copy()
    plan = plan_substitutions(
        items,
        results,
        rule=rule,
        graph=(adjacency, items["id"]),
        exposure=exposure,
        filters=filters,
        rng=seed,
    )
    _check_plan(
        items,
        results,
        plan,
        _passing(items, filters),
        rule=rule,
        adjacency=adjacency,
        exposure=exposure.to_dict(),
    )
    pd.testing.assert_frame_equal(items, items_before)
    pd.testing.assert_frame_equal(results, results_before)


# ---------------------------------------------------------------- explicit cases


def _items():
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f", "g", "h"],
            "cluster": [0, 0, 0, 1, 1, 2, 3, 3],
            "duplicate_group": [None, None, None, 9, 9, None, None, None],
            "license": ["by", "by", "nc", "by", "by", "by", "by", "nc"],
            "cluster_strength": [0.9, 0.2, 0.8, 0.5, 0.5, 0.5, 0.9, 0.9],
        }
    )


def test_each_reason():
    res = pd.DataFrame(
        {
            "query": ["q1"] * 5 + ["q2", "q2", "q2"],
            "position": [0, 1, 2, 3, 4, 0, 1, 2],
            "id": ["zz", "f", "d", "g", "a", "a", "b", "c"],
        }
    )
    plan = plan_substitutions(_items(), res, filters={"license": ["by"]}, rng=0)
    assert plan["reason"].tolist()[:4] == [
        "unknown id",
        "singleton cluster",
        "only duplicates in cluster",
        "filtered",
    ]
    assert plan["alternate_id"].iloc[4] == "b"  # c fails the license filter
    # q2 shows a, b and c: every passing member of cluster 0 is already in the list
    assert plan["reason"].tolist()[5:] == ["no eligible alternate"] * 3
    items = _items().astype({"cluster": "Int64"})
    items.loc[0, "cluster"] = pd.NA
    plan = plan_substitutions(items, res.iloc[[4]], rng=0)
    assert plan["reason"].tolist() == ["no cluster"]


def test_alternates_used_at_other_positions():
    items = pd.DataFrame({"id": ["a", "b", "c", "x"], "cluster": [0, 0, 0, 0]})
    res = pd.DataFrame({"query": "q", "position": [0, 1, 2], "id": ["a", "b", "c"]})
    # x is the only candidate for all three: the first position gets it
    plan = plan_substitutions(items, res, rng=0)
    assert plan["alternate_id"].tolist()[0] == "x"
    assert plan["reason"].tolist()[1:] == ["alternates used at other positions"] * 2


def test_duplicate_of_result_item_is_not_chosen():
    items = pd.DataFrame(
        {"id": ["a", "b", "b2", "c"], "cluster": 0, "duplicate_group": [None, 5, 5, None]}
    )
    res = pd.DataFrame({"query": "q", "position": [0, 1], "id": ["a", "b"]})
    for seed in range(20):
        plan = plan_substitutions(items, res, rng=seed)
        assert plan["alternate_id"].iloc[0] == "c"  # b2 is a duplicate of the shown b


def test_filters():
    res = pd.DataFrame({"query": "q", "position": [0], "id": ["g"]})
    assert plan_substitutions(_items(), res, rng=0)["alternate_id"].iloc[0] == "h"
    assert (
        plan_substitutions(_items(), res, filters={"license": "by"}, rng=0)["reason"].iloc[0]
        == "filtered"
    )
    res = pd.DataFrame({"query": "q", "position": [0], "id": ["b"]})
    for key in ("min_cluster_strength", "min_confidence"):
        plan = plan_substitutions(_items(), res, filters={key: 0.85}, rng=0)
        assert plan["alternate_id"].iloc[0] == "a"
    with pytest.raises(ParameterError, match="provider"):
        plan_substitutions(_items(), res, filters={"provider": ["flickr"]})
    with pytest.raises(ParameterError, match="number"):
        plan_substitutions(_items(), res, filters={"min_cluster_strength": "high"})


def test_random_rule_is_uniform_over_eligible():
    # cluster of 80; each query already shows 30 of them (rejection sampling path) or 70
    # (enumeration path); the alternate must be uniform over the rest
    n, n_queries = 80, 1500
    items = pd.DataFrame({"id": [f"m{k}" for k in range(n)], "cluster": 0})
    for shown in (30, 70):
        # position 0 shows m0 and the later positions m1.. m{shown-1}
        rows = [(f"q{q}", p, f"m{p}") for q in range(n_queries) for p in range(shown)]
        res = pd.DataFrame(rows, columns=["query", "position", "id"])
        plan = plan_substitutions(items, res, rng=1)
        first = plan[plan["position"] == 0]["alternate_id"]
        counts = first.value_counts().reindex([f"m{k}" for k in range(shown, n)], fill_value=0)
        assert counts.sum() == n_queries  # the first position always gets one
        assert stats.chisquare(counts.to_numpy()).pvalue > 0.001
        per_query = plan.groupby("query")["alternate_id"].count()
        assert (per_query == min(shown, n - shown)).all()  # every alternate used once


def test_closest_rule():
    items = pd.DataFrame({"id": list("abcdef"), "cluster": [0, 0, 0, 0, 0, 1]})
    w = np.zeros((6, 6))
    for i, j, v in [(0, 1, 0.9), (0, 2, 0.5), (2, 3, 0.8), (0, 5, 1.0), (3, 4, 0.1)]:
        w[i, j] = w[j, i] = v
    graph = KnnGraph.from_adjacency(w, list("abcdef"))
    one = pd.DataFrame({"query": "q", "position": [0], "id": ["a"]})
    plan = plan_substitutions(items, one, rule="closest", graph=graph)
    assert plan["alternate_id"].iloc[0] == "b"  # f is closer but in another cluster
    assert plan["hops"].iloc[0] == 1 and plan["score"].iloc[0] == pytest.approx(0.9)
    two = pd.DataFrame({"query": "q", "position": [0, 1, 2], "id": ["a", "b", "c"]})
    plan = plan_substitutions(items, two, rule="closest", graph=graph)
    # a: direct b, c are shown -> two-hop d (via c: 0.5 * 0.8)
    assert plan["alternate_id"].iloc[0] == "d" and plan["hops"].iloc[0] == 2
    assert plan["score"].iloc[0] == pytest.approx(0.4)
    # b: only neighbour a is shown; two-hop c is shown too -> nothing within two hops
    assert plan["reason"].iloc[1] == "no graph neighbour in cluster"
    # c: d is taken by position 0; e is not within two hops of c... via d: 0.8 * 0.1
    assert plan["alternate_id"].iloc[2] == "e"
    with pytest.raises(ParameterError, match="graph"):
        plan_substitutions(items, one, rule="closest")


def test_least_exposed_rule_and_random_ties():
    items = pd.DataFrame({"id": list("abcde"), "cluster": 0})
    exposure = pd.Series({"a": 5, "b": 10, "c": 3, "d": 3})  # e never shown: 0
    res = pd.DataFrame({"query": "q", "position": [0], "id": ["a"]})
    plan = plan_substitutions(items, res, rule="least_exposed", exposure=exposure)
    assert plan["alternate_id"].iloc[0] == "e" and plan["score"].iloc[0] == 0
    res = pd.DataFrame({"query": [f"q{k}" for k in range(400)], "position": 0, "id": "e"})
    picks = plan_substitutions(items, res, rule="least_exposed", exposure=exposure, rng=3)
    counts = picks["alternate_id"].value_counts()
    assert set(counts.index) == {"c", "d"} and counts.min() > 150  # ties split at random
    with pytest.raises(ParameterError, match="exposure"):
        plan_substitutions(items, res, rule="least_exposed")
    with pytest.raises(InputError, match="exposure"):
        plan_substitutions(items, res, rule="least_exposed", exposure=pd.Series({"b": -1}))


def test_seeded_and_input_validation():
    items = pd.DataFrame({"id": [f"m{k}" for k in range(50)], "cluster": 0})
    res = pd.DataFrame({"query": "q", "position": range(10), "id": [f"m{k}" for k in range(10)]})
    a = plan_substitutions(items, res, rng=4)
    assert a.equals(plan_substitutions(items, res, rng=4))
    with pytest.raises(InputError, match="position 1"):
        plan_substitutions(items, pd.concat([res, res.iloc[[1]]]))
    with pytest.raises(InputError, match="'position'"):
        plan_substitutions(items, res.assign(position=-1))
    with pytest.raises(InputError, match="'query'"):
        plan_substitutions(items, res.drop(columns="query"))
    with pytest.raises(InputError, match="unique"):
        plan_substitutions(pd.concat([items, items]), res)
    with pytest.raises(ParameterError, match="rule"):
        plan_substitutions(items, res, rule="nearest")


def test_plan_errors_show_plain_values_and_the_cluster_columns():
    # before: "row 0 has np.int64(-1)" and a bare "missing column 'cluster_l9'"
    items = pd.DataFrame({"id": ["a", "b"], "cluster": [0, 0], "cluster_l0": [0, 0]})
    results = pd.DataFrame({"query": ["q"], "position": np.array([-1]), "id": ["a"]})
    with pytest.raises(InputError, match=r"row 0 has -1$"):
        plan_substitutions(items, results)
    ok = results.assign(position=[0])
    with pytest.raises(InputError, match=r"'cluster_l9'; cluster columns present: cluster, cl"):
        plan_substitutions(items, ok, cluster_column="cluster_l9")
    with pytest.raises(InputError, match=r"id 'b' has -3\.0$"):
        plan_substitutions(items, ok, rule="least_exposed", exposure=pd.Series({"a": 1, "b": -3.0}))
