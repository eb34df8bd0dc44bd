"""Vectorised search for each result row's alternate along a ranked candidate list.

A *candidate list* belongs to an owner (a cluster for the ``random`` and ``least_exposed`` rules,
an item for ``closest``) and is a flat run of item codes split into *blocks* of equally ranked
candidates. A row takes a uniformly random eligible candidate from the first block that has one.
Eligible means: its duplicate group is not among the query's excluded groups (the groups of every
item in the query's results and of every alternate already chosen for that query).

Positions are processed in order within each query (earlier positions choose first); the
queries advance together. Rows in large blocks draw a candidate by rejection sampling (uniform over
the eligible ones); rows in small blocks (or that failed ``_MAX_TRIES`` draws) enumerate their
block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["CandidateLists", "closest_lists", "cluster_lists", "walk"]

_SMALL_BLOCK = 32
_MAX_TRIES = 12


@dataclass(frozen=True, slots=True)
class CandidateLists:
    """Flat candidate arrays: ``cand[start[o]:end[o]]`` is owner ``o``'s ranked list."""

    cand: np.ndarray  # item codes
    block_end: np.ndarray  # for each flat position, the end of its block
    score: np.ndarray  # the ranking value of each candidate (for the output)
    hops: np.ndarray  # 1 / 2 for graph candidates, 0 otherwise
    start: np.ndarray
    end: np.ndarray


def cluster_lists(
    cluster: np.ndarray, passing: np.ndarray, n_clusters: int, value: np.ndarray | None
) -> CandidateLists:
    """Build lists of passing members per cluster; blocks of equal ``value`` (one block if None)."""
    members = np.flatnonzero(passing & (cluster >= 0))
    val = np.zeros(len(members)) if value is None else value[members]
    order = np.lexsort((val, cluster[members]))
    cand, val = members[order], val[order]
    cl = cluster[cand]
    start = np.searchsorted(cl, np.arange(n_clusters), side="left")
    end = np.searchsorted(cl, np.arange(n_clusters), side="right")
    return CandidateLists(cand, _block_ends(cl, val), val, np.zeros(len(cand), np.int8), start, end)


def closest_lists(
    adjacency: sp.csr_matrix,
    owners: np.ndarray,
    cluster: np.ndarray,
    passing: np.ndarray,
    *,
    chunk: int = 4096,
) -> CandidateLists:
    """Graph candidates of each owner item inside its cluster.

    Direct neighbours come first, by decreasing edge weight ``w_ij``; then two-hop neighbours,
    by decreasing ``(A^2)_ij = sum_k w_ik w_kj``. Only passing items of the owner's cluster
    other than the owner itself are kept. Scores are compared in float32 (the graph's dtype).
    """
    parts: dict[str, list[np.ndarray]] = {"o": [], "j": [], "h": [], "s": [], "change": []}
    for lo in range(0, len(owners), chunk):
        own = owners[lo : lo + chunk]
        sub = adjacency[own]
        a1, a2 = sub.tocoo(), (sub @ adjacency).tocoo()
        # a direct neighbour also listed among the two-hop ones is harmless: its second entry
        # ranks lower and is ineligible whenever the first is
        rows = np.concatenate([a1.row, a2.row]).astype(np.int64)
        cols = np.concatenate([a1.col, a2.col]).astype(np.int64)
        hops = np.concatenate([np.ones(a1.nnz, np.int8), np.full(a2.nnz, 2, np.int8)])
        scores = np.concatenate([a1.data, a2.data]).astype(np.float32)
        own_item = own[rows]
        ok = (cols != own_item) & passing[cols] & (cluster[cols] == cluster[own_item])
        ok &= scores > 0
        rows, cols, hops, scores = rows[ok], cols[ok], hops[ok], scores[ok]
        # one sortable key per entry: (owner, hop) high, decreasing float32 score low (the bit
        # pattern of a positive float32 orders like its value)
        bits = scores.view(np.uint32).astype(np.uint64)
        key = ((rows.astype(np.uint64) * 2 + (hops - 1).astype(np.uint64)) << np.uint64(32)) | (
            np.uint64(0xFFFFFFFF) - bits
        )
        order = np.argsort(key, kind="stable")
        key = key[order]
        parts["o"].append(rows[order] + lo)
        parts["j"].append(cols[order])
        parts["h"].append(hops[order])
        parts["s"].append(scores[order].astype(np.float64))
        parts["change"].append(np.r_[key[1:] != key[:-1], True] if len(key) else key > 0)
    empty = {"o": np.int64, "j": np.int64, "h": np.int8, "s": np.float64, "change": bool}
    cat = {k: np.concatenate(v) if v else np.zeros(0, empty[k]) for k, v in parts.items()}
    idx = np.arange(len(owners))
    start = np.searchsorted(cat["o"], idx, side="left")
    end = np.searchsorted(cat["o"], idx, side="right")
    return CandidateLists(
        cat["j"], _ends_from_change(cat["change"]), cat["s"], cat["h"], start, end
    )


def walk(
    lists: CandidateLists,
    row_owner: np.ndarray,
    row_query: np.ndarray,
    dup: np.ndarray,
    excluded: np.ndarray,
    n_dup: int,
    gen: np.random.Generator,
) -> np.ndarray:
    """Return the flat position of each row's chosen candidate (-1 when none is eligible).

    ``row_*`` arrays are sorted by query, then position. ``excluded`` holds the sorted keys
    ``query * n_dup + duplicate_group`` a query may not show again. Rows are processed in
    waves: wave ``r`` holds the ``r``-th row of every query, so each position chooses after all
    earlier positions of its query (exactly the sequential rule) while the queries of one wave
    are handled together.
    """
    n = len(row_owner)
    chosen = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return chosen
    first = np.r_[True, row_query[1:] != row_query[:-1]]
    rank = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))
    qbase = row_query.astype(np.int64) * n_dup
    taken = np.zeros(0, dtype=np.int64)
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max()) + 2))
    for r in range(len(bounds) - 1):
        wave = by_rank[bounds[r] : bounds[r + 1]]
        pos, keys = _choose(lists, row_owner[wave], qbase[wave], dup, excluded, taken, gen)
        chosen[wave] = pos
        taken = np.sort(np.concatenate([taken, keys]))
    return chosen


def _choose(
    lists: CandidateLists,
    owner: np.ndarray,
    qbase: np.ndarray,
    dup: np.ndarray,
    excluded: np.ndarray,
    taken: np.ndarray,
    gen: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One wave (at most one row per query): chosen flat positions and their new keys."""
    n = len(owner)
    ptr = lists.start[owner].astype(np.int64)
    stop = lists.end[owner].astype(np.int64)
    chosen = np.full(n, -1, dtype=np.int64)
    tries = np.zeros(n, dtype=np.int64)
    while True:
        active = np.flatnonzero((chosen < 0) & (ptr < stop))
        if len(active) == 0:
            got = chosen >= 0
            return chosen, qbase[got] + dup[lists.cand[chosen[got]]]
        size = lists.block_end[ptr[active]] - ptr[active]
        enum = (size <= _SMALL_BLOCK) | (tries[active] >= _MAX_TRIES)
        # enumerate small blocks: every (row, candidate) pair, then a random eligible one per row
        er = active[enum]
        if len(er):
            sizes = size[enum]
            rep = np.repeat(er, sizes)
            offs = np.arange(len(rep)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            pos = np.repeat(ptr[er], sizes) + offs
            ok = _eligible(qbase[rep] + dup[lists.cand[pos]], excluded, taken)
            r_ok, p_ok = rep[ok], pos[ok]
            order = np.lexsort((gen.random(len(r_ok)), r_ok))
            r_ok, p_ok = r_ok[order], p_ok[order]
            lead = np.r_[True, r_ok[1:] != r_ok[:-1]] if len(r_ok) else np.zeros(0, bool)
            chosen[r_ok[lead]] = p_ok[lead]
            empty = er[chosen[er] < 0]
            ptr[empty] = lists.block_end[ptr[empty]]  # block exhausted: next block
        # rejection sampling in large blocks: uniform draws until an eligible one
        rr = active[~enum]
        if len(rr):
            pos = ptr[rr] + (gen.random(len(rr)) * size[~enum]).astype(np.int64)
            ok = _eligible(qbase[rr] + dup[lists.cand[pos]], excluded, taken)
            tries[rr[~ok]] += 1
            chosen[rr[ok]] = pos[ok]


def _eligible(keys: np.ndarray, excluded: np.ndarray, taken: np.ndarray) -> np.ndarray:
    return ~(_member(keys, excluded) | _member(keys, taken))


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    i = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[i] == keys


def _block_ends(owner: np.ndarray, value: np.ndarray) -> np.ndarray:
    return _block_ends_multi(np.stack([owner.astype(np.float64), value.astype(np.float64)]))


def _block_ends_multi(keys: np.ndarray) -> np.ndarray:
    """For sorted rows of ``keys`` (columns = flat positions), the end of each equal run."""
    if keys.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    return _ends_from_change(np.r_[np.any(keys[:, 1:] != keys[:, :-1], axis=0), True])


def _ends_from_change(change: np.ndarray) -> np.ndarray:
    """``change[i]`` marks the last position of a run; return each position's run end."""
    if len(change) == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(change) + 1
    run = np.r_[0, np.cumsum(change)[:-1]]
    return ends[run]
