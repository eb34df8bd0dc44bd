"""Shared answer builders: cluster shares of weighted neighbours, ranked local PageRank.

Private to :mod:`ccgraph.query`; used for items of the run (their graph edges, a push from
the item) and for new items (their nearest stored items, a push from those).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ccgraph.query.answers import ClusterAnswer

if TYPE_CHECKING:
    from ccgraph.query.index import RunIndex

__all__ = ["cluster_answer", "related_frame", "related_from_seeds"]


def cluster_answer(
    index: RunIndex,
    item_id: str | None,
    rows: np.ndarray,
    weights: np.ndarray,
    *,
    own: np.ndarray | None,
) -> ClusterAnswer:
    """Per-level shares of ``weights`` by the clusters of ``rows``.

    ``own`` gives the item's cluster per level (an item of the run); ``None`` takes the
    cluster with the largest share (a new item; ties to the lower cluster id).
    """
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    lv_rows: list[tuple[int, int, float, int, str]] = []
    sec: list[tuple[int, int, float, int, str]] = []
    info = index.cluster_info
    for lev in range(index.n_levels):
        if total > 0:
            uniq, inv = np.unique(index.levels[lev, rows], return_inverse=True)
            share = np.bincount(inv, weights=w, minlength=len(uniq)) / total
        else:
            uniq, share = np.zeros(0, np.int64), np.zeros(0)
        if own is not None:
            mine = int(own[lev])
        elif len(uniq):
            mine = int(uniq[np.argmax(share)])
        else:
            mine = -1
        hit = uniq == mine
        strength = float(share[hit].sum()) if total > 0 else 1.0
        size, label = info.size(lev, mine), info.label(lev, mine)
        lv_rows.append((lev, mine, strength, size, label))
        order = np.lexsort((uniq, -share))
        for j in order:
            if not hit[j] and share[j] > 0:
                c = int(uniq[j])
                sec.append((lev, c, float(share[j]), info.size(lev, c), info.label(lev, c)))
    levels = pd.DataFrame(lv_rows, columns=["level", "cluster", "strength", "size", "label"])
    secondary = pd.DataFrame(sec, columns=["level", "cluster", "share", "size", "label"])
    return ClusterAnswer(item_id, index.default_level, levels, secondary)


def related_from_seeds(
    index: RunIndex,
    seeds: np.ndarray,
    seed_weights: np.ndarray,
    *,
    n: int,
    epsilon: float,
    alpha: float,
    duplicates: str,
    drop: np.ndarray,
    dup_rows: np.ndarray,
) -> pd.DataFrame:
    """Rank the local PageRank of a seed set (``drop`` rows are never listed)."""
    import scipy.sparse as sp

    from ccgraph.propagate import local_ppr

    if len(seeds) == 1:  # one item: its position (no restart vector to build)
        restart: Any = np.asarray(seeds, dtype=np.int64)
    else:
        restart = sp.csr_array(
            (seed_weights, (np.zeros(len(seeds), dtype=np.int64), seeds)),
            shape=(1, index.n_items),
        )
    p = local_ppr(index.graph, restart, alpha=alpha, epsilon=epsilon)
    nodes, vals = p.indices.astype(np.int64), p.data
    remove = drop if duplicates == "include" else np.concatenate([drop, dup_rows])
    keep = ~np.isin(nodes, remove)
    order = np.lexsort((nodes[keep], -vals[keep]))
    if duplicates != "include":  # one item per other near-duplicate group: its best-ranked
        groups = index.duplicate_group[nodes[keep][order]]
        order = order[np.sort(np.unique(groups, return_index=True)[1])]
    order = order[:n]
    rel_rows, rel_scores = nodes[keep][order], vals[keep][order]
    parts = [(rel_rows, rel_scores, "related")]
    if duplicates == "separate" and len(dup_rows):
        dmap = dict(zip(nodes.tolist(), vals.tolist(), strict=True))
        dup = np.setdiff1d(dup_rows, drop)
        dscore = np.array([dmap.get(int(r), 0.0) for r in dup])
        o = np.lexsort((dup, -dscore))[:n]
        parts.insert(0, (dup[o], dscore[o], "duplicate"))
    return related_frame(index, parts)


def related_frame(
    index: RunIndex, parts: Sequence[tuple[np.ndarray, np.ndarray, str]]
) -> pd.DataFrame:
    """The ``related`` table of ranked (rows, scores, relation) parts."""
    rows = np.concatenate([p[0] for p in parts]).astype(np.int64)
    cols = {
        "id": index.id_objects[rows],
        "rank": np.concatenate([np.arange(1, len(p[0]) + 1) for p in parts]),
        "score": np.concatenate([p[1] for p in parts]).astype(np.float64),
        "relation": np.concatenate([np.full(len(p[0]), p[2], dtype=object) for p in parts]),
        "cluster": index.levels[index.default_level, rows],
        "duplicate_group": index.duplicate_group[rows],
    }
    if index.titles is not None:
        cols["title"] = index.titles[rows]
    return pd.DataFrame(cols)
