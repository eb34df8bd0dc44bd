"""Approximate kNN by overlapping k-means cells (BLAS) and neighbour-of-neighbour refinement.

Private backend ``"cells"`` of :func:`ccgraph.graph.knn_search`; inputs are trusted.

1. Spherical k-means on a sample gives ``C`` centroids; every item joins the cells of its
   ``m`` nearest centroids (overlapping cells, as in multi-assignment IVF indexes).
2. Items are renumbered cell by cell (locality), and each cell's exact kNN is one BLAS
   product of the cell's members with themselves; an item's lists from its ``m`` cells are
   merged.
3. A few refinement passes (NN-descent's "a neighbour of a neighbour is likely a neighbour",
   over forward and reverse lists) fix the items whose true neighbours sit in other cells. The
   pass is a small numba kernel compiled with ``cache=True``, so only the first run on a
   machine compiles it.

Cost: ``~ 2 n d (C + m^2 n / C)`` flops of BLAS plus ``~ n k^2 d`` per pass, no numba
compilation after the first run (pynndescent compiles for 30-60 s in every process).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["CELLS_DEFAULTS", "cells_knn"]

logger = logging.getLogger(__name__)

#: Defaults of the cell backend, chosen by ``benchmarks/e2e.py`` and ``benchmarks/graph.py``
#: (recall@15 >= 0.95 on the 1,000- and 200-cluster d=384 mixtures up to 1M items). Above
#: :data:`LARGE_N` items see :data:`LARGE_DEFAULTS`.
CELLS_DEFAULTS: dict[str, float | int] = {
    "cell_size": 512,  # target items per cell (C = n / cell_size, at least 1)
    "n_assign": 3,  # cells each item joins
    "refine_passes": 4,  # neighbour-of-neighbour passes (stops early when nothing moves)
    "max_reverse": 15,  # reverse neighbours used per item in a pass
    "extra": 0,  # lists of k + extra neighbours while searching; the best k are returned
    "kmeans_iter": 6,
    "kmeans_sample": 32,  # sample points per centroid for k-means
    "assign_dims": 64,  # cells are found in this many principal directions
}

#: With more cells an item's true neighbours straddle more cell borders: on the 200-cluster
#: mixture at 1M items recall@15 fell to 0.931 with 512-item cells joined 3 times (60 s),
#: and reached 0.959 with 768-item cells joined 4 times (88 s). Used above this many items.
LARGE_N = 250_000
LARGE_DEFAULTS: dict[str, float | int] = {"cell_size": 768, "n_assign": 4}


def _threads(n_jobs: int | None) -> int:
    return int(n_jobs) if n_jobs and n_jobs > 0 else (os.cpu_count() or 1)


def projection(data: np.ndarray, dims: int, *, sample: int, rng: np.random.Generator) -> np.ndarray:
    """``[d, dims]`` top principal directions of a row sample (identity-like when ``dims >= d``).

    Cells are found in this projection: it only shortens distances (close rows stay close), so
    neighbours still share cells, and k-means and the cell assignment cost ``dims / d`` of the
    full products.
    """
    n, d = data.shape
    if dims >= d:
        return np.eye(d, dtype=np.float32)
    take = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    pts = np.asarray(data[take], dtype=np.float32)
    pts = pts - pts.mean(axis=0)
    _, vecs = np.linalg.eigh((pts.T @ pts).astype(np.float64))  # ascending eigenvalues
    return np.ascontiguousarray(vecs[:, ::-1][:, :dims], dtype=np.float32)


def spherical_kmeans(
    data: np.ndarray, n_cells: int, *, n_iter: int, sample: int, rng: np.random.Generator
) -> np.ndarray:
    """Unit-length centroids of Lloyd's iterations on a random sample (cosine assignment)."""
    import scipy.sparse as sp

    n = data.shape[0]
    take = np.sort(rng.choice(n, size=min(n, sample * n_cells), replace=False))
    pts = np.ascontiguousarray(data[take], dtype=np.float32)
    pts = pts / np.maximum(np.linalg.norm(pts, axis=1, keepdims=True), 1e-12)
    cent = pts[rng.choice(len(pts), size=n_cells, replace=False)].copy()
    ones = np.ones(len(pts), dtype=np.float32)
    cols = np.arange(len(pts))
    for _ in range(n_iter):
        lab = (pts @ cent.T).argmax(axis=1)
        new = np.asarray(sp.csr_matrix((ones, (lab, cols)), shape=(n_cells, len(pts))) @ pts)
        empty = np.bincount(lab, minlength=n_cells) == 0
        if empty.any():  # reseed empty cells on random sample points
            new[empty] = pts[rng.choice(len(pts), size=int(empty.sum()), replace=False)]
        cent = new / np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
    return cent


def nearest_cells(data: np.ndarray, cent: np.ndarray, m: int, rows: int = 16384) -> np.ndarray:
    """``int64 [n, m]``: each row's ``m`` most similar centroids, best first."""
    from ccgraph.graph._ivf_kernels import top_cells

    n = data.shape[0]
    out = np.empty((n, m), dtype=np.int64)
    for s in range(0, n, rows):
        top_cells(data[s : s + rows] @ cent.T, out[s : s + rows])
    return out


def _merge_lists(ind: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge ``[n, m*k]`` candidate lists into the best ``k`` distinct per row (-1 = none)."""
    n = ind.shape[0]
    big = np.iinfo(np.int64).max
    key = np.where(ind >= 0, ind, big)
    o = np.lexsort((dist, key), axis=1)
    key = np.take_along_axis(key, o, axis=1)
    dist = np.take_along_axis(dist, o, axis=1)
    rep = np.zeros(key.shape, dtype=bool)
    rep[:, 1:] = key[:, 1:] == key[:, :-1]
    dist = np.where(rep | (key == big), np.inf, dist)
    o = np.lexsort((key, dist), axis=1)[:, :k]
    out_i = np.take_along_axis(key, o, axis=1)
    out_d = np.take_along_axis(dist, o, axis=1).astype(np.float32)
    out_i[~np.isfinite(out_d)] = -1
    del n
    return out_i, out_d


def _cell_lists(
    xp: np.ndarray,
    sqp: np.ndarray | None,
    point: np.ndarray,
    slot: np.ndarray,
    bounds: np.ndarray,
    *,
    k: int,
    m: int,
    threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Every item's ``k`` nearest within its ``m`` cells (one BLAS product per cell), merged.

    ``xp`` holds the items cell-ordered, ``sqp`` their squared norms (euclidean) or None
    (cosine); cell ``c``'s memberships are ``point[bounds[c]:bounds[c + 1]]`` with their
    ``slot`` (which of the item's cells it is).
    """
    from threadpoolctl import threadpool_limits

    from ccgraph.graph._ivf_kernels import cell_topk

    n = xp.shape[0]
    cand_i = np.full((n, m * k), -1, dtype=np.int64)
    cand_d = np.full((n, m * k), np.inf, dtype=np.float32)

    sq_arg = sqp if sqp is not None else np.zeros(1, dtype=np.float32)

    def one(c: int) -> None:
        lo, hi = bounds[c], bounds[c + 1]
        if hi - lo < 2:
            return
        mem = point[lo:hi]
        x = xp[mem]
        sc = x @ x.T
        if sqp is not None:
            sc -= 0.5 * sqp[mem][None, :]
        np.fill_diagonal(sc, -np.inf)
        cell_topk(sc, mem, slot[lo:hi], k, sq_arg, sqp is not None, cand_i, cand_d)

    order = np.argsort(-np.diff(bounds), kind="stable")  # big cells first
    with threadpool_limits(1, user_api="blas"):
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(one, order))
        else:
            for c in order:
                one(int(c))
    return _merge_lists(cand_i, cand_d, k)


def cells_knn(
    data: np.ndarray,
    k: int,
    *,
    metric: str,
    seed: int,
    n_jobs: int | None = None,
    options: dict[str, float | int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate kNN of every row, self excluded, sorted by (distance, index).

    Parameters
    ----------
    data
        ``float32 [n, d]``; unit rows for ``metric="cosine"``.
    k
        Neighbours per row.
    metric
        ``"cosine"`` or ``"euclidean"``.
    seed
        Seed of the k-means sample and initial centroids.
    n_jobs
        Threads (None = all cores).
    options
        Overrides of :data:`CELLS_DEFAULTS`.

    Returns
    -------
    indices, distances
        ``int32 [n, k]`` and ``float32 [n, k]`` (index -1 / distance inf when a row has fewer
        than ``k`` reachable neighbours).
    """
    from ccgraph.graph._ivf_kernels import refine_pass, reverse_lists

    n = data.shape[0]
    opts = {**CELLS_DEFAULTS, **(LARGE_DEFAULTS if n > LARGE_N else {}), **(options or {})}
    k_out = k
    k = min(n - 1, k + int(opts["extra"]))
    rng = np.random.default_rng(seed)
    threads = _threads(n_jobs)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    n_cells = max(1, round(n / float(opts["cell_size"])))
    m = int(min(opts["n_assign"], n_cells))
    proj = projection(data, int(opts["assign_dims"]), sample=20_000, rng=rng)
    low = np.concatenate([data[s : s + 65536] @ proj for s in range(0, n, 65536)])
    cent = spherical_kmeans(
        low,
        n_cells,
        n_iter=int(opts["kmeans_iter"]),
        sample=int(opts["kmeans_sample"]),
        rng=rng,
    )
    top = nearest_cells(
        low / np.maximum(np.linalg.norm(low, axis=1, keepdims=True), 1e-12), cent, m
    )
    del low
    timings["assign"] = time.perf_counter() - t

    t = time.perf_counter()
    perm = np.argsort(top[:, 0], kind="stable")  # cell-ordered numbering
    xp = np.ascontiguousarray(data[perm])
    topp = top[perm]
    sqp = np.einsum("ij,ij->i", xp, xp) if metric == "euclidean" else None
    cell = topp.T.ravel()  # slot-major: all primary memberships first
    point = np.tile(np.arange(n, dtype=np.int64), m)
    slot = np.repeat(np.arange(m), n)
    o = np.lexsort((point, slot, cell))
    cell, point, slot = cell[o], point[o], slot[o]
    bounds = np.searchsorted(cell, np.arange(n_cells + 1))
    # the candidate buffers live only in the call: freed before refining
    ind, dist = _cell_lists(xp, sqp, point, slot, bounds, k=k, m=m, threads=threads)
    timings["cells"] = time.perf_counter() - t

    t = time.perf_counter()
    ind = ind.astype(np.int64)
    chunks = np.linspace(0, n, 8 * threads + 1).astype(np.int64)
    isnew = np.ones(ind.shape, dtype=np.bool_)
    passes = 0
    for _ in range(int(opts["refine_passes"])):
        rev_indptr, rev_ind, rev_new = reverse_lists(ind, isnew, int(opts["max_reverse"]))
        new_i = np.empty_like(ind)
        new_d = np.empty_like(dist)
        new_f = np.empty_like(isnew)
        refine_pass(
            xp,
            ind,
            dist,
            isnew,
            rev_indptr,
            rev_ind,
            rev_new,
            metric == "euclidean",
            chunks,
            new_i,
            new_d,
            new_f,
        )
        passes += 1
        ind, dist, isnew = new_i, new_d, new_f
        frac = float(isnew.any(axis=1).mean())
        logger.debug("cells refine pass %d: %.2f%% of rows improved", passes, 100 * frac)
        if frac < 1e-3:
            break
    timings["refine"] = time.perf_counter() - t
    ind, dist = ind[:, :k_out], dist[:, :k_out]
    if metric == "euclidean":
        dist = np.sqrt(np.maximum(dist, 0.0))
    out_i = np.full((n, k_out), -1, dtype=np.int32)
    out_d = np.empty((n, k_out), dtype=np.float32)
    valid = ind >= 0
    out_i[perm] = np.where(valid, perm[np.where(valid, ind, 0)], -1)
    out_d[perm] = dist
    logger.info(
        "cells kNN n=%d: %d cells x %d, %d refine passes; %s",
        n,
        n_cells,
        m,
        passes,
        {key: round(v, 2) for key, v in timings.items()},
    )
    return out_i, out_d
