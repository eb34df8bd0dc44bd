"""Numba kernels of the update's popularity: the warm start's Jacobi sweeps, the CG solve.

Imported lazily (importing this module loads numba); compiled with ``cache=True``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["jacobi_rows", "residual", "sgs_cg", "split_rows"]


@numba.njit(cache=True, nogil=True)
def jacobi_rows(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    rows: np.ndarray,
    scale: np.ndarray,
    x: np.ndarray,
    guess: np.ndarray,
    alpha: float,
    sweeps: int,
) -> None:
    """``sweeps`` times ``guess[rows] = (1 - alpha) x[rows] + alpha (diag(scale) W[rows]) guess``.

    ``W`` is the CSR ``(indptr, indices, data)`` with sorted indices and no duplicates;
    ``guess`` (float64, ``[n, m]``) is updated in place, every sweep from the previous
    sweep's values (Jacobi). The arithmetic is that of
    ``sp.diags(scale) @ W[rows]`` (each entry ``scale_r * w``, zero products dropped, a
    row's entries in reverse column order, as scipy's sparse product lists them) times
    ``guess`` (each row summed from 0 in that order), so the bits are the same.
    """
    m = guess.shape[1]
    nr = rows.shape[0]
    # the entries of diags(scale) @ W[rows], in the product's order
    total = 0
    for i in range(nr):
        total += indptr[rows[i] + 1] - indptr[rows[i]]
    vals = np.empty(total, dtype=np.float64)
    cols = np.empty(total, dtype=np.int64)
    ptr = np.zeros(nr + 1, dtype=np.int64)
    t = 0
    for i in range(nr):
        r = rows[i]
        s = scale[i]
        for jj in range(indptr[r + 1] - 1, indptr[r] - 1, -1):
            v = s * np.float64(data[jj])
            if v != 0.0:  # the sparse product drops zero entries
                vals[t] = v
                cols[t] = indices[jj]
                t += 1
        ptr[i + 1] = t
    new = np.empty((nr, m), dtype=np.float64)
    keep = 1.0 - alpha
    for _ in range(sweeps):
        if m == 2:  # popularity's numerator and denominator: the sums stay in registers
            for i in range(nr):
                a0 = 0.0
                a1 = 0.0
                for t in range(ptr[i], ptr[i + 1]):
                    v = vals[t]
                    j = cols[t]
                    a0 += v * guess[j, 0]
                    a1 += v * guess[j, 1]
                r = rows[i]
                new[i, 0] = keep * x[r, 0] + alpha * a0
                new[i, 1] = keep * x[r, 1] + alpha * a1
        else:
            for i in range(nr):
                r = rows[i]
                for c in range(m):
                    acc = 0.0
                    for t in range(ptr[i], ptr[i + 1]):
                        acc += vals[t] * guess[cols[t], c]
                    new[i, c] = keep * x[r, c] + alpha * acc
        for i in range(nr):
            r = rows[i]
            for c in range(m):
                guess[r, c] = new[i, c]


@numba.njit(cache=True, nogil=True)
def split_rows(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Per row, the first entry above the diagonal of a CSR with sorted indices.

    ``[-1]`` if a row has a diagonal entry or unsorted indices (:func:`sgs_cg` does not apply).
    """
    n = indptr.shape[0] - 1
    mid = np.empty(n, dtype=np.int64)
    for i in range(n):
        k = indptr[i + 1]
        prev = -1
        for t in range(indptr[i], indptr[i + 1]):
            j = indices[t]
            if j == i or j <= prev:
                return np.full(1, -1, dtype=np.int64)
            prev = j
            if j > i and k == indptr[i + 1]:
                k = t
        mid[i] = k
    return mid


@numba.njit(cache=True, nogil=True)
def residual(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    b: np.ndarray,
    z: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    l1: np.ndarray,
) -> None:
    """``r = b - (I - M) z`` and ``l1[c] = sum_i w_i |r_ic|`` (``M`` the CSR), in place."""
    n, m = z.shape
    for c in range(m):
        l1[c] = 0.0
    for i in range(n):
        for c in range(m):
            acc = 0.0
            for t in range(indptr[i], indptr[i + 1]):
                acc += data[t] * z[indices[t], c]
            v = b[i, c] - z[i, c] + acc
            r[i, c] = v
            l1[c] += w[i] * abs(v)


@numba.njit(cache=True, nogil=True)
def sgs_cg(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    mid: np.ndarray,
    r0: np.ndarray,
    w: np.ndarray,
    thresholds: np.ndarray,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Correction ``e`` with ``(I - M) e ~ r0`` by Gauss-Seidel-preconditioned CG.

    Conjugate gradients preconditioned by symmetric Gauss-Seidel, ``P = (I - L)(I - U)`` with
    ``M = L + U`` (zero diagonal, ``U = L^T``), in Eisenstat's form: one pass over ``M`` (a
    backward substitution over ``U``, a forward one over ``L``) per iteration.

    CG runs on ``A' = (I - L)^{-1} (I - M) (I - U)^{-1}`` with ``e = (I - U)^{-1} e'``;
    the residual of ``e`` is ``(I - L) r'``, so ``sum_j |r'_j| (w_j + sum_{i > j} w_i m_ij)``
    bounds its weighted L1 norm. A column stops once that bound is below its threshold (or
    after ``max_iter`` iterations; an infinite threshold: no correction). Two columns
    (popularity's numerator and denominator), the sums in registers. Returns ``e`` and the
    iterations per column.
    """
    n = r0.shape[0]
    iters = np.zeros(2, dtype=np.int64)
    cw = np.empty(n)
    for j in range(n):
        s = w[j]
        for t in range(mid[j], indptr[j + 1]):
            s += data[t] * w[indices[t]]
        cw[j] = s
    rh = np.empty((n, 2))
    for i in range(n):
        s0 = r0[i, 0]
        s1 = r0[i, 1]
        for t in range(indptr[i], mid[i]):
            v = data[t]
            j = indices[t]
            s0 += v * rh[j, 0]
            s1 += v * rh[j, 1]
        rh[i, 0] = s0
        rh[i, 1] = s1
    rho0 = rho1 = b0 = b1 = 0.0
    for i in range(n):
        rho0 += rh[i, 0] * rh[i, 0]
        rho1 += rh[i, 1] * rh[i, 1]
        b0 += abs(rh[i, 0]) * cw[i]
        b1 += abs(rh[i, 1]) * cw[i]
    act0 = b0 >= thresholds[0] and rho0 > 0.0
    act1 = b1 >= thresholds[1] and rho1 > 0.0
    eh = np.zeros((n, 2))
    p = np.zeros((n, 2))
    tq = np.empty((n, 2))
    d = np.empty((n, 2))
    beta0 = beta1 = 0.0
    it = 0
    while (act0 or act1) and it < max_iter:
        it += 1
        for i in range(n - 1, -1, -1):
            p0 = rh[i, 0] + beta0 * p[i, 0]
            p1 = rh[i, 1] + beta1 * p[i, 1]
            p[i, 0] = p0
            p[i, 1] = p1
            for t in range(mid[i], indptr[i + 1]):
                v = data[t]
                j = indices[t]
                p0 += v * tq[j, 0]
                p1 += v * tq[j, 1]
            tq[i, 0] = p0
            tq[i, 1] = p1
        pq0 = pq1 = 0.0
        for i in range(n):
            s0 = p[i, 0] - tq[i, 0]
            s1 = p[i, 1] - tq[i, 1]
            for t in range(indptr[i], mid[i]):
                v = data[t]
                j = indices[t]
                s0 += v * d[j, 0]
                s1 += v * d[j, 1]
            d[i, 0] = s0
            d[i, 1] = s1
            q0 = tq[i, 0] + s0
            q1 = tq[i, 1] + s1
            tq[i, 0] = q0
            tq[i, 1] = q1
            pq0 += p[i, 0] * q0
            pq1 += p[i, 1] * q1
        a0 = rho0 / pq0 if act0 and pq0 > 0.0 else 0.0
        a1 = rho1 / pq1 if act1 and pq1 > 0.0 else 0.0
        n0 = n1 = b0 = b1 = 0.0
        for i in range(n):
            eh[i, 0] += a0 * p[i, 0]
            eh[i, 1] += a1 * p[i, 1]
            v0 = rh[i, 0] - a0 * tq[i, 0]
            v1 = rh[i, 1] - a1 * tq[i, 1]
            rh[i, 0] = v0
            rh[i, 1] = v1
            n0 += v0 * v0
            n1 += v1 * v1
            b0 += abs(v0) * cw[i]
            b1 += abs(v1) * cw[i]
        beta0 = beta1 = 0.0
        if act0:
            iters[0] = it
            beta0 = n0 / rho0
            rho0 = n0
            act0 = not (b0 < thresholds[0] or rho0 <= 0.0 or a0 == 0.0)
            if not act0:
                beta0 = 0.0
        if act1:
            iters[1] = it
            beta1 = n1 / rho1
            rho1 = n1
            act1 = not (b1 < thresholds[1] or rho1 <= 0.0 or a1 == 0.0)
            if not act1:
                beta1 = 0.0
    e = np.empty((n, 2))
    for i in range(n - 1, -1, -1):
        s0 = eh[i, 0]
        s1 = eh[i, 1]
        for t in range(mid[i], indptr[i + 1]):
            v = data[t]
            j = indices[t]
            s0 += v * e[j, 0]
            s1 += v * e[j, 1]
        e[i, 0] = s0
        e[i, 1] = s1
    return e, iters
