"""Numba kernels for the propagation solvers (imported lazily: importing this module loads numba).

All kernels are serial, compiled with ``cache=True`` (on-disk cache beside this file) and
release the GIL: :func:`ccgraph.propagate._solver.run_chunks` runs them on a thread pool over
contiguous chunks of rows, handing chunks out dynamically (robust on a shared, loaded machine).
Per-column arithmetic never depends on which other columns share the block, so a column's
result is bitwise the same whatever the block width.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["cheb_step_dense", "cheb_step_sparse", "normalized_entries", "topk_merge"]


@numba.njit(cache=True, nogil=True, inline="always")
def _gather(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    x: np.ndarray,
    i: int,
    acc: np.ndarray,
) -> None:
    """``acc += sum_p data[p] * x[indices[p]]`` over row ``i``, four neighbours per pass.

    The order of the additions is fixed per row, so every column gets the same arithmetic.
    """
    m = acc.shape[0]
    p = indptr[i]
    end = indptr[i + 1]
    while p + 3 < end:
        x0, x1, x2, x3 = x[indices[p]], x[indices[p + 1]], x[indices[p + 2]], x[indices[p + 3]]
        w0, w1, w2, w3 = data[p], data[p + 1], data[p + 2], data[p + 3]
        for t in range(m):
            acc[t] += (w0 * x0[t] + w1 * x1[t]) + (w2 * x2[t] + w3 * x3[t])
        p += 4
    while p < end:
        xj = x[indices[p]]
        w = data[p]
        for t in range(m):
            acc[t] += w * xj[t]
        p += 1


@numba.njit(cache=True, nogil=True, inline="always")
def _relax(
    acc: np.ndarray,
    xi: np.ndarray,
    xpi: np.ndarray,
    wi: float,
    omega: float,
    rmax: np.ndarray,
    rl1: np.ndarray,
) -> None:
    """Record row ``i``'s residual ``acc - x_i`` (max, ``wi``-weighted L1) and relax ``x_prev``.

    ``x_prev_i <- omega acc + (1 - omega) x_prev_i``, column by column.
    """
    for t in range(acc.shape[0]):
        r = abs(acc[t] - xi[t])
        if r > rmax[t]:
            rmax[t] = r
        rl1[t] += wi * r
        xpi[t] = omega * acc[t] + (1.0 - omega) * xpi[t]


@numba.njit(cache=True, nogil=True)
def cheb_step_sparse(
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
    c0: int,
    c1: int,
) -> None:
    """One sweep ``J = M x + b`` then ``x_prev <- omega J + (1 - omega) x_prev`` (in place).

    ``M`` is the CSR (``indptr, indices, data``) already scaled by ``alpha``; ``b`` is a CSR
    block of the right-hand side. Per chunk of rows (``bounds``) and column the kernel records
    the max and the ``weights``-weighted L1 norm of the residual ``J - x``.
    """
    m = x.shape[1]
    for c in range(c0, c1):
        acc = np.empty(m, dtype=x.dtype)
        rmax = res_max[c]
        rl1 = res_l1[c]
        for i in range(bounds[c], bounds[c + 1]):
            for t in range(m):
                acc[t] = 0.0
            _gather(indptr, indices, data, x, i, acc)
            for q in range(b_indptr[i], b_indptr[i + 1]):
                acc[b_indices[q]] += b_data[q]
            _relax(acc, x[i], x_prev[i], weights[i], omega, rmax, rl1)


@numba.njit(cache=True, nogil=True)
def cheb_step_dense(
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
    c0: int,
    c1: int,
) -> None:
    """As :func:`cheb_step_sparse` with a dense right-hand side block ``b``.

    Float64 blocks of one or two columns (popularity's numerator and denominator) take a
    loop that keeps the sums in registers: the same operations in the same order, so the same
    bits. (Its float64 registers would not round as a float32 block's sums do.)
    """
    m = x.shape[1]
    if (m == 1 or m == 2) and x.itemsize == 8:
        _cheb_narrow(
            indptr, indices, data, x, x_prev, b, omega, weights, bounds, res_max, res_l1, c0, c1
        )
        return
    for c in range(c0, c1):
        acc = np.empty(m, dtype=x.dtype)
        rmax = res_max[c]
        rl1 = res_l1[c]
        for i in range(bounds[c], bounds[c + 1]):
            bi = b[i]
            for t in range(m):
                acc[t] = 0.0
            _gather(indptr, indices, data, x, i, acc)
            for t in range(m):
                acc[t] += bi[t]
            _relax(acc, x[i], x_prev[i], weights[i], omega, rmax, rl1)


@numba.njit(cache=True, nogil=True)
def _cheb_narrow(
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
    c0: int,
    c1: int,
) -> None:
    """:func:`cheb_step_dense` for one or two columns, term for term.

    In a one-column block, column 1 is never read or written (``c_hi`` aliases column 0).
    """
    two = x.shape[1] == 2
    c_hi = 1 if two else 0
    for c in range(c0, c1):
        m0 = res_max[c, 0]
        m1 = res_max[c, c_hi]
        l0 = res_l1[c, 0]
        l1 = res_l1[c, c_hi]
        for i in range(bounds[c], bounds[c + 1]):
            a0 = 0.0
            a1 = 0.0
            p = indptr[i]
            end = indptr[i + 1]
            while p + 3 < end:
                j0, j1, j2, j3 = indices[p], indices[p + 1], indices[p + 2], indices[p + 3]
                w0, w1, w2, w3 = data[p], data[p + 1], data[p + 2], data[p + 3]
                a0 += (w0 * x[j0, 0] + w1 * x[j1, 0]) + (w2 * x[j2, 0] + w3 * x[j3, 0])
                if two:
                    a1 += (w0 * x[j0, 1] + w1 * x[j1, 1]) + (w2 * x[j2, 1] + w3 * x[j3, 1])
                p += 4
            while p < end:
                j = indices[p]
                w = data[p]
                a0 += w * x[j, 0]
                if two:
                    a1 += w * x[j, 1]
                p += 1
            wi = weights[i]
            a0 += b[i, 0]
            r0 = abs(a0 - x[i, 0])
            if r0 > m0:
                m0 = r0
            l0 += wi * r0
            x_prev[i, 0] = omega * a0 + (1.0 - omega) * x_prev[i, 0]
            if two:
                a1 += b[i, 1]
                r1 = abs(a1 - x[i, 1])
                if r1 > m1:
                    m1 = r1
                l1 += wi * r1
                x_prev[i, 1] = omega * a1 + (1.0 - omega) * x_prev[i, 1]
        res_max[c, 0] = m0
        res_l1[c, 0] = l0
        if two:
            res_max[c, 1] = m1
            res_l1[c, 1] = l1


@numba.njit(cache=True, nogil=True)
def topk_merge(
    x: np.ndarray,
    cols: np.ndarray,
    seed_indptr: np.ndarray,
    seed_indices: np.ndarray,
    top_v: np.ndarray,
    top_t: np.ndarray,
    r0: int,
    r1: int,
) -> None:
    """Merge the positive entries of rows ``r0:r1`` of block ``x`` (tag ids ``cols``) into top-k.

    Rows of ``top_v``/``top_t`` are kept sorted by (value descending, tag id ascending); empty
    slots have tag ``-1``. Entries that are the row's own seed tags are skipped.
    """
    m = x.shape[1]
    k = top_v.shape[1]
    for i in range(r0, r1):
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


@numba.njit(cache=True, nogil=True)
def push(
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    seed_idx: np.ndarray,
    seed_w: np.ndarray,
    alpha: float,
    epsilon: float,
    p: np.ndarray,
    r: np.ndarray,
    deg: np.ndarray,
    inq: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Andersen-Chung-Lang push from a restart vector; returns touched nodes and their ``p``.

    FIFO queue of nodes whose residual is at least ``epsilon * d_u`` (``epsilon`` for isolated
    nodes, whose walk jumps back to the seeds). ``p, r`` (zeros), ``deg`` (-1) and ``inq``
    (False) are ``n``-sized workspaces that are restored before returning, so a query costs
    only its own work; degrees are summed only for the nodes reached.
    """
    queue = np.empty(max(64, 4 * seed_idx.shape[0]), dtype=np.int64)
    seen = np.empty(256, dtype=np.int64)
    n_seen = 0
    head = 0
    tail = 0
    for s in range(seed_idx.shape[0]):
        u = seed_idx[s]
        if r[u] == 0.0 and deg[u] < 0.0:
            if n_seen == seen.shape[0]:
                seen = np.concatenate((seen, np.empty_like(seen)))
            seen[n_seen] = u
            n_seen += 1
        _degree(indptr, weights, u, deg)
        r[u] += seed_w[s]
        if not inq[u]:
            queue[tail] = u
            tail += 1
            inq[u] = True
    while head < tail:
        u = queue[head]
        head += 1
        inq[u] = False
        du = deg[u]
        ru = r[u]
        if ru < (epsilon * du if du > 0 else epsilon):
            continue
        p[u] += (1.0 - alpha) * ru
        r[u] = 0.0
        lo = indptr[u]
        n_out = indptr[u + 1] - lo if du > 0 else seed_idx.shape[0]
        for q in range(n_out):
            if du > 0:
                v = np.int64(indices[lo + q])
                add = alpha * ru * weights[lo + q] / du
            else:
                v = np.int64(seed_idx[q])
                add = alpha * ru * seed_w[q]
            if deg[v] < 0.0:  # first time reached
                if n_seen == seen.shape[0]:
                    seen = np.concatenate((seen, np.empty_like(seen)))
                seen[n_seen] = v
                n_seen += 1
                _degree(indptr, weights, v, deg)
            r[v] += add
            if not inq[v]:
                dv = deg[v]
                if r[v] >= (epsilon * dv if dv > 0 else epsilon):
                    if tail == queue.shape[0]:  # compact, then grow if still full
                        queue[: tail - head] = queue[head:tail]
                        tail -= head
                        head = 0
                        if tail == queue.shape[0]:
                            queue = np.concatenate((queue, np.empty_like(queue)))
                    queue[tail] = v
                    tail += 1
                    inq[v] = True
    n_out = 0
    for k in range(n_seen):
        if p[seen[k]] > 0.0:
            n_out += 1
    nodes = np.empty(n_out, dtype=np.int64)
    vals = np.empty(n_out, dtype=np.float64)
    j = 0
    for k in range(n_seen):
        v = seen[k]
        if p[v] > 0.0:
            nodes[j] = v
            vals[j] = p[v]
            j += 1
        p[v] = 0.0
        r[v] = 0.0
        deg[v] = -1.0
    return nodes, vals


@numba.njit(cache=True, nogil=True, inline="always")
def _degree(indptr: np.ndarray, weights: np.ndarray, u: np.int64, cache: np.ndarray) -> float:
    d = cache[u]
    if d < 0.0:
        d = 0.0
        for q in range(indptr[u], indptr[u + 1]):
            d += weights[q]
        cache[u] = d
    return d


@numba.njit(cache=True, nogil=True)
def normalized_entries(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, alpha: float, inv_sqrt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of ``alpha * D^-1/2 W D^-1/2`` without its zero entries (int64 indptr, int32 indices).

    Each entry is ``((alpha * inv_sqrt[i]) * w_ij) * inv_sqrt[j]`` in float64, the products of
    :func:`ccgraph.propagate._graph.build_operator` in their order; the rows keep ``W``'s order.
    """
    n = indptr.shape[0] - 1
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    out_idx = np.empty(indptr[n], dtype=np.int32)
    out_val = np.empty(indptr[n], dtype=np.float64)
    t = 0
    for i in range(n):
        a = alpha * inv_sqrt[i]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = (a * np.float64(data[p])) * inv_sqrt[j]
            if v != 0.0:  # as eliminate_zeros
                out_idx[t] = j
                out_val[t] = v
                t += 1
        out_ptr[i + 1] = t
    return out_ptr, out_idx[:t], out_val[:t]
