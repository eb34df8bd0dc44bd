"""Block solver for ``(I - M) x = b`` with ``M = alpha * D^-1/2 W D^-1/2`` (symmetric).

The plain fixed-point sweep ``x <- M x + b`` (Zhou et al.'s label-spreading iteration, and the
PageRank power iteration after a diagonal change of variables) converges like ``alpha^t``.
Since the eigenvalues of ``M`` are real and lie in ``[-alpha, alpha]``, the Chebyshev
semi-iterative method (Golub & Varga 1961) reaches the same fixed point at the optimal rate
``(1 - sqrt(1 - alpha^2)) / alpha`` per sweep (0.5 for alpha = 0.8, 0.56 for 0.85) with one
sparse x dense product per sweep and no inner products:

    y_t = M x_t + b,   x_{t+1} = omega_{t+1} y_t + (1 - omega_{t+1}) x_{t-1},
    omega_1 = 1, omega_2 = 1 / (1 - alpha^2 / 2), omega_{t+1} = 1 / (1 - alpha^2 omega_t / 4).

Each column stops on its own: column ``c`` has converged at sweep ``t`` when the residual
``y_t - x_t`` (which is exactly the change a plain sweep would make) is below its threshold
(max-abs or weighted-L1 norm); its newest iterate is then handed to ``on_done`` and the column is
dropped from the block once enough columns have finished. A column's arithmetic never depends on
the other columns, so results are bitwise the same for any block width.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from ccgraph.propagate._graph import Operator

__all__ = ["n_threads_for", "run_chunks", "solve"]

#: Below this many nonzeros x columns per sweep the kernels run on the calling thread: handing
#: chunks to the pool costs more than the work.
SERIAL_WORK = 2_000_000

_POOL: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    """Drop the pool in a forked child: its worker threads do not exist there."""
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def default_threads() -> int:
    """Threads for the kernels: ``CCGRAPH_THREADS`` or the CPU count."""
    env = os.environ.get("CCGRAPH_THREADS", "")
    return max(1, int(env)) if env.isdigit() else max(1, os.cpu_count() or 1)


def n_threads_for(work: int) -> int:
    """1 for small work (see :data:`SERIAL_WORK`), else :func:`default_threads`."""
    return 1 if work < SERIAL_WORK else default_threads()


def run_chunks(fn: Callable[[int, int], None], n_chunks: int, n_threads: int) -> None:
    """Call ``fn(c, c + 1)`` for every chunk, on ``n_threads`` threads, chunks handed out in order.

    The kernels release the GIL, so the pool runs them in parallel; a thread that is slowed
    down (a loaded machine) simply takes fewer chunks.
    """
    global _POOL
    if n_threads <= 1 or n_chunks <= 1:
        fn(0, n_chunks)
        return
    if _POOL is None or _POOL._max_workers < n_threads:
        _POOL = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="ccgraph")
    for fut in [_POOL.submit(fn, c, c + 1) for c in range(n_chunks)]:
        fut.result()


DoneCallback = Callable[[np.ndarray, np.ndarray], None]


def _omegas(alpha: float, method: str) -> Iterator[float]:
    """The sweep weights ``omega_1, omega_2, ...`` (all 1 for ``"jacobi"``; see the module notes).

    Shared by every Chebyshev solver: this one, the pruned one, the update's region solve and
    the Spark iteration (:mod:`ccgraph.spark._iterate`).
    """
    yield 1.0
    if method == "jacobi":
        while True:
            yield 1.0
    s2 = alpha * alpha
    omega = 1.0 / (1.0 - s2 / 2.0)
    yield omega
    while True:
        omega = 1.0 / (1.0 - s2 * omega / 4.0)
        yield omega


def solve(
    op: Operator,
    rhs: sp.csr_matrix | np.ndarray,
    *,
    thresholds: np.ndarray,
    max_iter: int,
    criterion: str = "max",
    weights: np.ndarray | None = None,
    method: str = "chebyshev",
    on_done: DoneCallback,
    drop_share: float = 0.25,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve all columns of ``rhs`` (operator row order, operator dtype).

    Returns ``(n_iter, converged)`` per column; the solutions are passed to ``on_done(cols,
    values)`` (``values`` is a fresh ``[n, len(cols)]`` array in operator order) as columns finish.
    ``n_threads`` fixes the threads of the sweeps (default: :func:`n_threads_for` the work);
    the results are the same for any count. ``criterion``: ``"max"`` (largest entry change),
    ``"l1"`` (``weights``-weighted L1 change) or ``"rel_l1"`` (that L1 change divided by the
    ``weights``-weighted sum of the iterate, so a slowly growing iterate is not taken as
    converged).
    """
    return _solve(
        op,
        rhs,
        thresholds=thresholds,
        max_iter=max_iter,
        criterion=criterion,
        weights=weights,
        method=method,
        on_done=on_done,
        drop_share=drop_share,
        n_threads=n_threads,
    )


def _solve(
    op: Operator,
    rhs: sp.csr_matrix | np.ndarray,
    *,
    thresholds: np.ndarray,
    max_iter: int,
    criterion: str,
    weights: np.ndarray | None,
    method: str,
    on_done: DoneCallback,
    drop_share: float,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    from ccgraph.propagate import _kernels

    n, m_total = rhs.shape
    dtype = op.dtype
    dense = isinstance(rhs, np.ndarray)
    b: Any
    if dense:
        b = np.ascontiguousarray(rhs, dtype=dtype)
        x = b.copy()
    else:
        b = _prep_csr(rhs, dtype)
        x = b.toarray()
    x_prev = x.copy()
    w = np.ones(n, dtype=dtype) if weights is None else np.ascontiguousarray(weights, dtype=dtype)
    thr = np.asarray(thresholds, dtype=np.float64)
    active = np.arange(m_total)
    pending = np.ones(m_total, dtype=bool)  # not yet handed to on_done
    n_iter = np.full(m_total, max_iter, dtype=np.int64)
    converged = np.zeros(m_total, dtype=bool)
    bounds = op.bounds
    mm = op.m
    omegas = _omegas(op.alpha, method)
    it = 0
    while active.size and it < max_iter:
        it += 1
        omega = next(omegas)
        width = active.size
        res_max = np.zeros((len(bounds) - 1, width), dtype=dtype)
        res_l1 = np.zeros((len(bounds) - 1, width), dtype=dtype)
        if dense:
            step = partial(
                _kernels.cheb_step_dense, mm.indptr, mm.indices, mm.data, x, x_prev, b, omega,
                w, bounds, res_max, res_l1,
            )  # fmt: skip
        else:
            step = partial(
                _kernels.cheb_step_sparse, mm.indptr, mm.indices, mm.data, x, x_prev, b.indptr,
                b.indices, b.data, omega, w, bounds, res_max, res_l1,
            )  # fmt: skip
        threads = n_threads_for((mm.nnz + n) * width) if n_threads is None else n_threads
        run_chunks(step, len(bounds) - 1, threads)
        x, x_prev = x_prev, x
        if criterion == "max":
            res = res_max.max(axis=0)
        else:
            res = res_l1.astype(np.float64).sum(axis=0)
            cand = res < thr[active]
            if criterion == "rel_l1" and cand.any():
                # relative to the iterate's weighted sum (its scale, at most ~1), computed
                # only for the columns the absolute test would already stop
                scale = w @ x[:, cand]
                sub = res[cand]
                res[cand] = np.divide(sub, scale, out=sub.copy(), where=scale > 0)
        done = (res < thr[active]) & pending[active]
        if done.any():
            cols = active[done]
            on_done(cols, np.ascontiguousarray(x[:, done]))
            pending[cols] = False
            converged[cols] = True
            n_iter[cols] = it
        finished = ~pending[active]
        if finished.sum() >= max(1, drop_share * width):
            keep = ~finished
            active = active[keep]
            x = np.ascontiguousarray(x[:, keep])
            x_prev = np.ascontiguousarray(x_prev[:, keep])
            b = np.ascontiguousarray(b[:, keep]) if dense else _prep_csr(b[:, keep], dtype)
    rest = active[pending[active]]
    if rest.size:
        on_done(rest, np.ascontiguousarray(x[:, pending[active]]))
    return n_iter, converged


def _prep_csr(b: sp.spmatrix, dtype: np.dtype) -> sp.csr_matrix:
    c = sp.csr_matrix(b, dtype=dtype)
    c.sort_indices()
    c.indptr = c.indptr.astype(np.int64)
    c.indices = c.indices.astype(np.int32)
    return c
