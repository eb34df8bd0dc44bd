"""Numba kernels of :mod:`ccgraph.cluster.describe` (imported lazily: importing loads numba).

Each kernel makes one pass where the numpy version made several over all edge entries, and
adds in the same order as :func:`numpy.bincount` over the entries in CSR order, so the sums
are bitwise the same.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["inner_edges", "top_members"]


@numba.njit(cache=True, nogil=True)
def inner_edges(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, codes: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster: stored entries and weight inside it; per item: its weight inside its cluster.

    An entry ``(u, v, w)`` is inside when ``codes[u] == codes[v]``; both directions of an
    undirected edge are stored, so the counts and weights are twice the edges'.
    """
    n = len(indptr) - 1
    count = np.zeros(k, dtype=np.int64)
    weight = np.zeros(k, dtype=np.float64)
    inner = np.zeros(n, dtype=np.float64)
    for u in range(n):
        cu = codes[u]
        for p in range(indptr[u], indptr[u + 1]):
            if codes[indices[p]] == cu:
                w = np.float64(data[p])
                count[cu] += 1
                weight[cu] += w
                inner[u] += w
    return count, weight, inner


@numba.njit(cache=True, nogil=True)
def top_members(codes: np.ndarray, score: np.ndarray, k: int, n_top: int) -> np.ndarray:
    """``[k, n_top]`` items with the largest ``score`` per cluster, best first (-1: none).

    Ties keep the earlier item first (items are visited in order and only a strictly larger
    score passes an earlier one).
    """
    out = np.full((k, n_top), -1, dtype=np.int64)
    filled = np.zeros(k, dtype=np.int64)
    for i in range(len(codes)):
        c = codes[i]
        s = score[i]
        j = filled[c]
        if j == n_top:
            if not s > score[out[c, n_top - 1]]:
                continue
            j = n_top - 1
        else:
            filled[c] += 1
        while j > 0 and s > score[out[c, j - 1]]:
            out[c, j] = out[c, j - 1]
            j -= 1
        out[c, j] = i
    return out
