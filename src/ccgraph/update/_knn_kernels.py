"""Numba kernels of the update's graph stage: kNN list merges, the probe index, components.

Imported lazily (importing this module loads numba); compiled with ``cache=True``.
"""

from __future__ import annotations

import numba
import numpy as np

# the sorted-list insertion of the cells search: (distance, index) order, k best kept
from ccgraph.graph._ivf_kernels import _insert

__all__ = [
    "cluster_sums",
    "component_labels",
    "group_order",
    "insert_pairs",
    "rows_differ",
    "top_k_keys",
]


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


@numba.njit(cache=True, nogil=True)
def cluster_sums(data: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster, the sum of its rows of ``data`` (rows with code ``-1`` skipped).

    Each sum adds its rows in ascending row order, in ``data``'s dtype: the arithmetic of
    ``indicator @ data`` with a CSR indicator matrix (scipy's ``csr_matvecs``).
    """
    out = np.zeros((n_clusters, data.shape[1]), dtype=data.dtype)
    for r in range(data.shape[0]):
        c = codes[r]
        if c >= 0:
            row = data[r]
            acc = out[c]
            for j in range(data.shape[1]):
                acc[j] += row[j]
    return out


@numba.njit(cache=True, nogil=True)
def group_order(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """``np.argsort(codes, kind="stable")`` for codes in ``[0, n_groups)`` (a counting sort)."""
    starts = np.zeros(n_groups + 1, dtype=np.int64)
    for r in range(codes.shape[0]):
        starts[codes[r] + 1] += 1
    for c in range(n_groups):
        starts[c + 1] += starts[c]
    out = np.empty(codes.shape[0], dtype=np.int64)
    for r in range(codes.shape[0]):
        c = codes[r]
        out[starts[c]] = r
        starts[c] += 1
    return out


@numba.njit(cache=True, nogil=True)
def top_k_keys(
    q: np.ndarray, t: np.ndarray, d_bits: np.ndarray, out_i: np.ndarray, out_bits: np.ndarray
) -> None:
    """Each query's ``k`` smallest ``(distance, target)``: ``out_i`` / ``out_bits`` ``[nq, k]``.

    ``d_bits`` are the distances' float32 bit patterns, which order non-negative floats as
    the floats do; ``t`` fits in 32 bits. Slots past a query's pairs are left as they are.
    """
    nq, k = out_i.shape
    starts = np.zeros(nq + 1, dtype=np.int64)
    for p in range(q.shape[0]):
        starts[q[p] + 1] += 1
    for i in range(nq):
        starts[i + 1] += starts[i]
    fill = starts[:-1].copy()
    keys = np.empty(q.shape[0], dtype=np.uint64)
    for p in range(q.shape[0]):
        keys[fill[q[p]]] = (np.uint64(d_bits[p]) << np.uint64(32)) | np.uint64(t[p])
        fill[q[p]] += 1
    low = np.uint64(0xFFFFFFFF)
    for i in range(nq):
        a = starts[i]
        b = starts[i + 1]
        if b == a:
            continue
        part = np.sort(keys[a:b])
        for r in range(min(k, b - a)):
            out_i[i, r] = np.int64(part[r] & low)
            out_bits[i, r] = np.uint32(part[r] >> np.uint64(32))


@numba.njit(cache=True, nogil=True)
def component_labels(indptr: np.ndarray, indices: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a symmetric CSR pattern: their number and a label per node.

    Labels are numbered in order of each component's smallest node (depth-first search).
    """
    n = indptr.shape[0] - 1
    labels = np.full(n, -1, dtype=np.int64)
    stack = np.empty(max(n, 1), dtype=np.int64)
    n_comp = 0
    for s in range(n):
        if labels[s] >= 0:
            continue
        labels[s] = n_comp
        stack[0] = s
        top = 1
        while top:
            top -= 1
            u = stack[top]
            for p in range(indptr[u], indptr[u + 1]):
                v = indices[p]
                if labels[v] < 0:
                    labels[v] = n_comp
                    stack[top] = v
                    top += 1
        n_comp += 1
    return n_comp, labels


@numba.njit(cache=True, nogil=True)
def rows_differ(
    indptr_a: np.ndarray,
    indices_a: np.ndarray,
    data_a: np.ndarray,
    indptr_b: np.ndarray,
    indices_b: np.ndarray,
    data_b: np.ndarray,
    n_rows: int,
) -> np.ndarray:
    """For the first ``n_rows`` rows of two CSR matrices: whether their stored entries differ.

    With sorted indices and no stored zeros, two rows hold the same values exactly when
    they store the same (column, value) sequence.
    """
    out = np.zeros(n_rows, dtype=np.bool_)
    for i in range(n_rows):
        a0 = indptr_a[i]
        b0 = indptr_b[i]
        m = indptr_a[i + 1] - a0
        if indptr_b[i + 1] - b0 != m:
            out[i] = True
            continue
        for p in range(m):
            if indices_a[a0 + p] != indices_b[b0 + p] or data_a[a0 + p] != data_b[b0 + p]:
                out[i] = True
                break
    return out


@numba.njit(cache=True, nogil=True)
def scan_block(
    dist: np.ndarray,
    qpos: np.ndarray,
    q_rows: np.ndarray,
    target: np.ndarray,
    limit: np.ndarray,
    data: np.ndarray,
    kth_t: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One probe block ``dist[query, target]``: copies, self pairs, top pairs and gains.

    In place, in this order: a pair of bitwise equal rows within ``limit[target]`` gets
    distance 0 (:func:`ccgraph.update._probe.copies_at_zero`), a query's own row ``inf``
    (``target`` ascending). Returns, row-major, the block's pairs at or below each query's
    ``k``-th smallest distance (with ties; every finite pair when the block has at most
    ``k`` targets) as ``(qpos, target, distance)``, and the pairs where the query beats the
    target's ``kth_t`` as ``(target, query row, distance)``.
    """
    nq, nt = dist.shape
    n_feat = data.shape[1]
    for i in range(nq):
        qi = q_rows[i]
        for j in range(nt):
            if dist[i, j] <= limit[j]:
                t = target[j]
                same = True
                for f in range(n_feat):
                    if data[qi, f] != data[t, f]:
                        same = False
                        break
                if same:
                    dist[i, j] = 0.0
        at = np.searchsorted(target, qi)
        if at < nt and target[at] == qi:
            dist[i, at] = np.inf
    top_q = np.empty(nq * nt, dtype=np.int64)
    top_t = np.empty(nq * nt, dtype=np.int64)
    top_d = np.empty(nq * nt, dtype=dist.dtype)
    gain_t = np.empty(nq * nt, dtype=np.int64)
    gain_q = np.empty(nq * nt, dtype=np.int64)
    gain_d = np.empty(nq * nt, dtype=dist.dtype)
    buf = np.empty(max(k, 1), dtype=dist.dtype)
    n_top = 0
    n_gain = 0
    for i in range(nq):
        row = dist[i]
        if nt > k:
            # the k-th smallest value of the row (sorted insertion into k slots)
            filled = 0
            for j in range(nt):
                v = row[j]
                if filled < k:
                    p = filled
                    filled += 1
                elif v < buf[k - 1]:
                    p = k - 1
                else:
                    continue
                while p > 0 and buf[p - 1] > v:
                    buf[p] = buf[p - 1]
                    p -= 1
                buf[p] = v
            kth = buf[k - 1]
            for j in range(nt):
                if row[j] <= kth:
                    top_q[n_top] = qpos[i]
                    top_t[n_top] = target[j]
                    top_d[n_top] = row[j]
                    n_top += 1
        else:
            for j in range(nt):
                if np.isfinite(row[j]):
                    top_q[n_top] = qpos[i]
                    top_t[n_top] = target[j]
                    top_d[n_top] = row[j]
                    n_top += 1
    for i in range(nq):
        for j in range(nt):
            if dist[i, j] <= kth_t[j]:
                gain_t[n_gain] = target[j]
                gain_q[n_gain] = q_rows[i]
                gain_d[n_gain] = dist[i, j]
                n_gain += 1
    return (
        top_q[:n_top],
        top_t[:n_top],
        top_d[:n_top],
        gain_t[:n_gain],
        gain_q[:n_gain],
        gain_d[:n_gain],
    )
