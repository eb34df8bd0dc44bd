"""Numba kernel of the duplicate collapse: merge and expand the lists of identical rows.

Imported lazily (importing this module loads numba). Compiled with ``cache=True``: the first
call on a machine compiles it (a few seconds) and writes the result beside this file (or under
``NUMBA_CACHE_DIR``); later processes load it in well under a second.
"""

from __future__ import annotations

import numba
import numpy as np

# the same sorted-list insertion as the cells search: (distance, index) order
from ccgraph.graph._ivf_kernels import _insert as _push

__all__ = ["expand_groups"]


@numba.njit(parallel=True, cache=True, nogil=True)
def expand_groups(
    order: np.ndarray,
    indptr: np.ndarray,
    ind: np.ndarray,
    dist: np.ndarray,
    k: int,
    out_i: np.ndarray,
    out_d: np.ndarray,
) -> None:
    """Write every row's ``k`` nearest rows from its group's list over groups.

    ``order[indptr[g]:indptr[g + 1]]`` are the rows of group ``g`` in ascending order;
    ``ind[g]`` / ``dist[g]`` the groups listed by ``g``'s representative (``-1`` = empty). A
    group's merged list holds the ``k + 1`` best ``(distance, row)`` among its own first
    ``k + 1`` rows (distance 0) and the first ``k + 1`` rows of each listed group; each row then
    takes that list without itself, first ``k``.
    """
    u = indptr.shape[0] - 1
    ku = ind.shape[1]
    for g in numba.prange(u):
        bi = np.full(k + 1, -1, dtype=np.int64)
        bd = np.full(k + 1, np.inf, dtype=np.float32)
        lo = indptr[g]
        for p in range(lo, min(indptr[g + 1], lo + k + 1)):
            _push(bi, bd, order[p], 0.0)
        for t in range(ku):
            h = ind[g, t]
            if h < 0:
                continue
            d = dist[g, t]
            lo_h = indptr[h]
            for p in range(lo_h, min(indptr[h + 1], lo_h + k + 1)):
                if not _push(bi, bd, order[p], d):
                    break  # rows ascend within a group: the rest cannot enter either
        for p in range(lo, indptr[g + 1]):
            i = order[p]
            c = 0
            for t in range(k + 1):
                if c == k:
                    break
                if bi[t] == i:
                    continue
                out_i[i, c] = bi[t]
                out_d[i, c] = bd[t] if bi[t] >= 0 else np.inf
                c += 1
            while c < k:
                out_i[i, c] = -1
                out_d[i, c] = np.inf
                c += 1
