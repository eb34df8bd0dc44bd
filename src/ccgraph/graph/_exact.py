"""Exact kNN by blocks: BLAS matrix products for dense vectors, XOR + popcount for bit codes.

Private backend of :func:`ccgraph.graph.knn_search`; inputs are trusted (validated there).
Memory is bounded by the block: a few ``[block_rows, n]`` buffers, allocated once and reused
(fresh large allocations cost more in page faults than the arithmetic).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["BLOCK_BYTES", "exact_dense", "exact_hamming", "pack_codes"]

#: Target bytes of one block's score buffer; two or three buffers of this size are live.
BLOCK_BYTES = 64 * 2**20


def _block_rows(n: int, bytes_per_entry: int, low: int, high: int) -> int:
    return int(max(low, min(high, BLOCK_BYTES // max(1, n * bytes_per_entry))))


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """View packed ``uint8 [n, b]`` bit codes as ``uint64 [n, ceil(b / 8)]`` (zero padded)."""
    n, b = codes.shape
    words = -(-b // 8)
    padded = np.zeros((n, words * 8), dtype=np.uint8)
    padded[:, :b] = codes
    return padded.view(np.uint64).reshape(n, words)


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (``np.bitwise_count`` on numpy >= 2, else a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return _BYTE_POPCOUNT[x.view(np.uint8).reshape(*x.shape, 8)].sum(axis=-1, dtype=np.uint8)


def _select(
    scores: np.ndarray, work: np.ndarray, mask: np.ndarray, k: int, *, largest: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of each row of ``scores``, ties broken by the lower column index.

    The k-th best value of each row comes from an in-place ``partition`` of a copy in
    ``work`` (values only, cheaper than ``argpartition`` and its int64 output); every entry at
    least as good is a candidate (``mask``), and candidates are sorted by (score, column), so
    the result is deterministic under ties.
    """
    b, n = scores.shape
    np.copyto(work, scores)
    if largest:
        work.partition(n - k, axis=1)
        np.greater_equal(scores, work[:, n - k, None], out=mask)
    else:
        work.partition(k - 1, axis=1)
        np.less_equal(scores, work[:, k - 1, None], out=mask)
    r, c = np.nonzero(mask)
    val = scores[r, c]
    order = np.lexsort((c, -val if largest else val, r))
    r, c, val = r[order], c[order], val[order]
    start = np.searchsorted(r, np.arange(b))
    keep = (np.arange(len(r)) - start[r]) < k
    return c[keep].reshape(b, k).astype(np.int32), val[keep].reshape(b, k)


class _Blocks:
    """Reusable per-block buffers and a thread pool that runs row chunks of a block."""

    def __init__(self, rows: int, n: int, dtype: type, n_jobs: int | None) -> None:
        self.scores: np.ndarray = np.empty((rows, n), dtype=dtype)
        self.work: np.ndarray = np.empty((rows, n), dtype=dtype)
        self.mask = np.empty((rows, n), dtype=bool)
        if n_jobs is None or n_jobs < 1:
            n_jobs = os.cpu_count() or 1
        self.threads = int(n_jobs)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def chunks(self, b: int) -> list[tuple[int, int]]:
        parts = min(self.threads, max(1, b // 16))
        bounds = np.linspace(0, b, parts + 1).astype(int)
        return [(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds) if hi > lo]

    def run(self, b: int, fn: Callable[[int, int], object]) -> list[object]:
        spans = self.chunks(b)
        if self.pool is None or len(spans) == 1:
            return [fn(lo, hi) for lo, hi in spans]
        return [f.result() for f in [self.pool.submit(fn, lo, hi) for lo, hi in spans]]

    def select(self, b: int, k: int, *, largest: bool) -> tuple[np.ndarray, np.ndarray]:
        def one(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
            return _select(
                self.scores[lo:hi], self.work[lo:hi], self.mask[lo:hi], k, largest=largest
            )

        parts = self.run(b, one)
        return (
            np.concatenate([p[0] for p in parts]),  # type: ignore[index]
            np.concatenate([p[1] for p in parts]),  # type: ignore[index]
        )


def exact_dense(
    data: np.ndarray,
    k: int,
    *,
    metric: str,
    queries: np.ndarray | None = None,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN of float32 rows by blocked matrix products.

    Parameters
    ----------
    data
        ``float32 [n, d]``; for ``metric="cosine"`` rows must already be unit length.
    k
        Neighbours per query.
    metric
        ``"cosine"`` (distance ``1 - x.y``) or ``"euclidean"``.
    queries
        Row positions to answer (default all rows); a query never returns itself.
    n_jobs
        Threads for the selection step (None = all cores); the product uses BLAS threads.

    Returns
    -------
    indices, distances
        ``int32 [q, k]`` and ``float32 [q, k]``, sorted by distance then index.
    """
    n = data.shape[0]
    qpos = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    rows = _block_rows(n, 4, 64, 2048)
    sq = np.einsum("ij,ij->i", data, data) if metric == "euclidean" else None
    out_i = np.empty((len(qpos), k), dtype=np.int32)
    out_d = np.empty((len(qpos), k), dtype=np.float32)
    blocks = _Blocks(min(rows, len(qpos)), n, np.float32, n_jobs)
    try:
        for s in range(0, len(qpos), rows):
            q = qpos[s : s + rows]
            b = len(q)
            scores = blocks.scores[:b]
            np.matmul(data[q], data.T, out=scores)
            if sq is not None:
                scores -= 0.5 * sq[None, :]  # largest x.y - |y|^2 / 2 = nearest in L2
            scores[np.arange(b), q] = -np.inf  # a query never returns itself
            idx, best = blocks.select(b, k, largest=True)
            if sq is None:
                dist = 1.0 - best
            else:
                dist = np.sqrt(np.maximum(sq[q][:, None] - 2.0 * best, 0.0))
            out_i[s : s + b] = idx
            out_d[s : s + b] = np.maximum(dist, 0.0)
    finally:
        blocks.close()
    return out_i, out_d


def exact_hamming(
    codes: np.ndarray,
    k: int,
    *,
    queries: np.ndarray | None = None,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN of packed bit codes (``uint8 [n, b]``) by Hamming distance.

    Codes are viewed as 64-bit words; the distance is the popcount of the XOR summed over the
    words. Ties (frequent: distances are small integers) go to the lower index. Distances are
    held as int16 (numpy's partition of uint8 is about ten times slower).
    """
    n = codes.shape[0]
    words = pack_codes(codes)
    qpos = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    rows = _block_rows(n, 8, 16, 256)  # small blocks keep the XOR buffer in cache
    out_i = np.empty((len(qpos), k), dtype=np.int32)
    out_d = np.empty((len(qpos), k), dtype=np.float32)
    dtype = np.int16 if words.shape[1] * 64 < np.iinfo(np.int16).max else np.int32
    blocks = _Blocks(min(rows, len(qpos)), n, dtype, n_jobs)
    xor = np.empty((min(rows, len(qpos)), n), dtype=np.uint64)
    try:
        for s in range(0, len(qpos), rows):
            q = qpos[s : s + rows]
            b = len(q)
            dist = blocks.scores[:b]

            def fill(lo: int, hi: int, q: np.ndarray = q, dist: np.ndarray = dist) -> None:
                for j in range(words.shape[1]):
                    x = np.bitwise_xor(words[q[lo:hi], j, None], words[None, :, j], out=xor[lo:hi])
                    if j == 0:
                        dist[lo:hi] = _popcount(x)
                    else:
                        dist[lo:hi] += _popcount(x)

            blocks.run(b, fill)
            dist[np.arange(b), q] = np.iinfo(dtype).max
            idx, best = blocks.select(b, k, largest=False)
            out_i[s : s + b] = idx
            out_d[s : s + b] = best
    finally:
        blocks.close()
    return out_i, out_d
