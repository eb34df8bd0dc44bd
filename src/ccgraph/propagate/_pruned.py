"""Label spreading with top-L label pruning, for graphs where the exact solver is too costly.

The exact solver (:func:`ccgraph.propagate.spreading.spread_raw`) solves every tag column over
every item: ``n x T`` work per sweep, ~300 s for a million items and 1,000 tags on two cores.
Here every item keeps only its ``L`` largest tag scores, so a sweep costs ``nnz x L``:

1. *Grow* (``freeze`` sweeps): ``F <- top_L(M F + B)`` with ``M = alpha S`` and
   ``B = (1 - alpha) Y``, starting from ``F = 0``. Scores travel one hop per sweep, and an
   item's slots settle on the tags that reach it most strongly.
2. *Frozen* (until the max-abs residual is below ``tol``): the slots are fixed and the linear
   system restricted to them, ``(I - P M P) f = P b`` for every tag column (``P`` keeps the
   items holding that tag), is solved by the Chebyshev iteration of the exact solver. ``P M P``
   is a principal sub-matrix of ``M``, so its eigenvalues lie in ``[-alpha, alpha]`` (Cauchy
   interlacing) and the iteration converges at the same rate as the exact one.

The scores are those of the exact fixed point with the contributions of dropped entries
removed: an item's strongest tags, which the top-k output keeps, agree with the exact solver
(measured in ``benchmarks/e2e.py`` and ``tests/propagate/test_pruned.py``). The same scheme
runs on Spark (:mod:`ccgraph.spark.propagate`).
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import scipy.sparse as sp

from ccgraph.propagate._graph import Operator
from ccgraph.propagate._solver import _omegas, n_threads_for, run_chunks

__all__ = ["spread_pruned"]

logger = logging.getLogger(__name__)


def _csr64(m: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = sp.csr_matrix(m, dtype=np.float64)
    c.sum_duplicates()
    c.sort_indices()
    return c.indptr.astype(np.int64), c.indices.astype(np.int64), c.data


def spread_pruned(
    op: Operator,
    y: sp.csr_matrix,
    *,
    exclude: sp.csr_matrix,
    tol: float,
    max_iter: int,
    top_k: int,
    prune: int,
    freeze: int,
    method: str = "chebyshev",
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Pruned spreading of the seed matrix ``y`` (original row order).

    Returns
    -------
    top_v, top_t, n_sweeps, converged
        Each item's ``top_k`` scores and tag indices (original order; ``-1`` / 0 in empty
        slots), skipping the tags of ``exclude``; the sweeps used; whether the residual fell
        below ``tol`` within ``max_iter`` sweeps.
    """
    from ccgraph.propagate import _pruned_kernels as kern

    n, n_tags = y.shape
    y_inner = sp.csr_matrix(op.to_inner(sp.csr_matrix(y, dtype=np.float64)))
    b_indptr, b_indices, b_data = _csr64(y_inner * (1.0 - op.alpha))
    ex_indptr, ex_indices, _ = _csr64(op.to_inner(sp.csr_matrix(exclude)))
    seeds_max = int(np.diff(b_indptr).max(initial=0))
    cap = max(1, min(n_tags, prune + min(seeds_max, prune)))
    mm = op.m
    m_indptr = mm.indptr.astype(np.int64)
    m_indices = mm.indices.astype(np.int64)
    bounds = op.bounds
    n_chunks = len(bounds) - 1
    threads = n_threads_for(mm.nnz * cap)

    tags = np.full((n, cap), -1, dtype=np.int32)
    vals = np.zeros((n, cap), dtype=op.dtype)
    new_tags = np.empty_like(tags)
    new_vals = np.empty_like(vals)
    sweeps = 0
    for _ in range(max(1, min(freeze, max_iter))):
        grow = partial(
            kern.grow_step, m_indptr, m_indices, mm.data, tags, vals, b_indptr, b_indices,
            b_data, n_tags, bounds, new_tags, new_vals,
        )  # fmt: skip
        run_chunks(grow, n_chunks, threads)
        tags, new_tags = new_tags, tags
        vals, new_vals = new_vals, vals
        sweeps += 1
    del new_tags, new_vals

    b_slots = np.empty((n, cap), dtype=op.dtype)
    row_chunk = partial(kern.slot_values, tags, b_indptr, b_indices, b_data, b_slots)
    run_chunks(lambda c0, c1: row_chunk(bounds[c0], bounds[c1]), n_chunks, threads)
    x = vals
    x_prev = vals.copy()
    omegas = _omegas(op.alpha, method)
    converged = False
    residual = float("inf")
    while sweeps < max_iter:
        omega = next(omegas)
        res_max = np.zeros(n_chunks, dtype=np.float64)
        step = partial(
            kern.frozen_step, m_indptr, m_indices, mm.data, tags, x, x_prev, b_slots, omega,
            n_tags, bounds, res_max,
        )  # fmt: skip
        run_chunks(step, n_chunks, threads)
        x, x_prev = x_prev, x
        sweeps += 1
        residual = float(res_max.max(initial=0.0))
        if residual < tol:
            converged = True
            break
    logger.debug(
        "pruned spreading: %d slots, %d sweeps (%d growing), residual %.2e",
        cap,
        sweeps,
        freeze,
        residual,
    )

    k = min(top_k, n_tags)
    top_v = np.zeros((n, k), dtype=op.dtype)
    top_t = np.full((n, k), -1, dtype=np.int64)
    pick = partial(kern.select_topk, tags, x, ex_indptr, ex_indices, top_v, top_t)
    run_chunks(lambda c0, c1: pick(bounds[c0], bounds[c1]), n_chunks, threads)
    return op.to_outer(top_v), op.to_outer(top_t), sweeps, converged
