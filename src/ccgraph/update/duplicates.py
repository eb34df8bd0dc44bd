"""Near-duplicate groups after an update: old groups kept, batch items joined by close pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ccgraph.containers import Embeddings
from ccgraph.update._persist import KnnLists

__all__ = ["close_pairs", "update_duplicates"]


def close_pairs(
    emb: Embeddings,
    batch: np.ndarray,
    *,
    threshold: float,
    metric: str,
    lists: KnnLists | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(u, v)`` of ``emb`` rows within ``threshold`` that involve a batch row.

    With ``lists`` (kNN lists over the same rows), candidates are the listed pairs, as
    :func:`ccgraph.graph.find_duplicates` takes them; otherwise every batch row is compared
    with every row.
    """
    tol = 1e-6 if metric != "hamming" else 0.0
    if lists is not None:
        n, k = lists.indices.shape
        u = np.repeat(np.arange(n, dtype=np.int64), k)
        v = lists.indices.ravel().astype(np.int64)
        d = lists.distances.ravel()
        ok = (v >= 0) & (d <= threshold + tol)
        u, v = u[ok], v[ok]
        touch = batch[u] | batch[v]
        return u[touch], v[touch]
    from ccgraph.graph.knn import prepare_vectors
    from ccgraph.update.knn import batch_distances

    data = prepare_vectors(emb, metric)
    rows = np.flatnonzero(batch)
    us, vs = [], []
    for s, block in batch_distances(data, rows, metric=metric):
        r, c = np.nonzero(block <= threshold + tol)
        us.append(rows[s + r])
        vs.append(c)
    if not us:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(us).astype(np.int64), np.concatenate(vs).astype(np.int64)


def update_duplicates(
    ids: np.ndarray,
    old_group: pd.Series | np.ndarray,
    old_canonical: pd.Series | np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    *,
    batch: np.ndarray,
    priority: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Groups and canonical flags over ``ids`` after the update.

    Parameters
    ----------
    ids
        Items after the update.
    old_group, old_canonical
        The run's ``duplicate_group`` and ``is_canonical`` per item id (Series indexed by
        id), or as arrays aligned with ``ids`` (NaN / False for items new to the run).
    pairs
        Close pairs (rows of ``ids``) found for the batch (:func:`close_pairs`).
    batch
        New and re-embedded items (they leave their old group and join by their pairs).
    priority
        Canonical rule ``popularity``: one number per item (NaN lowest); None keeps the old
        canonical where it stays in its group and otherwise takes the first item.

    Returns
    -------
    group, is_canonical, params
        A group keeps its old number; groups joined by the batch take the smallest; groups of
        batch items only get numbers above the old maximum.
    """
    n = len(ids)
    og = np.array(_aligned(old_group, ids, np.nan), dtype=np.float64, copy=True)
    og[batch] = np.nan
    has_old = np.isfinite(og)
    codes, uniq = pd.factorize(og[has_old])
    n_old_groups = len(uniq)
    # nodes 0..n-1 items, n.. one per old group; item -> its old group, plus the close pairs
    u = np.concatenate([np.flatnonzero(has_old), pairs[0]])
    v = np.concatenate([n + codes, pairs[1]])
    m = sp.csr_matrix((np.ones(len(u)), (u, v)), shape=(n + n_old_groups, n + n_old_groups))
    n_comp, comp = connected_components(m, directed=False)
    comp = comp[:n]
    # per component of items: its smallest old group (none: NaN), as a groupby min would
    best = np.full(n_comp, np.inf)
    np.minimum.at(best, comp[has_old], og[has_old])
    listed = np.zeros(n_comp, dtype=bool)
    listed[comp] = True
    known = np.zeros(n_comp, dtype=bool)
    known[comp[has_old]] = True
    label = np.where(known, best, np.nan)
    start = int(np.nanmax(og)) + 1 if has_old.any() else 0
    fresh_comps = np.flatnonzero(listed & np.isnan(label))  # ascending, as the groupby's keys
    label[fresh_comps] = start + np.arange(len(fresh_comps))
    group = label[comp].astype(np.int64)
    was = np.asarray(_aligned(old_canonical, ids, False), dtype=bool) & ~batch
    prio = (
        np.zeros(n)
        if priority is None
        else np.where(np.isnan(priority), -np.inf, np.asarray(priority, dtype=np.float64))
    )
    # best member per group: a kept old canonical first (rule unknown for old items) or the
    # highest priority, ties to the first row
    # (a stable sort: ties stay in row order; the rule's other key is constant)
    order = np.lexsort((-prio, group)) if priority is not None else np.lexsort((~was, group))
    head = np.ones(n, dtype=bool)
    head[1:] = group[order][1:] != group[order][:-1]
    canonical = np.zeros(n, dtype=bool)
    canonical[order[head]] = True
    sizes = np.diff(np.r_[np.flatnonzero(head), n])  # the groups' sizes (sorted runs)
    params = {
        "n_pairs": len(pairs[0]),
        "n_groups_with_duplicates": int((sizes > 1).sum()),
        "n_duplicates": int((~canonical).sum()),
    }
    return group, canonical, params


def _aligned(values: pd.Series | np.ndarray, ids: np.ndarray, fill: object) -> np.ndarray:
    """``values`` per item of ``ids``: a Series is looked up by id, an array taken as is."""
    if isinstance(values, pd.Series):
        return values.reindex(pd.Index(ids)).fillna(fill).to_numpy()
    return np.asarray(values)
