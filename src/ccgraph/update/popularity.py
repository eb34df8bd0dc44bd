"""Popularity after an update: the run's standardisation constants kept, inference redone.

Openverse standardises a raw count ``x`` as ``x / (x + C)`` with one constant ``C`` per provider
(:func:`ccgraph.propagate.standardize_popularity`). Recomputing ``C`` on every update would move
the standardised value of every observed item a little each day; an update instead recovers each
provider's ``C`` from the run (``C = x (1 - p) / p`` for any observed item with ``0 < p < 1``)
and keeps it, so observed values never change. Providers the run could not calibrate (new
ones, or only zeros so far) get ``C`` from their observed values after the update, as a full
run would. The graph inference is the same propagation as
:func:`ccgraph.propagate.infer_popularity`, computed through
:func:`ccgraph.propagate.personalized_pagerank_batch`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.containers import KnnGraph, Popularity
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from ccgraph.config import Config
    from ccgraph.containers import Catalog, RunResult

__all__ = [
    "popularity_constants",
    "previous_propagation",
    "propagate_from",
    "standardize_with",
    "start_popularity",
    "update_popularity",
]


def popularity_constants(items: pd.DataFrame) -> dict[str, float]:
    """Per-provider ``C`` recovered from a run's ``items`` table (providers with ``0 < p < 1``)."""
    need = {"provider", "popularity_observed", "popularity", "popularity_source"}
    if not need <= set(items.columns):
        return {}
    rows = np.flatnonzero(_equals(items["popularity_source"], "observed"))
    x = pd.to_numeric(items["popularity_observed"], errors="coerce").to_numpy(np.float64)[rows]
    p = pd.to_numeric(items["popularity"], errors="coerce").to_numpy(np.float64)[rows]
    ok = np.isfinite(x) & np.isfinite(p) & (x > 0) & (p > 0) & (p < 1)
    if not ok.any():  # e.g. a run made with popularity disabled: every provider is fresh
        return {}
    c = x[ok] * (1.0 - p[ok]) / p[ok]
    prov = items["provider"].iloc[rows[ok]].fillna("").astype(str)
    codes, names = pd.factorize(prov, sort=True)  # as groupby's keys
    order = np.argsort(codes, kind="stable")
    groups = np.split(c[order], np.cumsum(np.bincount(codes, minlength=len(names)))[:-1])
    return {str(k): float(np.median(g)) for k, g in zip(names, groups, strict=True)}


def standardize_with(
    raw: np.ndarray,
    provider: np.ndarray,
    constants: dict[str, float],
    *,
    percentile: float,
    r: float,
) -> tuple[np.ndarray, dict[str, float]]:
    """Standardise with known constants; providers without one are standardised afresh.

    Returns the values (NaN where ``raw`` is NaN) and the constants of the fresh providers.
    """
    from ccgraph.propagate import standardize_popularity

    x = np.asarray(raw, dtype=np.float64)
    codes, names = _providers(provider)
    prov = np.asarray(names, dtype=object)[codes]
    const = np.array([constants.get(str(p), np.nan) for p in names], dtype=np.float64)
    has = ~np.isnan(const)[codes]  # the provider has a kept constant
    out = np.full(len(x), np.nan)
    known = has & np.isfinite(x)
    if known.any():
        c = const[codes[known]]
        out[known] = np.divide(
            x[known], x[known] + c, out=np.zeros(int(known.sum())), where=x[known] + c > 0
        )
    rest = ~has
    fresh: dict[str, float] = {}
    if (rest & np.isfinite(x)).any():
        out[rest] = standardize_popularity(x[rest], prov[rest], percentile=percentile, r=r)
        for p in np.unique(prov[rest & np.isfinite(x)]):
            m = (prov == p) & np.isfinite(x) & (x > 0) & (out > 0) & (out < 1)
            if m.any():
                fresh[str(p)] = float(np.median(x[m] * (1 - out[m]) / out[m]))
    return out, fresh


def _providers(provider: np.ndarray) -> tuple[np.ndarray, Any]:
    """``pd.factorize`` of the providers as strings (missing: ``""``).

    An array of strings only (what :func:`ccgraph._late_stages.popularity_inputs` gives) is
    factorised as it is; anything else goes through a string Series first.
    """
    if isinstance(provider, np.ndarray) and provider.dtype.kind in "OU":
        codes, names = pd.factorize(provider)
        if not (codes < 0).any() and all(type(x) is str for x in names):
            return codes, names
    return pd.factorize(pd.Series(provider).fillna("").astype(str))


def update_popularity(
    graph: KnnGraph,
    raw: np.ndarray,
    provider: np.ndarray,
    constants: dict[str, float],
    *,
    alpha: float,
    tol: float,
    percentile: float,
    r: float,
    keep: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> Popularity:
    r"""Standardise with the run's constants and infer popularity for unobserved items.

    ``keep`` (one value per item, NaN elsewhere) gives standardised values to reuse as they
    are: the run's values of observed items whose raw count did not change, so they stay
    bit-identical (recomputing them from the recovered constants may differ in the last bit).
    ``start`` (``[n, 2]``, NaN where unknown) is an initial guess of ``F`` — the run's solution
    (:func:`previous_propagation`) — from which the solve starts; it stops by the same rule as
    a cold solve, so only the number of sweeps depends on it.

    Notes
    -----
    As in :func:`ccgraph.propagate.infer_popularity`, with ``X = [1_O p, 1_O]`` and
    ``P = D^{-1} W``, ``F = (1 - \alpha)(I - \alpha P)^{-1} X``, value ``F_0 / F_1`` and
    confidence ``F_1 / \alpha``. Since ``P^T = D P D^{-1}``,
    ``(I - \alpha P)^{-1} X = D^{-1} (I - \alpha P^T)^{-1} D X``, and the right-hand factor is
    personalized PageRank with restart vectors ``D X`` (rescaled: PageRank returns unit sums,
    and ``(I - \alpha P^T)^{-1}`` multiplies the sum over non-isolated nodes by
    ``1 / (1 - \alpha)``). Isolated nodes keep ``F = (1 - \alpha) X``.
    """
    from ccgraph.propagate.popularity import popularity_from_propagation

    adj = graph.adjacency
    n = adj.shape[0]
    x = np.asarray(raw, dtype=np.float64)
    if len(x) != n:
        raise InputError(f"`raw` has {len(x)} entries but the graph has {n} nodes")
    std, fresh = standardize_with(x, provider, constants, percentile=percentile, r=r)
    if keep is not None:
        kept = np.isfinite(np.asarray(keep, dtype=np.float64)) & np.isfinite(std)
        std[kept] = np.asarray(keep, dtype=np.float64)[kept]
    obs = np.isfinite(std)
    xx = np.column_stack([np.where(obs, std, 0.0), obs.astype(np.float64)])
    f, sweeps = propagate_from(adj, xx, alpha=alpha, tol=tol, start=start)
    value, source, confidence = popularity_from_propagation(f, std, alpha=alpha)
    params: dict[str, Any] = {
        "alpha": alpha,
        "tol": tol,
        "percentile": percentile,
        "r": r,
        "constants": "kept from the previous run",
        "fresh_providers": sorted(fresh),
        "sweeps": sweeps,
        "warm_start": start is not None,
    }
    return Popularity(
        value, np.where(np.isfinite(x), x, np.nan), source, confidence, graph.ids, params
    )


def start_popularity(
    old: RunResult,
    catalog: Catalog,
    graph: KnnGraph,
    ids: np.ndarray,
    changed: np.ndarray,
    cfg: Config,
) -> Future[Popularity]:
    """:func:`update_popularity` of an update, started on a worker thread.

    The raw counts (with their outlier warnings) are read on the calling thread; the run's
    constants, values and solution, and the propagation, whose sweeps release the GIL, on
    the worker (which only reads the run), so the caller can build clusters and tags
    meanwhile. ``changed`` lists the items whose raw count may differ from the run's (new,
    re-embedded, edited).
    """
    from ccgraph._lane import POPULARITY
    from ccgraph._late_stages import popularity_inputs
    from ccgraph.update._threads import start

    p = cfg.propagate.popularity
    raw, provider = popularity_inputs(catalog, percentile=p.percentile)

    def job() -> Popularity:
        from ccgraph.update._calls import previous_popularity

        keep, start = previous_popularity(old, ids, changed, alpha=p.alpha)
        return update_popularity(
            graph,
            raw,
            provider,
            popularity_constants(old.items),
            alpha=p.alpha,
            tol=p.tol,
            percentile=p.percentile,
            r=p.r,
            keep=keep,
            start=start,
        )

    return start(job, name="popularity", priority=POPULARITY)


def previous_propagation(items: pd.DataFrame, rows: np.ndarray, *, alpha: float) -> np.ndarray:
    """The run's ``F = [num, den]`` read back from its ``items`` table, at ``rows`` (-1: new).

    An inferred item has ``den = alpha * confidence`` and ``num = value * den`` (neither is
    clipped: ``den <= alpha`` and ``num <= den`` off the observed items); an item without
    popularity has ``F = 0``. Observed items (whose ``F`` the table does not keep) and new
    items are NaN.
    """
    source = items["popularity_source"]
    inferred = _equals(source, "inferred")
    none = _equals(source, "none") | source.isna().to_numpy(dtype=bool)  # missing: none
    value = pd.to_numeric(items["popularity"], errors="coerce").to_numpy(np.float64)
    conf = pd.to_numeric(items["popularity_confidence"], errors="coerce").to_numpy(np.float64)
    den = np.where(inferred, alpha * conf, np.where(none, 0.0, np.nan))
    num = np.where(inferred, value * den, den)
    f = np.column_stack([num, den])
    if not len(f):
        return np.full((len(rows), 2), np.nan)
    out = f[np.maximum(rows, 0)]
    out[rows < 0] = np.nan
    return out


def _equals(column: pd.Series, value: str) -> np.ndarray:
    """Rows of ``column`` equal to ``value`` (missing values: False), one vectorised compare."""
    return (column == value).to_numpy(dtype=bool, na_value=False)


def propagate_from(
    adjacency: Any,
    x: np.ndarray,
    *,
    alpha: float,
    tol: float,
    start: np.ndarray | None = None,
    max_iter: int = 1000,
    start_sweeps: int = 5,
) -> tuple[np.ndarray, int]:
    r"""``F = (1 - alpha)(I - alpha P)^{-1} X`` per column, from an initial guess.

    Solved as personalized PageRank is (:func:`ccgraph.propagate.personalized_pagerank_batch`):
    ``z = D^{1/2} F / (1 - alpha)`` solves ``(I - alpha S) z = D^{1/2} X``; from the guess
    ``z_0`` the correction solves the same system with the residual of ``z_0`` as right-hand
    side. The answer is accepted when, for each column, ``sum_u (1 - alpha) sqrt(d_u)
    |residual_u|`` of the answer itself, the L1 change of one power step on the PageRank
    vector with restart ``D X``, is below ``tol * sum_u d_u X_u`` (the cold solve's rule).
    Rows of ``start`` that are NaN are estimated by ``start_sweeps`` Jacobi sweeps over those
    rows, the others held fixed (exact after one sweep for a row whose neighbours are all
    known). Isolated nodes keep ``F = (1 - alpha) X``.

    Returns ``F`` and the iterations used (the most over the columns).

    Notes
    -----
    The change an update makes (new nodes, new edges, changed degrees) moves the solution
    everywhere (its L1 mass falls like ``alpha^h`` with the hop distance ``h``), so the
    correction is solved globally: by conjugate gradients on ``I - M``, ``M = alpha S``
    (symmetric positive definite), preconditioned by symmetric Gauss-Seidel
    ``(I - L)(I - L^T)`` (``L`` the strict lower triangle of ``M``), in Eisenstat's form, which
    costs one pass over ``M`` per iteration. On the 100k update this takes 16 iterations
    where the Chebyshev sweeps took 31, from the same start. The iterations aim
    :data:`CG_MARGIN` times below the threshold, then the residual of the answer is computed
    afresh and checked (another round if it fails). A graph with self-loops (a diagonal in
    ``M``), or other than two columns, takes the Chebyshev sweeps of
    :func:`ccgraph.propagate._solver.solve`.

    References
    ----------
    .. [1] S. C. Eisenstat, "Efficient implementation of a class of preconditioned conjugate
       gradient methods", SIAM J. Sci. Stat. Comput. 2(1), 1-4, 1981.
    .. [2] Y. Saad, *Iterative Methods for Sparse Linear Systems*, 2nd ed., SIAM, 2003,
       sections 9.2 (preconditioned CG) and 10.2 (SSOR).
    """
    from ccgraph.propagate._graph import build_operator

    adj = sp.csr_matrix(adjacency)
    xx = np.asarray(x, dtype=np.float64)
    n, m = xx.shape
    op = build_operator(adj, alpha=alpha, dtype=np.dtype(np.float64), reorder="none")
    sd = op.sqrt_d
    isolated = sd == 0
    f = (1.0 - alpha) * xx.copy()
    b = sd[:, None] * xx
    sums = (sd * sd) @ xx
    if not (sums > 0).any():
        return f, 0
    empty = sums <= 0  # no restart mass: F = (1 - alpha) X = 0 off the isolated nodes
    z0 = np.zeros((n, m))
    if start is not None:
        guess = np.array(start, dtype=np.float64)
        unknown = ~np.isfinite(guess).all(axis=1)
        guess[unknown] = 0.0
        rows = np.flatnonzero(unknown & ~isolated)
        if len(rows):  # Jacobi sweeps on the unknown rows: F = (1 - alpha) X + alpha P F
            _jacobi(adj, rows, 1.0 / (sd[rows] * sd[rows]), xx, guess, alpha, start_sweeps)
        z0 = sd[:, None] * guess / (1.0 - alpha)
        z0[:, empty] = 0.0
    thresholds = np.where(empty, np.inf, tol * sums)
    z, n_iter = _solve_sgs(op, b, z0, thresholds, weights=(1.0 - alpha) * sd, max_iter=max_iter)
    if z is None:  # an operator with a diagonal: the Chebyshev sweeps of a cold solve
        z, n_iter = _solve_chebyshev(op, b, z0, thresholds, alpha=alpha, max_iter=max_iter)
    inv_sqrt = np.divide(1.0, sd, out=np.zeros(n), where=~isolated)
    f[~isolated] = ((1.0 - alpha) * z * inv_sqrt[:, None])[~isolated]
    return f, n_iter


#: The conjugate gradients aim this many times below the threshold: their error is spread
#: otherwise than the Chebyshev sweeps' (larger on a few rows at the same residual), and
#: the margin (one or two iterations) keeps the values as close to the exact solution.
CG_MARGIN = 30.0


def _solve_sgs(
    op: Any,
    b: np.ndarray,
    z0: np.ndarray,
    thresholds: np.ndarray,
    *,
    weights: np.ndarray,
    max_iter: int,
) -> tuple[np.ndarray | None, int]:
    """``(I - M) z = b`` from ``z0`` by Gauss-Seidel-preconditioned CG, checked on the answer.

    Each round computes the residual of ``z`` (stopping when every column's weighted L1 norm
    is below its threshold) and adds the correction of
    :func:`ccgraph.update._pop_kernels.sgs_cg`. Returns ``(None, 0)`` unless there are two
    columns and ``M`` has no diagonal (the splitting needs ``M = L + L^T``).
    """
    from ccgraph.update._pop_kernels import residual, sgs_cg, split_rows

    mm = sp.csr_matrix(op.m)
    if z0.shape[1] != 2:
        return None, 0
    mid = split_rows(mm.indptr, mm.indices)  # also checks the indices are strictly increasing
    if len(mid) and mid[0] < 0:  # unsorted or duplicate indices: a canonical copy
        mm = mm.copy()
        mm.sum_duplicates()
        mid = split_rows(mm.indptr, mm.indices)
        if len(mid) and mid[0] < 0:  # a diagonal
            return None, 0
    z = np.ascontiguousarray(z0, dtype=np.float64).copy()
    w = np.ascontiguousarray(weights, dtype=np.float64)
    r = np.empty_like(z)
    l1 = np.empty(z.shape[1])
    total = 0
    while True:
        residual(mm.indptr, mm.indices, mm.data, b, z, w, r, l1)
        todo = l1 >= thresholds
        if not todo.any() or total >= max_iter:
            return z, total
        aim = np.where(todo, np.asarray(thresholds, dtype=np.float64) / CG_MARGIN, np.inf)
        e, iters = sgs_cg(mm.indptr, mm.indices, mm.data, mid, r, w, aim, max_iter - total)
        z += e  # zero in the columns already done
        total += max(1, int(iters.max(initial=0)))


def _solve_chebyshev(
    op: Any, b: np.ndarray, z0: np.ndarray, thresholds: np.ndarray, *, alpha: float, max_iter: int
) -> tuple[np.ndarray, int]:
    """``(I - M) z = b`` from ``z0`` by the Chebyshev sweeps of a cold solve."""
    from ccgraph.propagate._solver import solve

    rhs = b - (z0 - op.m @ z0)
    z = z0.copy()

    def done(cols: np.ndarray, vals: np.ndarray) -> None:
        z[:, cols] += vals

    n_iter, _ = solve(
        op,
        np.ascontiguousarray(rhs),
        thresholds=thresholds,
        max_iter=max_iter,
        criterion="l1",
        weights=(1.0 - alpha) * op.sqrt_d,
        on_done=done,
        n_threads=1,  # a worker beside the main thread: pool hand-offs would cost more CPU
    )
    return z, int(n_iter.max(initial=0))


def _jacobi(
    adj: sp.csr_matrix,
    rows: np.ndarray,
    scale: np.ndarray,
    x: np.ndarray,
    guess: np.ndarray,
    alpha: float,
    sweeps: int,
) -> None:
    """``sweeps`` Jacobi sweeps ``guess[rows] = (1 - alpha) x[rows] + alpha P[rows] guess``.

    ``P[rows] = diags(scale) @ adj[rows]``; in place. A canonical ``adj`` (sorted indices, no
    duplicates) takes one kernel call with the arithmetic of the sparse products
    (:func:`ccgraph.update._pop_kernels.jacobi_rows`).
    """
    if adj.has_canonical_format and guess.dtype == np.float64:
        from ccgraph.update._pop_kernels import jacobi_rows

        jacobi_rows(
            adj.indptr, adj.indices, adj.data, rows.astype(np.int64), scale, x, guess, alpha, sweeps
        )
        return
    p_sub = sp.diags(scale) @ sp.csr_matrix(adj[rows])
    for _ in range(sweeps):
        guess[rows] = (1.0 - alpha) * x[rows] + alpha * (p_sub @ guess)
