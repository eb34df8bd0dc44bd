"""Numba kernel of the update's cluster refinement: Leiden's fast local moving of free nodes.

Imported lazily (importing this module loads numba). Compiled with ``cache=True``: the first
call on a machine compiles it and writes the result beside this file (or under
``NUMBA_CACHE_DIR``); later processes load it in a fraction of a second.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["fast_local_move", "reach"]


@numba.njit(cache=True, nogil=True)
def fast_local_move(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    node_weight: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    free: np.ndarray,
    gamma: float,
    next_label: int,
    max_visits: int,
) -> tuple[int, int]:
    """Move free nodes to their best neighbouring cluster until none gains; ``labels`` in place.

    The gain of moving node ``i`` (weight ``k_i``) into cluster ``D`` is
    ``w(i, D) - gamma * k_i * K_D`` with ``K_D`` the total node weight of ``D`` without
    ``i``: ``gamma = resolution / 2m`` and ``k`` the strengths give modularity (RB), node
    weights 1 give CPM. A node moves only if the best gain beats staying by more than a
    rounding margin; an empty cluster (gain 0) is a candidate. Ties go to the smaller label.
    After a move, the node's free neighbours outside its new cluster are queued again.
    ``labels`` must be below ``next_label``; fresh labels are minted from it.

    Returns the number of moves and of node visits.
    """
    n = indptr.shape[0] - 1
    size = next_label + order.shape[0] + 1  # room for a fresh label per free node
    total = np.zeros(size, dtype=np.float64)
    for i in range(n):
        total[labels[i]] += node_weight[i]
    to_cluster = np.zeros(size, dtype=np.float64)
    seen = np.zeros(size, dtype=np.bool_)
    cand = np.empty(size, dtype=np.int64)
    cap = order.shape[0] + 1
    queue = np.empty(cap, dtype=np.int64)
    queued = np.zeros(n, dtype=np.bool_)
    head = 0
    count = 0
    for t in range(order.shape[0]):
        queue[t] = order[t]
        queued[order[t]] = True
        count += 1
    moves = 0
    visits = 0
    while count > 0 and visits < max_visits:
        i = queue[head]
        head = (head + 1) % cap
        count -= 1
        queued[i] = False
        visits += 1
        own = labels[i]
        k_i = node_weight[i]
        n_cand = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j == i:
                continue
            c = labels[j]
            if not seen[c]:
                seen[c] = True
                cand[n_cand] = c
                n_cand += 1
            to_cluster[c] += data[p]
        total[own] -= k_i
        stay = to_cluster[own] - gamma * k_i * total[own]
        best = own
        best_gain = stay
        margin = 1e-12 * (abs(stay) + k_i * gamma + 1.0)
        for t in range(n_cand):
            c = cand[t]
            if c == own:
                continue
            g = to_cluster[c] - gamma * k_i * total[c]
            if g > best_gain + margin or (best != own and g == best_gain and c < best):
                best = c
                best_gain = g
        if total[own] > 0.0 and best_gain < -margin and next_label < size:
            best = next_label  # alone beats every cluster: an empty one
            next_label += 1
        for t in range(n_cand):
            c = cand[t]
            seen[c] = False
            to_cluster[c] = 0.0
        total[best] += k_i
        if best != own:
            labels[i] = best
            moves += 1
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if free[j] and not queued[j] and labels[j] != best:
                    queue[(head + count) % cap] = j
                    queued[j] = True
                    count += 1
    return moves, visits


@numba.njit(cache=True, nogil=True)
def reach(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, mask: np.ndarray, hops: int
) -> None:
    """Add to ``mask`` (in place) every node within ``hops`` edges of a node in it.

    One hop goes from row ``i`` to each ``j`` with a nonzero ``A[i, j]`` (the pattern of
    ``A.T @ frontier``), a breadth-first search by levels.
    """
    n = mask.shape[0]
    frontier = np.flatnonzero(mask)
    nxt = np.empty(n, dtype=np.int64)
    for _ in range(hops):
        m = 0
        for i in frontier:
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if data[p] != 0 and not mask[j]:
                    mask[j] = True
                    nxt[m] = j
                    m += 1
        if m == 0:
            break
        frontier = nxt[:m].copy()
