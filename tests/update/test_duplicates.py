"""Duplicate groups after an update against find_duplicates over all items."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ccgraph.containers import Embeddings
from ccgraph.graph import find_duplicates
from ccgraph.update.duplicates import close_pairs, update_duplicates


def _vectors(seed: int) -> np.ndarray:
    """30 distinct directions, each with 0-2 near copies."""
    g = np.random.default_rng(seed)
    base = g.normal(size=(30, 12))
    rows = [base]
    for i in range(0, 30, 3):
        rows.append(base[i] + 0.01 * g.normal(size=(1, 12)))
    x = np.vstack(rows)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return bool((pd.factorize(a)[0] == pd.factorize(b)[0]).all())


def test_groups_after_adding_equal_a_full_search() -> None:
    x = _vectors(0)
    ids = np.array([f"d{i:02d}" for i in range(len(x))])
    n_old = 33  # the last 7 near copies arrive with the update
    old = find_duplicates(Embeddings.from_array(x[:n_old], ids[:n_old]), cosine=0.99, k=5)
    emb = Embeddings.from_array(x, ids)
    batch = np.arange(len(x)) >= n_old
    pairs = close_pairs(emb, batch, threshold=0.01, metric="cosine")
    group, canonical, params = update_duplicates(
        ids,
        pd.Series(old.group, index=ids[:n_old]),
        pd.Series(old.is_canonical, index=ids[:n_old]),
        pairs,
        batch=batch,
    )
    full = find_duplicates(emb, cosine=0.99, k=5)
    assert _same_partition(group, full.group)
    np.testing.assert_array_equal(canonical, full.is_canonical)
    np.testing.assert_array_equal(group[:n_old], old.group)  # old numbers kept
    assert params["n_duplicates"] == full.params["n_duplicates"]


def test_merge_takes_the_smaller_number_and_batch_only_groups_are_fresh() -> None:
    ids = np.array(["a", "b", "c", "d", "e"])
    old_group = pd.Series([0, 1, 2], index=["a", "b", "c"])
    old_canon = pd.Series([True, True, True], index=["a", "b", "c"])
    batch = np.array([False, False, False, True, True])
    # d joins a and c (merging groups 0 and 2); e is alone
    pairs = (np.array([3, 3]), np.array([0, 2]))
    group, canonical, _ = update_duplicates(ids, old_group, old_canon, pairs, batch=batch)
    assert group.tolist() == [0, 1, 0, 0, 3]
    assert canonical.tolist() == [True, True, False, False, True]
    prio = np.array([1.0, np.nan, 5.0, 2.0, np.nan])
    _, by_pop, _ = update_duplicates(ids, old_group, old_canon, pairs, batch=batch, priority=prio)
    assert by_pop.tolist() == [False, True, True, False, True]


def _groupby_oracle(
    og: np.ndarray,
    was: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    batch: np.ndarray,
    priority: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The pandas formulation ``update_duplicates`` had (groupby min, four-key lexsort)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = len(og)
    og = og.copy()
    og[batch] = np.nan
    has_old = np.isfinite(og)
    codes, uniq = pd.factorize(og[has_old])
    u = np.concatenate([np.flatnonzero(has_old), pairs[0]])
    v = np.concatenate([n + codes, pairs[1]])
    size = n + len(uniq)
    m = sp.csr_matrix((np.ones(len(u)), (u, v)), shape=(size, size))
    comp = connected_components(m, directed=False)[1][:n]
    best = pd.DataFrame({"comp": comp, "old": og}).groupby("comp")["old"].min()
    start = int(np.nanmax(og)) + 1 if has_old.any() else 0
    fresh = best.index[best.isna()]
    best[fresh] = start + np.arange(len(fresh))
    group = best.reindex(comp).to_numpy(np.int64)
    was = was & ~batch
    prio = np.zeros(n) if priority is None else np.where(np.isnan(priority), -np.inf, priority)
    key_old = was if priority is None else np.zeros(n, dtype=bool)
    order = np.lexsort((np.arange(n), -prio, ~key_old, group))
    head = np.ones(n, dtype=bool)
    head[1:] = group[order][1:] != group[order][:-1]
    canonical = np.zeros(n, dtype=bool)
    canonical[order[head]] = True
    sizes = np.bincount(pd.factorize(group)[0])
    return group, canonical, int((sizes > 1).sum()), int((~canonical).sum())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), rule=st.booleans())
def test_groups_match_the_groupby_formulation(seed: int, n: int, rule: bool) -> None:
    g = np.random.default_rng(seed)
    og = np.where(g.random(n) < 0.6, g.integers(0, 8, n).astype(float), np.nan)
    was = g.random(n) < 0.3
    batch = g.random(n) < 0.3
    m = int(g.integers(0, n + 1))
    pairs = (g.integers(0, n, m), g.integers(0, n, m))
    priority = np.where(g.random(n) < 0.2, np.nan, g.integers(0, 4, n)) if rule else None
    group, canonical, params = update_duplicates(
        np.array([f"i{i}" for i in range(n)]), og, was, pairs, batch=batch, priority=priority
    )
    want = _groupby_oracle(og, was, pairs, batch, priority)
    np.testing.assert_array_equal(group, want[0])
    np.testing.assert_array_equal(canonical, want[1])
    assert (params["n_groups_with_duplicates"], params["n_duplicates"]) == want[2:]
