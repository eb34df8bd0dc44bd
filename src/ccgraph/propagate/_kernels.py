"""Numba kernels for the propagation solvers (imported lazily: importing this module loads numba).

All kernels are compiled with ``cache=True`` (on-disk cache beside this file) and
``parallel=True`` over contiguous chunks of rows. Per-column arithmetic never depends on which
other columns share the block, so a column's result is bitwise the same whatever the block width.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["cheb_step_dense", "cheb_step_sparse", "topk_merge"]


@numba.njit(parallel=True, cache=True, nogil=True)
def cheb_step_sparse(  # noqa: PLR0913
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    x: np.ndarray,
    x_prev: np.ndarray,
    b_indptr: np.ndarray,
    b_indices: np.ndarray,
    b_data: np.ndarray,
    omega: float,
    weights: np.ndarray,
    bounds: np.ndarray,
    res_max: np.ndarray,
    res_l1: np.ndarray,
) -> None:
    """One sweep ``J = M x + b`` then ``x_prev <- omega J + (1 - omega) x_prev`` (in place).

    ``M`` is the CSR (``indptr, indices, data``) already scaled by ``alpha``; ``b`` is a CSR
    block of the right-hand side. Per chunk of rows (``bounds``) and column the kernel records
    the max and the ``weights``-weighted L1 norm of the residual ``J - x``.
    """
    m = x.shape[1]
    n_chunks = bounds.shape[0] - 1
    for c in numba.prange(n_chunks):
        acc = np.empty(m, dtype=x.dtype)
        rmax = res_max[c]
        rl1 = res_l1[c]
        for i in range(bounds[c], bounds[c + 1]):
            for t in range(m):
                acc[t] = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                w = data[p]
                xj = x[j]
                for t in range(m):
                    acc[t] += w * xj[t]
            for q in range(b_indptr[i], b_indptr[i + 1]):
                acc[b_indices[q]] += b_data[q]
            wi = weights[i]
            xi = x[i]
            xpi = x_prev[i]
            for t in range(m):
                r = abs(acc[t] - xi[t])
                if r > rmax[t]:
                    rmax[t] = r
                rl1[t] += wi * r
                xpi[t] = omega * acc[t] + (1.0 - omega) * xpi[t]


@numba.njit(parallel=True, cache=True, nogil=True)
def cheb_step_dense(  # noqa: PLR0913
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    x: np.ndarray,
    x_prev: np.ndarray,
    b: np.ndarray,
    omega: float,
    weights: np.ndarray,
    bounds: np.ndarray,
    res_max: np.ndarray,
    res_l1: np.ndarray,
) -> None:
    """As :func:`cheb_step_sparse` with a dense right-hand side block ``b``."""
    m = x.shape[1]
    n_chunks = bounds.shape[0] - 1
    for c in numba.prange(n_chunks):
        acc = np.empty(m, dtype=x.dtype)
        rmax = res_max[c]
        rl1 = res_l1[c]
        for i in range(bounds[c], bounds[c + 1]):
            bi = b[i]
            for t in range(m):
                acc[t] = bi[t]
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                w = data[p]
                xj = x[j]
                for t in range(m):
                    acc[t] += w * xj[t]
            wi = weights[i]
            xi = x[i]
            xpi = x_prev[i]
            for t in range(m):
                r = abs(acc[t] - xi[t])
                if r > rmax[t]:
                    rmax[t] = r
                rl1[t] += wi * r
                xpi[t] = omega * acc[t] + (1.0 - omega) * xpi[t]


@numba.njit(parallel=True, cache=True, nogil=True)
def topk_merge(
    x: np.ndarray,
    cols: np.ndarray,
    seed_indptr: np.ndarray,
    seed_indices: np.ndarray,
    top_v: np.ndarray,
    top_t: np.ndarray,
) -> None:
    """Merge the positive entries of block ``x`` (global tag ids ``cols``) into running top-k.

    Rows of ``top_v``/``top_t`` are kept sorted by (value descending, tag id ascending); empty
    slots have tag ``-1``. Entries that are the row's own seed tags are skipped.
    """
    n, m = x.shape
    k = top_v.shape[1]
    for i in numba.prange(n):
        tv = top_v[i]
        tt = top_t[i]
        xi = x[i]
        for c in range(m):
            v = xi[c]
            if not v > 0.0:
                continue
            t = cols[c]
            lt = tt[k - 1]
            if lt >= 0 and (v < tv[k - 1] or (v == tv[k - 1] and t > lt)):
                continue
            seed = False
            for q in range(seed_indptr[i], seed_indptr[i + 1]):
                if seed_indices[q] == t:
                    seed = True
                    break
            if seed:
                continue
            pos = k - 1
            while pos > 0:
                pt = tt[pos - 1]
                if pt >= 0 and (tv[pos - 1] > v or (tv[pos - 1] == v and pt < t)):
                    break
                tv[pos] = tv[pos - 1]
                tt[pos] = pt
                pos -= 1
            tv[pos] = v
            tt[pos] = t
