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


def _split_collisions(words: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Verify that rows sharing a label are identical; split the labels of any that are not."""
    _, first, inv, counts = np.unique(
        label, return_index=True, return_inverse=True, return_counts=True
    )
    cand = np.flatnonzero(counts[inv] > 1)
    ref = first[inv[cand]]
    bad = np.zeros(len(cand), dtype=bool)
    step = max(1, _HASH_ROWS // 4)
    for s in range(0, len(cand), step):
        a, b = cand[s : s + step], ref[s : s + step]
        bad[s : s + step] = (words[a] != words[b]).any(axis=1)
    if not bad.any():
        return label
    clash = np.isin(inv, np.unique(inv[cand[bad]]))  # every row of a colliding hash
    rows = np.flatnonzero(clash)
    logger.debug("identical rows: %d rows share a hash with a different row", len(rows))
    keys = np.ascontiguousarray(words[rows]).view(np.dtype((np.void, words.shape[1] * words.itemsize)))
    _, sub = np.unique(keys.ravel(), return_inverse=True)
    out = inv.ravel().astype(np.int64)  # dense labels; exact sub-labels after them
    out[rows] = len(first) + sub.ravel()
    return out


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
    label = _split_collisions(words, h)
    _, first, inv = np.unique(label, return_index=True, return_inverse=True)
    if len(first) == n:
        return None
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[order] = np.arange(len(first))
    return IdenticalRows(rank[inv.ravel()], first[order].astype(np.int64))


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
    from ccgraph.graph._collapse_kernels import expand_groups

    n, u = len(rows.group), rows.n_groups
    order = np.argsort(rows.group, kind="stable").astype(np.int64)  # rows by (group, row)
    indptr = np.zeros(u + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows.group, minlength=u), out=indptr[1:])
    out_i = np.empty((n, k), dtype=np.int32)
    out_d = np.empty((n, k), dtype=np.float32)
    ind = np.ascontiguousarray(ind, dtype=np.int64).reshape(u, -1)
    dist = np.ascontiguousarray(dist, dtype=np.float32).reshape(u, -1)
    expand_groups(order, indptr, ind, dist, k, out_i, out_d)
    return out_i, out_d
