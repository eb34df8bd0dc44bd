"""Numba kernel of the update's popularity warm start: Jacobi sweeps over the unknown rows.

Imported lazily (importing this module loads numba); compiled with ``cache=True``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["jacobi_rows"]


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
