"""Numba kernels of the pruned label-spreading solver (see :mod:`ccgraph.propagate._pruned`).

Each item holds at most ``L`` (tag, score) slots: ``tags[i]`` sorted ascending with ``-1``
padding at the end, ``vals[i]`` the matching scores. Kernels work on a range of row chunks
(``bounds``), are serial and release the GIL, so :func:`ccgraph.propagate._solver.run_chunks`
runs them in parallel; every row's arithmetic is in a fixed order, so results do not depend on
the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["frozen_step", "grow_step", "select_topk", "slot_values"]


@numba.njit(cache=True, nogil=True)
def _sort_slots(tags: np.ndarray, vals: np.ndarray, count: int) -> None:
    """Insertion sort of the first ``count`` slots by tag (``count`` is at most ``L``)."""
    for a in range(1, count):
        t, v = tags[a], vals[a]
        b = a - 1
        while b >= 0 and tags[b] > t:
            tags[b + 1] = tags[b]
            vals[b + 1] = vals[b]
            b -= 1
        tags[b + 1] = t
        vals[b + 1] = v


@numba.njit(cache=True, nogil=True)
def grow_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    tags: np.ndarray,
    vals: np.ndarray,
    b_indptr: np.ndarray,
    b_indices: np.ndarray,
    b_data: np.ndarray,
    n_tags: int,
    bounds: np.ndarray,
    out_tags: np.ndarray,
    out_vals: np.ndarray,
    c0: int,
    c1: int,
) -> None:
    """One pruned Jacobi sweep ``F <- top_L(M F + B)`` over the rows of chunks ``c0 .. c1``.

    Scores are summed in a dense scratch row of ``n_tags`` entries; the ``L`` largest are kept
    (ties at the threshold broken by the lower tag index).
    """
    cap = tags.shape[1]
    acc = np.zeros(n_tags, dtype=np.float64)
    seen = np.zeros(n_tags, dtype=np.bool_)
    touched = np.empty(n_tags, dtype=np.int64)
    cand = np.empty(n_tags, dtype=np.float64)
    for i in range(bounds[c0], bounds[c1]):
        count = 0
        for p in range(b_indptr[i], b_indptr[i + 1]):
            c = b_indices[p]
            if not seen[c]:
                seen[c] = True
                touched[count] = c
                count += 1
            acc[c] += b_data[p]
        for q in range(indptr[i], indptr[i + 1]):
            j = indices[q]
            w = data[q]
            for s in range(cap):
                c = tags[j, s]
                if c < 0:
                    break
                if not seen[c]:
                    seen[c] = True
                    touched[count] = c
                    count += 1
                acc[c] += w * vals[j, s]
        threshold = -1.0
        room = cap  # slots left for scores equal to the threshold
        if count > cap:
            for a in range(count):
                cand[a] = acc[touched[a]]
            threshold = np.partition(cand[:count], count - cap)[count - cap]
            for a in range(count):
                if acc[touched[a]] > threshold:
                    room -= 1
        # Above the threshold, then ties at it in the (deterministic) order they were met.
        kept = 0
        for a in range(count):
            c = touched[a]
            v = acc[c]
            if v > threshold or (v == threshold and room > 0):
                if v == threshold:
                    room -= 1
                out_tags[i, kept] = c
                out_vals[i, kept] = v
                kept += 1
        _sort_slots(out_tags[i], out_vals[i], kept)
        for s in range(kept, cap):
            out_tags[i, s] = -1
            out_vals[i, s] = 0.0
        for a in range(count):
            c = touched[a]
            acc[c] = 0.0
            seen[c] = False


@numba.njit(cache=True, nogil=True)
def frozen_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    tags: np.ndarray,
    x: np.ndarray,
    x_prev: np.ndarray,
    b: np.ndarray,
    omega: float,
    n_tags: int,
    bounds: np.ndarray,
    res_max: np.ndarray,
    c0: int,
    c1: int,
) -> None:
    """One Chebyshev sweep on the frozen slots: ``x_prev <- omega (M x + b) + (1 - omega) x_prev``.

    ``M x`` is restricted to the slots (a neighbour's score of a tag the row does not hold is
    dropped), which is the principal sub-operator of ``M`` for every tag column, so its
    eigenvalues stay in ``[-alpha, alpha]`` and the Chebyshev weights remain optimal.
    ``res_max[c]`` receives the chunk's largest ``|M x + b - x|``. Slots need not be sorted.
    """
    cap = tags.shape[1]
    y = np.empty(cap, dtype=np.float64)
    slot_of = np.full(n_tags, -1, dtype=np.int64)  # the row's slot of each tag, else -1
    for c in range(c0, c1):
        worst = 0.0
        for i in range(bounds[c], bounds[c + 1]):
            n_i = 0
            while n_i < cap and tags[i, n_i] >= 0:
                y[n_i] = b[i, n_i]
                slot_of[tags[i, n_i]] = n_i
                n_i += 1
            if n_i == 0:
                continue
            for q in range(indptr[i], indptr[i + 1]):
                j = indices[q]
                w = data[q]
                for s in range(cap):
                    tj = tags[j, s]
                    if tj < 0:
                        break
                    a = slot_of[tj]
                    if a >= 0:
                        y[a] += w * x[j, s]
            for a in range(n_i):
                slot_of[tags[i, a]] = -1
                diff = abs(y[a] - x[i, a])
                if diff > worst:
                    worst = diff
                x_prev[i, a] = omega * y[a] + (1.0 - omega) * x_prev[i, a]
        res_max[c] = worst


@numba.njit(cache=True, nogil=True)
def select_topk(
    tags: np.ndarray,
    vals: np.ndarray,
    ex_indptr: np.ndarray,
    ex_indices: np.ndarray,
    top_v: np.ndarray,
    top_t: np.ndarray,
    r0: int,
    r1: int,
) -> None:
    """Each row's ``k`` best positive slots whose tag is not among the row's excluded tags."""
    cap = tags.shape[1]
    k = top_t.shape[1]
    used = np.zeros(cap, dtype=np.bool_)
    for i in range(r0, r1):
        for s in range(cap):
            used[s] = False
            t = tags[i, s]
            if t < 0 or vals[i, s] <= 0.0:
                used[s] = True
                continue
            for p in range(ex_indptr[i], ex_indptr[i + 1]):
                if ex_indices[p] == t:
                    used[s] = True
                    break
        for r in range(k):
            best = -1
            for s in range(cap):
                if not used[s] and (best < 0 or vals[i, s] > vals[i, best]):
                    best = s
            if best < 0:
                top_t[i, r] = -1
                top_v[i, r] = 0.0
            else:
                used[best] = True
                top_t[i, r] = tags[i, best]
                top_v[i, r] = vals[i, best]


@numba.njit(cache=True, nogil=True)
def slot_values(
    tags: np.ndarray,
    b_indptr: np.ndarray,
    b_indices: np.ndarray,
    b_data: np.ndarray,
    out: np.ndarray,
    r0: int,
    r1: int,
) -> None:
    """``out[i, s] = B[i, tags[i, s]]`` (0 where ``B`` has no entry); both sides sorted by tag."""
    cap = tags.shape[1]
    for i in range(r0, r1):
        p = b_indptr[i]
        end = b_indptr[i + 1]
        for s in range(cap):
            t = tags[i, s]
            out[i, s] = 0.0
            if t < 0:
                continue
            while p < end and b_indices[p] < t:
                p += 1
            if p < end and b_indices[p] == t:
                out[i, s] = b_data[p]
