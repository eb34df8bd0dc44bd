"""Numba kernel of the cell backend: one neighbour-of-neighbour refinement pass.

Imported lazily (importing this module loads numba). Compiled with ``cache=True``: the first
call on a machine compiles it (a few seconds) and writes the result beside this file (or under
``NUMBA_CACHE_DIR``); later processes load it in well under a second.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["cell_topk", "refine_pass", "reverse_lists", "top_cells"]

#: Reassociation lets the dot products vectorise; no nnan/ninf, so comparisons with inf hold.
_FAST = {"reassoc", "contract", "nsz", "arcp"}
#: Columns per block of the top-k scan (see cell_topk).
_BLOCK = 16


@numba.njit(cache=True, nogil=True, fastmath=_FAST, inline="always")
def _dot(x: np.ndarray, i: int, j: int) -> np.float32:
    acc = np.float32(0.0)
    xi = x[i]
    xj = x[j]
    for t in range(x.shape[1]):
        acc += xi[t] * xj[t]
    return acc


@numba.njit(cache=True, nogil=True, inline="always")
def _insert(bi: np.ndarray, bd: np.ndarray, j: int, d: float) -> bool:
    """Insert ``(d, j)`` into the list sorted by (distance, index) if it beats the last entry."""
    k = bi.shape[0]
    last = bi[k - 1]
    if last >= 0 and (d > bd[k - 1] or (d == bd[k - 1] and j > last)):
        return False
    pos = k - 1
    while pos > 0:
        pj = bi[pos - 1]
        if pj >= 0 and (bd[pos - 1] < d or (bd[pos - 1] == d and pj < j)):
            break
        bi[pos] = pj
        bd[pos] = bd[pos - 1]
        pos -= 1
    bi[pos] = j
    bd[pos] = d
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _insert_flagged(
    bi: np.ndarray, bd: np.ndarray, bf: np.ndarray, j: int, d: float | np.float32
) -> bool:
    """:func:`_insert` that also shifts the per-entry flags ``bf`` and flags the new entry."""
    k = bi.shape[0]
    last = bi[k - 1]
    if last >= 0 and (d > bd[k - 1] or (d == bd[k - 1] and j > last)):
        return False
    pos = k - 1
    while pos > 0:
        pj = bi[pos - 1]
        if pj >= 0 and (bd[pos - 1] < d or (bd[pos - 1] == d and pj < j)):
            break
        bi[pos] = pj
        bd[pos] = bd[pos - 1]
        bf[pos] = bf[pos - 1]
        pos -= 1
    bi[pos] = j
    bd[pos] = d
    bf[pos] = True
    return True


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FAST)
def refine_pass(
    x: np.ndarray,
    ind: np.ndarray,
    dist: np.ndarray,
    isnew: np.ndarray,
    rev_indptr: np.ndarray,
    rev_ind: np.ndarray,
    rev_new: np.ndarray,
    euclidean: bool,
    bounds: np.ndarray,
    out_ind: np.ndarray,
    out_dist: np.ndarray,
    out_new: np.ndarray,
) -> None:
    """Improve every row's list with its neighbours' neighbours (reads old, writes new lists).

    For row ``i`` the sources are the ``j`` in its list ``ind[i]`` and in its reverse list
    (rows that list ``i``); the candidates are the entries ``m`` of ``ind[j]``. As in
    NN-descent, a pair is tried only if something is new since the previous pass: ``j`` is new
    to ``i`` (``isnew[i]`` / ``rev_new``) or ``m`` is new to ``j`` (``isnew[j]``); in the first
    pass every entry is new. Each candidate's distance is computed once per row: ``1 - x_i .
    x_m`` for cosine (unit rows), the squared distance for euclidean. Entries that enter a list
    are flagged in ``out_new``. Rows are processed in parallel over the ``bounds`` chunks; each
    chunk owns an ``n``-sized visit stamp. Reads only the old lists, so the result does not
    depend on the number of threads.
    """
    n, k = ind.shape
    n_chunks = bounds.shape[0] - 1
    for c in numba.prange(n_chunks):
        stamp = np.full(n, -1, dtype=np.int64)
        for i in range(bounds[c], bounds[c + 1]):
            bi = out_ind[i]
            bd = out_dist[i]
            bf = out_new[i]
            for t in range(k):
                bi[t] = ind[i, t]
                bd[t] = dist[i, t]
                bf[t] = False
            stamp[i] = i
            for t in range(k):
                if ind[i, t] >= 0:
                    stamp[ind[i, t]] = i
            r0 = rev_indptr[i]
            n_src = k + rev_indptr[i + 1] - r0
            for s in range(n_src):
                if s < k:
                    j = ind[i, s]
                    src_new = isnew[i, s]
                else:
                    j = rev_ind[r0 + s - k]
                    src_new = rev_new[r0 + s - k]
                if j < 0:
                    continue
                for u in range(k):
                    m = ind[j, u]
                    if m < 0 or stamp[m] == i or not (src_new or isnew[j, u]):
                        continue
                    stamp[m] = i
                    if euclidean:
                        d = np.float32(0.0)
                        xi = x[i]
                        xm = x[m]
                        for t in range(x.shape[1]):
                            diff = xi[t] - xm[t]
                            d += diff * diff
                    else:
                        d = 1.0 - _dot(x, i, m)
                    _insert_flagged(bi, bd, bf, m, d)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def cell_topk(
    s: np.ndarray,
    mem: np.ndarray,
    slot: np.ndarray,
    k: int,
    sq: np.ndarray,
    euclidean: bool,
    cand_i: np.ndarray,
    cand_d: np.ndarray,
) -> None:
    """Each row's best ``k`` columns of a cell's score block into its candidate slot.

    ``s[a, b]`` is the score of member ``mem[b]`` for member ``mem[a]`` (``x_a . x_b``, minus
    ``|x_b|^2 / 2`` for euclidean), with ``-inf`` on the diagonal. Row ``a`` writes the ids of
    its ``k`` best scores (ties to the lower id) as distances (``1 - s`` for cosine,
    ``|x_a|^2 - 2 s``, squared, for euclidean) into ``cand_i/cand_d[mem[a], slot[a] * k :
    slot[a] * k + k]``. The row is scanned in blocks of ``_BLOCK`` whose maximum (a vectorised pass)
    is compared with the current k-th best first, so most blocks cost one comparison.
    Single-threaded: cells run in parallel in Python threads.
    """
    b = s.shape[0]
    bi = np.empty(k, dtype=np.int64)
    bd = np.empty(k, dtype=np.float32)
    n_full = b // _BLOCK
    cmax = np.empty(n_full, dtype=s.dtype)
    best = np.empty(k, dtype=s.dtype)
    for a in range(b):
        for t in range(k):
            bi[t] = -1
            bd[t] = np.inf
        row = s[a]
        for ch in range(n_full):  # block maxima: fixed trip count, vectorised
            c0 = ch * _BLOCK
            mx = row[c0]
            for c in range(c0 + 1, c0 + _BLOCK):
                v = row[c]
                mx = v if v > mx else mx
            cmax[ch] = mx
        # the k-th largest block maximum is a lower bound of the k-th largest score
        thr = -np.inf
        if n_full >= k:
            for t in range(k):
                best[t] = -np.inf
            for ch in range(n_full):
                v = cmax[ch]
                if v > best[k - 1]:
                    pos = k - 1
                    while pos > 0 and best[pos - 1] < v:
                        best[pos] = best[pos - 1]
                        pos -= 1
                    best[pos] = v
            thr = best[k - 1]
        for c0 in range(0, b, _BLOCK):
            if c0 + _BLOCK <= b and cmax[c0 // _BLOCK] < thr:
                continue
            for c in range(c0, min(b, c0 + _BLOCK)):
                v = row[c]
                if v >= thr and v > -np.inf:
                    if _insert(bi, bd, mem[c], -v) and bi[k - 1] >= 0:
                        thr = max(thr, -bd[k - 1])
        p = mem[a]
        off = slot[a] * k
        for t in range(k):
            if bi[t] < 0:
                cand_i[p, off + t] = -1
                cand_d[p, off + t] = np.inf
            else:
                d = sq[p] + 2.0 * bd[t] if euclidean else 1.0 + bd[t]
                cand_i[p, off + t] = bi[t]
                cand_d[p, off + t] = max(d, 0.0)


@numba.njit(parallel=True, cache=True, nogil=True)
def top_cells(scores: np.ndarray, out: np.ndarray) -> None:
    """``out[i]``: the columns of row ``i``'s ``out.shape[1]`` largest scores, best first."""
    n, c = scores.shape
    m = out.shape[1]
    for i in numba.prange(n):
        row = scores[i]
        best = np.full(m, -np.inf, dtype=scores.dtype)
        idx = np.zeros(m, dtype=np.int64)
        for j in range(c):
            v = row[j]
            if v > best[m - 1]:
                pos = m - 1
                while pos > 0 and best[pos - 1] < v:
                    best[pos] = best[pos - 1]
                    idx[pos] = idx[pos - 1]
                    pos -= 1
                best[pos] = v
                idx[pos] = j
        for t in range(m):
            out[i, t] = idx[t]


@numba.njit(cache=True, nogil=True)
def reverse_lists(
    ind: np.ndarray, isnew: np.ndarray, max_rev: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reverse kNN lists (who lists each row), at most ``max_rev`` per row, nearest ranks first.

    Visiting the lists rank by rank, then row by row, fills every row's bucket in (rank,
    source) order, so this is a stable bucket sort in ``O(n k)``. Returns the CSR ``indptr``,
    the listing rows and whether each listing is new.
    """
    n, k = ind.shape
    counts = np.zeros(n, dtype=np.int64)
    for r in range(k):
        for i in range(n):
            j = ind[i, r]
            if j >= 0 and counts[j] < max_rev:
                counts[j] += 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):
        indptr[j + 1] = indptr[j] + counts[j]
    fill = indptr[:-1].copy()
    src = np.empty(indptr[n], dtype=np.int64)
    new = np.empty(indptr[n], dtype=np.bool_)
    for r in range(k):
        for i in range(n):
            j = ind[i, r]
            if j >= 0 and fill[j] < indptr[j + 1]:
                src[fill[j]] = i
                new[fill[j]] = isnew[i, r]
                fill[j] += 1
    return indptr, src, new
