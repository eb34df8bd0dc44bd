"""Numba kernels of the update's local edges: the pairs around changed lists, the merged CSR.

Imported lazily (importing this module loads numba); compiled with ``cache=True``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["lists_differ", "local_pairs", "merge_edges"]


@numba.njit(cache=True, nogil=True)
def lists_differ(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Whether each row of ``old`` differs from the same row of ``new``.

    ``old`` is ``[m, k]`` (any negative entry an empty slot), ``new`` ``[n >= m, k]`` (``-1``
    empty): ``changed_lists`` of ``max(old, -1)`` against ``new[:m]``, without the temporaries.
    """
    m, k = old.shape
    out = np.zeros(m, dtype=np.bool_)
    for r in range(m):
        for s in range(k):
            a = old[r, s]
            if (a if a >= 0 else -1) != new[r, s]:
                out[r] = True
                break
    return out


@numba.njit(cache=True, nogil=True)
def local_pairs(
    indices: np.ndarray, distances: np.ndarray, changed: np.ndarray, min_degree: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pair table of the kNN list entries with a changed end, one row per pair.

    Returns ``(u, v, dist, in_uv, in_vu, top_m)`` with ``u < v``, as
    :func:`ccgraph.graph.build.pair_table_of` gives them for the entries ``(r, c)`` of
    ``indices`` (``-1``: empty) where ``changed[r]`` or ``changed[c]``: ``in_uv`` whether
    ``u`` lists ``v``, ``dist`` the smaller of the two listed distances, ``top_m`` whether
    either end lists the other in one of its first ``min_degree`` slots. Pairs come in the
    order of their first entry (rows ascending), not sorted. Each list names an item once.
    """
    n, k = indices.shape
    cap = 0
    for r in range(n):
        for s in range(k):
            c = indices[r, s]
            if c >= 0 and c != r and (changed[r] or changed[c]):
                cap += 1
    u = np.empty(cap, dtype=np.int64)
    v = np.empty(cap, dtype=np.int64)
    dist = np.empty(cap, dtype=distances.dtype)
    in_uv = np.zeros(cap, dtype=np.bool_)
    in_vu = np.zeros(cap, dtype=np.bool_)
    top_m = np.zeros(cap, dtype=np.bool_)
    m = 0
    for r in range(n):
        for s in range(k):
            c = indices[r, s]
            if c < 0 or c == r or not (changed[r] or changed[c]):
                continue
            back = -1  # the slot of r in c's list
            for t in range(k):
                if indices[c, t] == r:
                    back = t
                    break
            if r > c and back >= 0:
                continue  # the pair comes with c's entry
            d_here = distances[r, s]
            d_back = distances[c, back] if back >= 0 else np.inf
            if r < c:
                u[m], v[m] = r, c
                in_uv[m], in_vu[m] = True, back >= 0
            else:
                u[m], v[m] = c, r
                in_uv[m], in_vu[m] = False, True
            # np.fmin: a NaN loses to a number
            if np.isnan(d_back) or d_here <= d_back:
                dist[m] = d_here
            else:
                dist[m] = d_back
            top_m[m] = s < min_degree or (back >= 0 and back < min_degree)
            m += 1
    return u[:m], v[:m], dist[:m], in_uv[:m], in_vu[:m], top_m[:m]


@numba.njit(cache=True, nogil=True)
def merge_edges(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    changed: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices, data)``: the old entries between unchanged rows, plus ``w``.

    The old CSR must be canonical (sorted indices, no duplicates); its nonzero entries with
    both ends unchanged stay, and ``w`` (float32) is set at ``(u, v)`` and ``(v, u)``. As
    scipy's ``kept + symmetric`` of canonical matrices: rows sorted, an entry present in both
    summed, zero sums dropped. Column numbers are int32 (fewer than ``2**31`` nodes).
    """
    n = indptr.shape[0] - 1
    # the new entries by row, sorted by column
    nptr = np.zeros(n + 1, dtype=np.int64)
    for e in range(u.shape[0]):
        nptr[u[e] + 1] += 1
        nptr[v[e] + 1] += 1
    for i in range(n):
        nptr[i + 1] += nptr[i]
    fill = nptr[:-1].copy()
    ncol = np.empty(nptr[n], dtype=np.int64)
    nval = np.empty(nptr[n], dtype=np.float32)
    for e in range(u.shape[0]):
        for row, col in ((u[e], v[e]), (v[e], u[e])):
            p = fill[row]
            ncol[p] = col
            nval[p] = w[e]
            fill[row] = p + 1
    for i in range(n):  # insertion sort: rows hold a few entries
        for p in range(nptr[i] + 1, nptr[i + 1]):
            c = ncol[p]
            x = nval[p]
            q = p
            while q > nptr[i] and ncol[q - 1] > c:
                ncol[q] = ncol[q - 1]
                nval[q] = nval[q - 1]
                q -= 1
            ncol[q] = c
            nval[q] = x
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    out_col = np.empty(indptr[n] + nptr[n], dtype=np.int32)  # node numbers: n < 2**31
    out_val = np.empty(indptr[n] + nptr[n], dtype=np.float32)
    t = 0
    for i in range(n):
        a = indptr[i]
        a_end = indptr[i + 1] if not changed[i] else a  # a changed row keeps nothing
        b = nptr[i]
        b_end = nptr[i + 1]
        while a < a_end or b < b_end:
            if a < a_end and (changed[indices[a]] or data[a] == 0):
                a += 1
                continue
            if b >= b_end or (a < a_end and indices[a] < ncol[b]):
                col = indices[a]
                x = np.float32(data[a])
                a += 1
            elif a >= a_end or ncol[b] < indices[a]:
                col = ncol[b]
                x = nval[b]
                b += 1
            else:
                col = ncol[b]
                x = np.float32(data[a]) + nval[b]
                a += 1
                b += 1
            if x != 0:
                out_col[t] = col
                out_val[t] = x
                t += 1
        out_ptr[i + 1] = t
    return out_ptr, out_col[:t], out_val[:t]
