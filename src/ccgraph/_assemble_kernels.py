"""Numba kernel of the run tables' assembly: each item's share of weight inside its cluster.

Imported lazily (importing this module loads numba). Compiled with ``cache=True``; the sums
run in the order ``numpy.bincount`` adds them, so the result is the same bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["inside_share"]


@numba.njit(cache=True, nogil=True)
def inside_share(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, membership: np.ndarray
) -> np.ndarray:
    """Per row: the weight of its entries in its own cluster over its total (1 if none).

    Sums are float64, entry by entry in CSR order (an entry outside adds ``0 * w``).
    """
    n = len(indptr) - 1
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        total = 0.0
        internal = 0.0
        own = membership[i]
        for k in range(indptr[i], indptr[i + 1]):
            w = data[k]
            total += np.float64(w)
            internal += np.float64(w * (membership[indices[k]] == own))
        out[i] = internal / total if total > 0 else 1.0
    return out
