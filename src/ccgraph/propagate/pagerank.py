"""Personalized PageRank on the similarity graph: global (single and batched) and local push.

``alpha`` is the probability of following an edge; the restart probability is ``1 - alpha``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import scipy.sparse as sp

from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.containers import KnnGraph
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.propagate._graph import Operator, as_adjacency, build_operator, resolve_dtype
from ccgraph.propagate._solver import solve

__all__ = ["local_ppr", "personalized_pagerank", "personalized_pagerank_batch"]

logger = logging.getLogger(__name__)

#: Smallest restart probability ``1 - alpha`` :func:`local_ppr` accepts (its work grows as
#: ``1 / (1 - alpha)``: 0.8 s on a 30-node ring at ``1 - alpha = 1e-5``).
MIN_PUSH_RESTART = 1e-6


def personalized_pagerank(
    graph: Any,
    personalization: Any,
    *,
    alpha: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> np.ndarray:
    r"""Personalized PageRank of every node for one restart distribution.

    Parameters
    ----------
    graph
        :class:`~ccgraph.KnnGraph` or a symmetric non-negative scipy sparse adjacency (weights
        are transition weights; a self-loop counts as an edge).
    personalization
        Non-negative restart weights, one per node (dense or sparse; normalised to sum 1).
    alpha
        Probability of following an edge (damping); ``1 - alpha`` restarts.
    tol
        Stop when one more power-iteration step would change the vector by less than ``tol``
        in L1 norm.
    max_iter
        Iteration cap; a :class:`~ccgraph.exceptions.ConvergenceWarning` is raised at it.

    Returns
    -------
    numpy.ndarray
        ``float64 [n]``, non-negative, summing to 1.

    Notes
    -----
    With ``P = D^{-1} W`` the random-walk transition matrix and ``v`` the normalised restart
    vector, the result is the stationary vector of

    .. math:: x = \alpha P^T x + \alpha (\mathbf{1}_{dangling}^T x)\, v + (1 - \alpha) v,

    i.e. a walk at a *dangling* (isolated) node jumps back to ``v`` — networkx's convention with
    ``dangling=None``. Because ``W`` is symmetric, ``P^T = D^{1/2} S D^{-1/2}`` with
    ``S = D^{-1/2} W D^{-1/2}``, so ``y = (I - \alpha P^T)^{-1} v = D^{1/2} (I - \alpha S)^{-1}
    D^{-1/2} v`` (isolated nodes: ``y_u = v_u``) and ``x = y / \sum y`` (the dangling term only
    rescales ``y``). The symmetric system is solved by Chebyshev acceleration (rate
    ``(1 - \sqrt{1-\alpha^2})/\alpha`` = 0.56 per sweep at 0.85 instead of 0.85).

    References
    ----------
    .. [1] L. Page, S. Brin, R. Motwani, T. Winograd, "The PageRank citation ranking", 1999.
    .. [2] T. H. Haveliwala, "Topic-sensitive PageRank", WWW 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from ccgraph import KnnGraph
    >>> g = KnnGraph.from_adjacency(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> x = personalized_pagerank(g, [1, 0, 0])
    >>> round(float(x.sum()), 6), bool(x[0] > x[2])
    (1.0, True)
    """
    adj, _ = as_adjacency(graph)
    v = _as_vectors(personalization, adj.shape[0], name="personalization", single=True)
    # one column: reordering for locality costs more than it saves
    out = personalized_pagerank_batch(
        graph if isinstance(graph, KnnGraph) else adj,
        v,
        alpha=alpha,
        tol=tol,
        max_iter=max_iter,
        reorder="none",
    )
    return out[:, 0]


def personalized_pagerank_batch(
    graph: Any,
    personalizations: Any,
    *,
    alpha: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 1000,
    dtype: str = "float64",
    block: int = 64,
    reorder: str = "auto",
) -> np.ndarray:
    """Personalized PageRank for many restart distributions at once.

    Parameters
    ----------
    graph
        As in :func:`personalized_pagerank`.
    personalizations
        ``[n, m]`` dense array or scipy sparse matrix; column ``j`` is one restart distribution
        (normalised to sum 1); each needs a positive weight (an all-zero column raises).
    alpha, tol, max_iter
        As in :func:`personalized_pagerank` (``tol`` applies to each column separately).
    dtype
        Working precision, ``"float64"`` (default; needed for ``tol`` below ~1e-7) or
        ``"float32"``.
    block
        Columns solved together (one sparse x dense product per sweep); converged columns leave
        the block.
    reorder
        ``"auto"``, ``"rcm"`` or ``"none"`` (node order for cache locality; same results).

    Returns
    -------
    numpy.ndarray
        ``float64 [n, m]``; each column sums to 1.

    Notes
    -----
    See :func:`personalized_pagerank`; every column is solved by the same Chebyshev sweep with
    its own stopping test, so a column's result does not depend on the others.

    Examples
    --------
    >>> import numpy as np
    >>> from ccgraph import KnnGraph
    >>> g = KnnGraph.from_adjacency(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> x = personalized_pagerank_batch(g, np.eye(3))
    >>> np.allclose(x.sum(axis=0), 1.0)
    True
    """
    alpha = check_float(
        "alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    tol = check_float("tol", tol, low=0.0, low_inclusive=False)
    max_iter = check_int("max_iter", max_iter, low=1)
    block = check_int("block", block, low=1)
    check_choice("reorder", reorder, ("auto", "rcm", "none"))
    wdtype = resolve_dtype(dtype)
    adj, _ = as_adjacency(graph)
    n = adj.shape[0]
    v = _as_vectors(personalizations, n, name="personalizations")
    op = build_operator(adj, alpha=alpha, dtype=wdtype, reorder=reorder)
    return ppr_solve(op, v, tol=tol, max_iter=max_iter, block=block)


def ppr_solve(
    op: Operator,
    v: np.ndarray | sp.csc_matrix,
    *,
    tol: float,
    max_iter: int,
    block: int,
) -> np.ndarray:
    """Normalised ``y = (I - alpha P^T)^{-1} v`` per column (``v`` dense or CSC)."""
    import warnings

    from ccgraph.exceptions import ConvergenceWarning

    n, m = v.shape
    alpha = op.alpha
    sums = np.asarray(v.sum(axis=0), dtype=np.float64).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    isolated = op.sqrt_d == 0
    inv_sqrt = np.divide(1.0, op.sqrt_d, out=np.zeros(n), where=~isolated)
    # L1 change of one power step on the normalised PageRank vector x = (1 - alpha) y:
    weights = op.to_inner((1.0 - alpha) * op.sqrt_d)
    out = np.zeros((n, m))
    bad = 0
    for start in range(0, m, block):
        cols = np.arange(start, min(m, start + block))
        if sp.issparse(v):
            vb = sp.csr_matrix(v[:, cols] @ sp.diags(scale[cols]))
            rhs = op.to_inner(sp.diags(inv_sqrt) @ vb)
            out[np.ix_(isolated, cols)] = vb[isolated].toarray()
        else:
            vb = v[:, cols] * scale[cols]
            rhs = op.to_inner(vb * inv_sqrt[:, None])
            if np.count_nonzero(rhs) < 0.05 * rhs.size:
                rhs = sp.csr_matrix(rhs)
            else:
                rhs = rhs.astype(op.dtype)
            out[np.ix_(isolated, cols)] = vb[isolated]

        def done(idx: np.ndarray, vals: np.ndarray, cols: np.ndarray = cols) -> None:
            keep = out[isolated][:, cols[idx]]
            out[:, cols[idx]] = op.to_outer(vals) * op.sqrt_d[:, None]
            out[np.ix_(isolated, cols[idx])] = keep

        _, conv = solve(
            op,
            rhs,
            thresholds=np.full(len(cols), tol),
            max_iter=max_iter,
            # relative: near alpha = 1 the early iterates are far below their final sum
            # (1 / (1 - alpha)), so an absolute test would stop after one sweep
            criterion="rel_l1",
            weights=weights,
            on_done=done,
        )
        bad += int((~conv[sums[cols] > 0]).sum())
    if bad:
        warnings.warn(
            f"personalized PageRank: {bad} of {m} columns did not reach tol={tol} in "
            f"max_iter={max_iter} sweeps",
            ConvergenceWarning,
            stacklevel=3,
        )
    tot = out.sum(axis=0)
    np.divide(out, tot, out=out, where=tot > 0)
    return out


def _as_vectors(x: Any, n: int, *, name: str, single: bool = False) -> np.ndarray | sp.csc_matrix:
    """Return validated restart vectors ``[n, m]``: CSC if ``x`` is sparse, else float64."""
    if sp.issparse(x):
        arr: Any = sp.csc_matrix(x, dtype=np.float64)
        if single and arr.shape[0] == 1:
            arr = arr.T.tocsc()
        data = arr.data
    else:
        arr = np.asarray(x, dtype=np.float64)
        if single:
            arr = arr.reshape(-1, 1) if arr.ndim == 1 or 1 in arr.shape else arr
        data = arr
    if single and arr.ndim == 2 and arr.shape[1] != 1:
        raise InputError(
            f"`{name}` must be one restart vector of length {n}; got shape {arr.shape}: for "
            "one distribution per column use personalized_pagerank_batch"
        )
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InputError(f"`{name}` must have {n} rows (one per node); got shape {arr.shape}")
    if not np.isfinite(data).all() or (data < 0).any():
        raise InputError(f"`{name}` must be finite and non-negative")
    if single and not data.sum() > 0:
        raise InputError(f"`{name}` is all zero; give at least one positive restart weight")
    if not single:
        empty = np.flatnonzero(~(np.asarray(arr.sum(axis=0)).ravel() > 0))
        if len(empty):
            raise InputError(
                f"`{name}` has {len(empty)} all-zero columns (first: column {int(empty[0])}); "
                "give each column at least one positive restart weight, or drop it"
            )
    return arr


def local_ppr(
    graph: Any,
    seeds: Any,
    *,
    alpha: float = 0.85,
    epsilon: float = 1e-4,
) -> sp.csr_array:
    r"""Approximate personalized PageRank of one seed set by local push.

    Parameters
    ----------
    graph
        As in :func:`personalized_pagerank`.
    seeds
        Node positions (ints) or a restart vector of length ``n`` (dense or sparse), normalised
        to sum 1.
    alpha
        Probability of following an edge; ``1 - alpha`` restarts (at least
        :data:`MIN_PUSH_RESTART`).
    epsilon
        Residual threshold per unit of degree: pushing stops when every node ``u`` has
        residual ``r_u < epsilon * d_u`` (weighted degree; 1 for isolated nodes).

    Returns
    -------
    scipy.sparse.csr_array
        ``[1, n]`` approximate PageRank ``p``; it touches only nodes near the seeds.

    Notes
    -----
    Andersen-Chung-Lang push with restart ``1 - alpha`` (non-lazy walk). Invariant:
    ``ppr(v) = p + ppr(r)``. Pushing node ``u`` moves ``(1 - alpha) r_u`` into ``p_u`` and
    spreads ``alpha r_u w_uv / d_u`` to the residuals of its neighbours (an isolated node sends
    it back to the seeds, as :func:`personalized_pagerank` does). Hence ``p <= ppr(v)``
    entrywise and ``||ppr(v) - p||_1 = ||r||_1 < epsilon * vol(touched nodes)``; the work is
    ``O(1 / (epsilon (1 - alpha)))`` pushes, independent of the graph size.

    References
    ----------
    .. [1] R. Andersen, F. Chung, K. Lang, "Local graph partitioning using PageRank vectors",
       FOCS 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from ccgraph import KnnGraph
    >>> g = KnnGraph.from_adjacency(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> p = local_ppr(g, [0], epsilon=1e-6)
    >>> p.shape, round(float(p.sum()), 4)
    ((1, 3), 1.0)
    """
    alpha = check_float(
        "alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    epsilon = check_float("epsilon", epsilon, low=0.0, high=1.0, low_inclusive=False)
    if 1.0 - alpha < MIN_PUSH_RESTART:
        # each push keeps only (1 - alpha) of a residual: ~1 / (1 - alpha) rounds of pushes
        raise ParameterError(
            f"`alpha` must be at most {1.0 - MIN_PUSH_RESTART} for local_ppr (the push does "
            f"about 1 / (1 - alpha) rounds of work); got {alpha}: use personalized_pagerank"
        )
    adj, _ = as_adjacency(graph)
    n = adj.shape[0]
    seed_idx, seed_w = _seed_vector(seeds, n)
    from ccgraph.propagate import _kernels

    nodes, vals = _kernels.push(
        adj.indptr,
        adj.indices,
        adj.data,
        seed_idx,
        seed_w,
        float(alpha),
        float(epsilon),
        *_workspace(n),
    )
    order = np.argsort(nodes)
    cols, vals = nodes[order], vals[order]
    return sp.csr_array((vals, (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, n))


_LOCAL = threading.local()


def _workspace(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-thread push workspaces of size ``n`` (the kernel restores them after each query)."""
    ws = getattr(_LOCAL, "push", None)
    if ws is None or len(ws[0]) != n:
        ws = (np.zeros(n), np.zeros(n), np.full(n, -1.0), np.zeros(n, dtype=bool))
        _LOCAL.push = ws
    return ws


def _seed_vector(seeds: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    if sp.issparse(seeds):
        s = sp.csr_array(seeds).reshape(1, -1) if seeds.shape[0] != 1 else sp.csr_array(seeds)
        if s.shape[1] != n:
            raise InputError(f"`seeds` vector must have length {n}; got shape {seeds.shape}")
        idx, w = s.indices.astype(np.int64), s.data.astype(np.float64)
    else:
        arr = np.asarray(seeds)
        if arr.dtype.kind not in "iufb":
            raise InputError(
                "`seeds` must be integer positions (rows of graph.ids), a weight vector of "
                f"length {n} or a sparse vector; got {arr.dtype} values {arr.ravel()[:3].tolist()}"
                " (map ids to positions, e.g. with pandas.Index(graph.ids).get_indexer(ids))"
            )
        if arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and arr.ndim == 1 and arr.size != n):
            flat = arr.ravel()
            frac = flat[flat != np.round(flat)] if arr.dtype.kind == "f" else flat[:0]
            if len(frac):
                raise InputError(
                    f"`seeds` positions must be whole numbers (rows of graph.ids); got "
                    f"{frac[0].item()} in {flat[:5].tolist()} (a weight vector needs length {n})"
                )
            idx = np.unique(arr.astype(np.int64).ravel())
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
                raise InputError(
                    f"`seeds` positions must be in [0, {n - 1}]; got {arr.tolist()[:5]}"
                )
            w = np.ones(idx.size)
        else:
            arr = arr.astype(np.float64).ravel()
            if arr.size != n:
                raise InputError(f"`seeds` vector must have length {n}; got {arr.size}")
            idx = np.flatnonzero(arr)
            w = arr[idx]
    for bad, what in ((~np.isfinite(w), "not finite"), (w < 0, "negative")):
        if bad.any():
            raise InputError(
                f"`seeds` restart weight at position {idx[bad][0]} is {w[bad][0]} ({what}; "
                f"{int(bad.sum())} such weight(s), at positions {idx[bad][:5].tolist()}); "
                "restart weights must be finite and non-negative (0 for a non-seed)"
            )
    if w.size == 0 or not w.sum() > 0:
        raise InputError("`seeds` must hold at least one positive, finite restart weight")
    return idx, w / w.sum()
