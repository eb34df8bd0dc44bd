"""Numba kernel of the update's kNN lists: insert gained neighbours into sorted lists.

Imported lazily (importing this module loads numba); compiled with ``cache=True``.
"""

from __future__ import annotations

import numba
import numpy as np

# the sorted-list insertion of the cells search: (distance, index) order, k best kept
from ccgraph.graph._ivf_kernels import _insert

__all__ = ["insert_pairs"]


@numba.njit(cache=True, nogil=True)
def insert_pairs(
    out_i: np.ndarray, out_d: np.ndarray, rows: np.ndarray, cols: np.ndarray, dist: np.ndarray
) -> int:
    """Insert each ``(rows[t], cols[t], dist[t])`` into row ``rows[t]``'s list; count insertions.

    Every row of ``out_i`` / ``out_d`` is sorted by (distance, index) with ``-1`` / ``inf``
    in unfilled slots; a pair enters when it beats the row's last entry, so the result is the
    ``k`` best of the row's list and its pairs in any order of the pairs (pairs unique and
    not already listed).
    """
    n_in = 0
    for t in range(rows.shape[0]):
        if _insert(out_i[rows[t]], out_d[rows[t]], cols[t], dist[t]):
            n_in += 1
    return n_in
