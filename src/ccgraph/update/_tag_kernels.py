"""Numba kernels of the update's tag spreading: CSR lookups, the flat region sweep, top-k.

Imported lazily (importing this module loads numba). Compiled with ``cache=True``. Each kernel
does the floating-point operations of the numpy/scipy code it replaces in the same order
(no ``fastmath``), so the results are bit for bit the same.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "csr_find",
    "flat_sweep",
    "mass_sweeps",
    "scaled_entries",
    "seed_sweeps",
    "split_rows",
    "top_k_sorted",
]


@numba.njit(cache=True, nogil=True)
def csr_find(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Position in ``indices`` of each (``rows[i]``, ``cols[i]``) entry of a CSR, -1 if absent.

    Each row's ``indices`` must be sorted and distinct (canonical CSR): a binary search per
    query.
    """
    out = np.empty(len(rows), dtype=np.int64)
    for i in range(len(rows)):
        lo = indptr[rows[i]]
        hi = indptr[rows[i] + 1]
        c = cols[i]
        while lo < hi:
            mid = (lo + hi) >> 1
            if indices[mid] < c:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo if lo < indptr[rows[i] + 1] and indices[lo] == c else -1
    return out


@numba.njit(cache=True, nogil=True)
def scaled_entries(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, left: np.ndarray, right: np.ndarray
) -> np.ndarray:
    """The entries of ``diag(left) @ A @ diag(right)`` for a CSR ``A``, in ``A``'s order.

    Each is ``(left[i] * a_ij) * right[j]``, as numpy's ``(left[rows] * data) * right[indices]``.
    """
    out = np.empty(len(data), dtype=np.float64)
    for i in range(len(indptr) - 1):
        li = left[i]
        for p in range(indptr[i], indptr[i + 1]):
            out[p] = (li * data[p]) * right[indices[p]]
    return out


@numba.njit(cache=True, nogil=True)
def mass_sweeps(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    b: np.ndarray,
    alpha: float,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, int, bool]:
    """Solve ``x = M x + b`` for one column from ``x = b``: the sweeps of ``propagate._solver``.

    Chebyshev semi-iteration with the weights of ``_solver._omegas``, each row summed as
    ``propagate._kernels._cheb_narrow`` sums it (four neighbours per pass), stopped when no
    entry of a plain sweep moves by ``tol`` or more (NaN residuals ignored, as there).
    Returns ``x``, the sweeps and whether it converged.
    """
    n = len(b)
    x = b.copy()
    x_prev = b.copy()
    s2 = alpha * alpha
    omega = 1.0
    sweeps = 0
    done = False
    while not done and sweeps < max_iter:
        if sweeps == 1:
            omega = 1.0 / (1.0 - s2 / 2.0)
        elif sweeps > 1:
            omega = 1.0 / (1.0 - s2 * omega / 4.0)
        sweeps += 1
        worst = 0.0
        for i in range(n):
            a0 = 0.0
            p = indptr[i]
            end = indptr[i + 1]
            while p + 3 < end:
                j0, j1, j2, j3 = indices[p], indices[p + 1], indices[p + 2], indices[p + 3]
                w0, w1, w2, w3 = data[p], data[p + 1], data[p + 2], data[p + 3]
                a0 += (w0 * x[j0] + w1 * x[j1]) + (w2 * x[j2] + w3 * x[j3])
                p += 4
            while p < end:
                a0 += data[p] * x[indices[p]]
                p += 1
            a0 += b[i]
            r0 = abs(a0 - x[i])
            if r0 > worst:
                worst = r0
            x_prev[i] = omega * a0 + (1.0 - omega) * x_prev[i]
        x, x_prev = x_prev, x
        done = worst < tol
    return x, sweeps, done


@numba.njit(cache=True, nogil=True)
def split_rows(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray, to_r: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``rows`` of a CSR split by column: into ``rows`` (``to_r[j] >= 0``) or not.

    Returns ``(indptr, indices, data)`` of the part outside (columns as they are) and of the
    part inside (columns mapped by ``to_r``), each entry in its row's order.
    """
    n = len(rows)
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    in_ptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        k_in = 0
        for p in range(indptr[rows[i]], indptr[rows[i] + 1]):
            if to_r[indices[p]] >= 0:
                k_in += 1
        in_ptr[i + 1] = in_ptr[i] + k_in
        out_ptr[i + 1] = out_ptr[i] + (indptr[rows[i] + 1] - indptr[rows[i]] - k_in)
    out_idx = np.empty(out_ptr[n], dtype=np.int64)
    out_val = np.empty(out_ptr[n], dtype=data.dtype)
    in_idx = np.empty(in_ptr[n], dtype=np.int64)
    in_val = np.empty(in_ptr[n], dtype=data.dtype)
    for i in range(n):
        a = out_ptr[i]
        b = in_ptr[i]
        for p in range(indptr[rows[i]], indptr[rows[i] + 1]):
            j = indices[p]
            if to_r[j] >= 0:
                in_idx[b] = to_r[j]
                in_val[b] = data[p]
                b += 1
            else:
                out_idx[a] = j
                out_val[a] = data[p]
                a += 1
    return out_ptr, out_idx, out_val, in_ptr, in_idx, in_val


@numba.njit(cache=True, nogil=True)
def _find(indptr: np.ndarray, indices: np.ndarray, row: int, col: int) -> int:
    """:func:`csr_find` of one entry."""
    lo = indptr[row]
    end = indptr[row + 1]
    hi = end
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < col:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < end and indices[lo] == col else -1


@numba.njit(cache=True, nogil=True)
def seed_sweeps(
    s_indptr: np.ndarray,
    s_indices: np.ndarray,
    s_data: np.ndarray,
    y_indptr: np.ndarray,
    y_indices: np.ndarray,
    y_data: np.ndarray,
    k_indptr: np.ndarray,
    k_indices: np.ndarray,
    k_data: np.ndarray,
    alpha: float,
    sweeps: int,
) -> np.ndarray:
    """``F`` at the seed entries ``e = (u, t)`` of ``Y`` after ``sweeps`` sweeps.

    ``F_e = (1 - alpha) Y_e + alpha (K_e + sum_e' M_ee' F_e')`` from ``F_e = (1 - alpha) Y_e``,
    with ``K_e = sum_v S_uv known_vt`` and ``M_ee' = S_uv`` for the seed entries ``e' = (v, t)``
    (``ccgraph.update.tags._seed_values``). All three CSRs are canonical; a row's sums run
    over ``S``'s row in column order, as the weighted ``bincount`` and the sparse product did.
    """
    n_e = len(y_data)
    fixed = np.zeros(n_e)
    m_ptr = np.zeros(n_e + 1, dtype=np.int64)
    bound = 0
    for u in range(len(y_indptr) - 1):
        bound += (y_indptr[u + 1] - y_indptr[u]) * (s_indptr[u + 1] - s_indptr[u])
    m_col = np.empty(bound, dtype=np.int64)
    m_val = np.empty(bound, dtype=np.float64)
    n_m = 0
    for u in range(len(y_indptr) - 1):
        for e in range(y_indptr[u], y_indptr[u + 1]):
            t = y_indices[e]
            acc = 0.0
            for p in range(s_indptr[u], s_indptr[u + 1]):
                v = s_indices[p]
                a = _find(k_indptr, k_indices, v, t)
                if a >= 0:
                    acc += s_data[p] * k_data[a]
                b = _find(y_indptr, y_indices, v, t)
                if b >= 0:
                    m_col[n_m] = b
                    m_val[n_m] = s_data[p]
                    n_m += 1
            fixed[e] = acc
            m_ptr[e + 1] = n_m
    keep = 1.0 - alpha
    est = np.empty(n_e)
    for e in range(n_e):
        est[e] = keep * y_data[e]
    nxt = np.empty(n_e)
    for _ in range(sweeps):
        for e in range(n_e):
            acc = 0.0
            for q in range(m_ptr[e], m_ptr[e + 1]):
                acc += m_val[q] * est[m_col[q]]
            nxt[e] = keep * y_data[e] + alpha * (fixed[e] + acc)
        est, nxt = nxt, est
    return est


@numba.njit(cache=True, nogil=True)
def flat_sweep(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    start: np.ndarray,
    width: np.ndarray,
    alpha: float,
    b: np.ndarray,
    f: np.ndarray,
    prev: np.ndarray,
    omega: float,
    out: np.ndarray,
) -> float:
    """One Chebyshev sweep of ``F = alpha (S (x) I) F + b`` on the flat layout.

    Returns the largest change a plain sweep makes (NaN if one is NaN). Row ``u`` of ``S``
    owns the cells ``start[u] .. start[u] + width[u]`` of ``F``; a neighbour ``v`` (same
    component) has as many cells, the same tags in the same order. For each cell,
    ``y = alpha * sum_v S_uv F_v + b`` (summed over ``v`` in CSR order, as a sparse product
    does) and ``out = omega * y + (1 - omega) * prev``.
    """
    keep = 1.0 - omega
    change = 0.0
    acc = np.empty(max(width.max(), 1) if len(width) else 1, dtype=np.float64)
    for u in range(len(width)):
        su = start[u]
        wu = width[u]
        acc[:wu] = 0.0
        for k in range(indptr[u], indptr[u + 1]):  # each cell sums its neighbours in order
            sv = start[indices[k]]
            a = data[k]
            for j in range(wu):
                acc[j] += a * f[sv + j]
        for j in range(wu):
            y = alpha * acc[j] + b[su + j]
            d = abs(y - f[su + j])
            if d > change or d != d:  # NaN propagates, as in numpy's max
                change = d
            out[su + j] = omega * y + keep * prev[su + j]
    return change


@numba.njit(cache=True, nogil=True)
def top_k_sorted(rows: np.ndarray, score: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``top_k`` entries by score, ties to the earlier entry (``rows`` ascending).

    Returns the entries' positions, row by row in rank order, and their ranks (1 = best):
    what a stable sort by (row, -score) keeps of each row's first ``top_k``. Scores must not
    be NaN.
    """
    m = len(rows)
    pick = np.empty(m, dtype=np.int64)
    rank = np.empty(m, dtype=np.int64)
    buf = np.empty(max(top_k, 1), dtype=np.int64)
    n_out = 0
    a = 0
    while a < m:
        e = a
        while e < m and rows[e] == rows[a]:
            e += 1
        n_buf = 0
        for i in range(a, e):
            s = score[i]
            p = n_buf  # after every kept entry scoring at least s
            while p > 0 and score[buf[p - 1]] < s:
                p -= 1
            if p >= top_k:
                continue
            last = min(n_buf, top_k - 1)
            for q in range(last, p, -1):
                buf[q] = buf[q - 1]
            buf[p] = i
            if n_buf < top_k:
                n_buf += 1
        for q in range(n_buf):
            pick[n_out] = buf[q]
            rank[n_out] = q + 1
            n_out += 1
        a = e
    return pick[:n_out], rank[:n_out]
