"""Exact-duplicate rows: search each distinct row once, then expand the lists to every copy.

Private helper of :func:`ccgraph.graph.knn_search`; inputs are trusted. Catalogs repeat
captions, blank images and placeholder codes, so many rows can be bitwise identical. Their
mutual distances are ties at zero that a search would break by float rounding (which differs
between batches, threads and engines). Collapsing them first makes the tie-breaking a rule,
not an accident: the lists are the true ``k`` nearest by ``(distance, item index)``, and the
search runs on the distinct rows only.

1. :func:`identical_rows` hashes each row's bytes (a multiply-sum of its 64- or 32-bit
   words), groups equal hashes and verifies equality inside each group, so a hash collision
   can never merge different rows. Without duplicates it returns None and nothing changes.
2. The caller searches the representatives (each group's lowest row, in row order) for
   ``k_u = min(k, u - 1)`` neighbours.
3. :func:`expand_lists` gives every row its group-mates at distance 0, then the members of
   each listed group at that group's distance, sorted by ``(distance, row)``, first ``k``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["IdenticalRows", "expand_lists", "identical_rows"]

logger = logging.getLogger(__name__)

#: Up to this many rows the lists are expanded by one numpy sort (0.15 s at 20k rows with
#: 20 % copies), above by a numba kernel (~10x faster, but loading numba costs ~1 s, which
#: the small inputs the exact backend serves should not pay).
NUMPY_MAX_ROWS = 20_000
#: Rows hashed per block (bounds the temporary ``[rows, words]`` product to ~12 MB at d=384).
_HASH_ROWS = 8192
#: Odd 64-bit multipliers of the row hash (fixed: the hash must not depend on the run).
_MULTIPLIERS = np.random.default_rng(0x5EED).integers(1, 2**63, size=4096, dtype=np.uint64) | 1


@dataclass(frozen=True, slots=True)
class IdenticalRows:
    """Groups of bitwise-identical rows.

    Attributes
    ----------
    group
        ``int64 [n]``: group of each row, numbered ``0 .. u-1`` in the order of their first row.
    first
        ``int64 [u]``: the first (lowest) row of each group, ascending: the representatives.
    """

    group: np.ndarray
    first: np.ndarray

    @property
    def n_groups(self) -> int:
        """Number of distinct rows ``u``."""
        return len(self.first)


def _row_words(arr: np.ndarray) -> np.ndarray:
    """Each row's bytes as unsigned words ``[n, w]`` (a view when the row length allows it)."""
    arr = np.ascontiguousarray(arr)
    n = arr.shape[0]
    raw = arr.reshape(n, -1).view(np.uint8)
    nbytes = raw.shape[1]
    for dtype in (np.uint64, np.uint32):
        size = np.dtype(dtype).itemsize
        if nbytes % size == 0:
            return raw.view(dtype)
    padded = np.zeros((n, -(-nbytes // 8) * 8), dtype=np.uint8)
    padded[:, :nbytes] = raw
    return padded.view(np.uint64)


def row_hashes(words: np.ndarray) -> np.ndarray:
    """``uint64`` hash per row: ``sum_j w_j m_j`` (mod ``2^64``) with fixed odd ``m_j``."""
    n, w = words.shape
    if w == 1:
        return words[:, 0].astype(np.uint64)  # the word itself: no collisions
    mult = np.resize(_MULTIPLIERS, w)
    out = np.empty(n, dtype=np.uint64)
    for s in range(0, n, _HASH_ROWS):
        block = words[s : s + _HASH_ROWS]
        if block.dtype != np.uint64:
            block = block.astype(np.uint64)
        np.sum(block * mult, axis=1, dtype=np.uint64, out=out[s : s + _HASH_ROWS])
    return out


def _verified_groups(words: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by hash, verify equality inside each group, split any false collision.

    Returns ``(first, inv)``: the first row of each group and each row's group (numbered in
    hash order).
    """
    _, first, inv, counts = np.unique(h, return_index=True, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    cand = np.flatnonzero(counts[inv] > 1)
    ref = first[inv[cand]]
    bad = np.zeros(len(cand), dtype=bool)
    step = max(1, _HASH_ROWS // 4)
    for s in range(0, len(cand), step):
        bad[s : s + step] = (words[cand[s : s + step]] != words[ref[s : s + step]]).any(axis=1)
    if not bad.any():
        return first, inv
    rows = np.flatnonzero(np.isin(inv, inv[cand[bad]]))  # every row of a colliding hash
    logger.debug("identical rows: %d rows share a hash with a different row", len(rows))
    keys = np.ascontiguousarray(words[rows]).view(
        np.dtype((np.void, words.shape[1] * words.itemsize))
    )
    _, sub = np.unique(keys.ravel(), return_inverse=True)
    label = inv.astype(np.int64)
    label[rows] = len(first) + sub.ravel()  # exact sub-groups, numbered after the others
    _, first, inv = np.unique(label, return_index=True, return_inverse=True)
    return first, inv.ravel()


def identical_rows(arr: np.ndarray) -> IdenticalRows | None:
    """Group the bitwise-identical rows of ``arr``; None when every row is distinct.

    Parameters
    ----------
    arr
        ``[n, ...]`` array (float vectors or packed codes), compared byte by byte (so
        ``0.0`` and ``-0.0`` differ, which only costs a missed merge).

    Returns
    -------
    IdenticalRows or None
        The groups; None (after one hash pass and a sort) if no two rows are equal.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    >>> r = identical_rows(x)
    >>> r.group.tolist(), r.first.tolist()
    ([0, 1, 0, 0], [0, 1])
    >>> identical_rows(np.eye(3)) is None
    True
    """
    n = arr.shape[0]
    if n < 2:
        return None
    words = _row_words(arr)
    h = row_hashes(words)
    s = np.sort(h)
    if not (s[1:] == s[:-1]).any():
        return None
    first, inv = _verified_groups(words, h)
    if len(first) == n:
        return None
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[order] = np.arange(len(first))
    return IdenticalRows(rank[inv], first[order].astype(np.int64))


def expand_lists(
    rows: IdenticalRows, ind: np.ndarray, dist: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expand kNN lists over the distinct rows into lists over all rows.

    Parameters
    ----------
    rows
        The groups (from :func:`identical_rows`).
    ind, dist
        ``[u, k_u]`` lists of the representatives over group numbers (``-1`` / ``inf`` for an
        empty slot), as a search of ``arr[rows.first]`` returns them.
    k
        Neighbours per row.

    Returns
    -------
    indices, distances
        ``int32 [n, k]`` and ``float32 [n, k]``: row ``i`` gets its group-mates at distance 0,
        then the members of each listed group at that group's distance, ordered by
        ``(distance, row)``, first ``k`` (``-1`` / ``inf`` if fewer exist).

    Notes
    -----
    If the representatives' lists are the true ``k_u = min(k, u - 1)`` nearest groups by
    ``(distance, representative)``, the result is the true ``k`` nearest rows by
    ``(distance, row)``: a row ``j`` of an unlisted group is preceded by ``k_u`` listed
    representatives (each the lowest row of its group, so ``(d, rep) < (d_j, j)``), hence is not
    among the first ``k`` when ``k_u = k``, and no group is unlisted when ``k_u = u - 1``. Only
    the ``k + 1`` lowest rows of a group can appear in anyone's list, so each group's merged
    list costs ``O((k_u + 1) (k + 1))`` however large the groups are.
    """
    n, u = len(rows.group), rows.n_groups
    order = np.argsort(rows.group, kind="stable").astype(np.int64)  # rows by (group, row)
    indptr = np.zeros(u + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows.group, minlength=u), out=indptr[1:])
    ind = np.ascontiguousarray(ind, dtype=np.int64).reshape(u, -1)
    dist = np.ascontiguousarray(dist, dtype=np.float32).reshape(u, -1)
    if n <= NUMPY_MAX_ROWS:
        return _expand_numpy(rows.group, order, indptr, ind, dist, k)
    from ccgraph.graph._collapse_kernels import expand_groups

    out_i = np.empty((n, k), dtype=np.int32)
    out_d = np.empty((n, k), dtype=np.float32)
    expand_groups(order, indptr, ind, dist, k, out_i, out_d)
    return out_i, out_d


def _expand_numpy(
    group: np.ndarray,
    order: np.ndarray,
    indptr: np.ndarray,
    ind: np.ndarray,
    dist: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`expand_lists` by sorting all candidates at once (no numba; small inputs)."""
    n, u = len(group), len(indptr) - 1
    head = np.minimum(np.diff(indptr), k + 1)  # rows of a group that can be listed
    valid = ind.ravel() >= 0
    owner = np.concatenate([np.arange(u), np.repeat(np.arange(u), ind.shape[1])[valid]])
    block = np.concatenate([np.arange(u), ind.ravel()[valid]])
    block_d = np.concatenate([np.zeros(u, dtype=np.float32), dist.ravel()[valid]])
    count = head[block]
    rep = np.repeat(np.arange(len(block)), count)
    offset = np.arange(len(rep)) - np.repeat(np.cumsum(count) - count, count)
    item = order[indptr[block][rep] + offset]
    g, d = owner[rep], block_d[rep]
    # (group, distance) in one int64 key: the bits of a float32 >= +0.0 sort like its value
    key = (g.astype(np.int64) << 32) | (d + np.float32(0.0)).view(np.uint32).astype(np.int64)
    o = np.lexsort((item, key))
    g, item, d = g[o], item[o], d[o]
    rank = np.arange(len(g)) - np.searchsorted(g, np.arange(u))[g]
    keep = rank <= k
    lists_i = np.full((u, k + 1), -1, dtype=np.int64)
    lists_d = np.full((u, k + 1), np.inf, dtype=np.float32)
    lists_i[g[keep], rank[keep]] = item[keep]
    lists_d[g[keep], rank[keep]] = d[keep]
    mine_i, mine_d = lists_i[group], lists_d[group]  # [n, k + 1]: drop the row itself or the last
    is_self = mine_i == np.arange(n)[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep_slot = np.arange(k + 1)[None, :] != drop[:, None]
    out_i = mine_i[keep_slot].reshape(n, k).astype(np.int32)
    out_d = mine_d[keep_slot].reshape(n, k)
    return out_i, out_d
