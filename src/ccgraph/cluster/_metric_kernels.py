"""Numba kernel of the partition metrics: cluster sums in one pass over the CSR adjacency.

Imported lazily (importing this module loads numba); compiled with ``cache=True``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["cluster_sums"]


@numba.njit(cache=True, nogil=True)
def cluster_sums(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, membership: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Twice the internal weight and the volume of each cluster ``0 .. k-1``, in float64.

    The sums run over the stored entries in CSR order, and the volumes over the nodes in
    order, each weight added as a float64: the arithmetic of ``np.bincount`` over the COO
    entries (internal) and over :func:`ccgraph.cluster._common.strength64` (volume).
    """
    n = indptr.shape[0] - 1
    internal2 = np.zeros(k, dtype=np.float64)
    volume = np.zeros(k, dtype=np.float64)
    strength = np.zeros(n, dtype=np.float64)
    for i in range(n):
        ci = membership[i]
        s = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            w = np.float64(data[p])
            s += w
            if membership[indices[p]] == ci:
                internal2[ci] += w
        strength[i] = s
    for i in range(n):
        volume[membership[i]] += strength[i]
    return internal2, volume
