"""Popularity: Openverse's per-provider standardisation and graph inference for the rest."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ccgraph._logging import timed
from ccgraph._validation import check_float, check_int
from ccgraph.containers import Popularity
from ccgraph.exceptions import ConvergenceWarning, InputError
from ccgraph.propagate._graph import as_adjacency, build_operator, check_alpha_tol, resolve_dtype
from ccgraph.propagate._solver import solve

__all__ = [
    "extreme_outliers",
    "infer_popularity",
    "popularity_from_propagation",
    "standardize_popularity",
]

logger = logging.getLogger(__name__)


def standardize_popularity(
    raw: Any,
    provider: Any,
    *,
    percentile: float = 85.0,
    r: float = 0.85,
) -> np.ndarray:
    r"""Standardise raw popularity signals per provider to 0..1 with Openverse's formula.

    Parameters
    ----------
    raw
        Raw non-negative metric per item (views, usage counts, ...); NaN where absent.
    provider
        Provider name per item; each provider is standardised on its own values.
    percentile
        ``V`` is this percentile (0-100, exclusive) of the provider's observed raw values.
    r
        Openverse's ``r`` in ``C = ((1 - r) / r) V``: the standardised value at ``x = V``.

    Returns
    -------
    numpy.ndarray
        ``float64 [n]`` in [0, 1); NaN where ``raw`` is NaN.

    Notes
    -----
    ``p = x / (x + C)``, ``C = ((1 - r) / r) V``, so an item at its provider's ``percentile``
    scores ``r``. ``V`` is the *discrete* percentile (PostgreSQL ``percentile_disc``, numpy's
    ``inverted_cdf``: an observed value), as in Openverse's catalog SQL. A provider whose ``V`` is
    0 (mostly zeros) uses its smallest positive value instead, so zeros map to 0 and any
    positive count to at least ``r``; a provider with only zeros maps everything to 0.

    References
    ----------
    .. [1] Creative Commons catalog, ``image_popularity_constants`` and
       ``standardized_image_popularity`` (cc-archive/cccatalog, 2020).

    Examples
    --------
    >>> import numpy as np
    >>> p = standardize_popularity([0, 10, 100, np.nan], ["a", "a", "a", "a"], percentile=50)
    >>> np.round(p, 3).tolist()  # V = 10, C = 10 * 0.15 / 0.85
    [0.0, 0.85, 0.983, nan]
    """
    percentile = check_float(
        "percentile", percentile, low=0.0, high=100.0, low_inclusive=False, high_inclusive=False
    )
    r = check_float("r", r, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    x = np.asarray(raw, dtype=np.float64).ravel()
    prov = np.asarray(provider, dtype=object).ravel()
    if len(prov) != len(x):
        raise InputError(f"`provider` has {len(prov)} entries but `raw` has {len(x)}")
    if np.isinf(x).any() or (x[np.isfinite(x)] < 0).any():
        rows = np.flatnonzero(np.isinf(x) | (np.nan_to_num(x, nan=0.0) < 0))[:5].tolist()
        raise InputError(f"`raw` popularity must be non-negative and finite or NaN; rows {rows}")
    out = np.full(len(x), np.nan)
    codes, _ = pd.factorize(pd.Series(prov).fillna("").astype(str))
    for c in np.unique(codes):
        mask = (codes == c) & np.isfinite(x)
        if not mask.any():
            continue
        vals = x[mask]
        v = float(np.percentile(vals, percentile, method="inverted_cdf"))
        if v <= 0:
            pos = vals[vals > 0]
            v = float(pos.min()) if pos.size else 0.0
        out[mask] = _ratio(vals, v, r)
    return out


def _ratio(x: np.ndarray, v: float, r: float) -> np.ndarray:
    """``x / (x + C)`` with ``C = ((1 - r) / r) v`` (0 where both are 0), without overflow.

    Values whose sum could pass the largest float (near 1e308, or a tiny ``r``) are first
    scaled by a power of two, which leaves the ratio as it is; other inputs are not scaled.

    Examples
    --------
    >>> _ratio(np.array([0.0, 1.7e308]), 1.7e308, 0.5).tolist()
    [0.0, 0.5]
    """
    f = (1.0 - r) / r
    top = max(float(x.max(initial=0.0)), v)
    exponent = int(np.frexp(top)[1]) + int(np.frexp(max(f, 1.0))[1])
    if exponent > 1000:  # 2**1000 ~ 1e301: x + C would come near float's max
        scale = float(np.ldexp(1.0, 1000 - exponent))
        x, v = x * scale, v * scale
    den = x + f * v
    return np.divide(x, den, out=np.zeros_like(x), where=den > 0)


_MAX = float(np.finfo(np.float64).max)

#: Within one provider, sorted positive values that jump by more than this factor mark the
#: values above the jump as extreme outliers (real counts on the shared samples jump by < 5x).
OUTLIER_GAP = 1e6


def extreme_outliers(
    raw: Any, provider: Any, *, percentile: float = 85.0
) -> list[tuple[str, np.ndarray, bool]]:
    """Find values far above the rest of their provider's (a sentinel, a unit error, ...).

    Returns one ``(provider, rows, sets_constant)`` per provider with outliers: ``rows`` are
    the positions of the values above the largest jump by more than :data:`OUTLIER_GAP` between
    consecutive sorted positive values; ``sets_constant`` says whether the provider's
    ``percentile`` falls on one of them, which pushes its other items' standardised values
    (:func:`standardize_popularity`) to about 0.

    Examples
    --------
    >>> extreme_outliers([1, 3, 1e30, np.nan], ["a", "a", "a", "a"], percentile=50)
    [('a', array([2]), False)]
    """
    x = np.asarray(raw, dtype=np.float64).ravel()
    prov = pd.Series(np.asarray(provider, dtype=object).ravel()).fillna("").astype(str)
    if len(prov) != len(x):
        raise InputError(f"`provider` has {len(prov)} entries but `raw` has {len(x)}")
    found = []
    for name, rows in prov.groupby(prov, sort=True).indices.items():
        vals = x[rows]
        keep = np.isfinite(vals) & (vals > 0)
        pos, idx = vals[keep], np.asarray(rows)[keep]
        if pos.size < 2:
            continue
        order = np.argsort(pos, kind="stable")
        sorted_pos = pos[order]
        # OUTLIER_GAP * x overflows above ~1.8e302; no float exceeds it, so no jump there
        prev = sorted_pos[:-1]
        room = prev <= _MAX / OUTLIER_GAP
        jumps = np.flatnonzero(room & (sorted_pos[1:] > OUTLIER_GAP * np.where(room, prev, 0.0)))
        if jumps.size == 0:
            continue
        cut = sorted_pos[jumps[-1] + 1]
        finite = vals[np.isfinite(vals)]
        v = float(np.percentile(finite, percentile, method="inverted_cdf"))
        found.append((str(name), np.sort(idx[pos >= cut]), bool(v >= cut)))
    return found


def popularity_from_propagation(
    f: np.ndarray, std: np.ndarray, *, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, source and confidence from the propagated ``F = [num, den]`` (see Notes below).

    Observed items (finite ``std``) keep their value with confidence 1; the others get
    ``num / den`` with confidence ``den / alpha`` where some observed mass reached them.

    Examples
    --------
    >>> v, s, c = popularity_from_propagation(
    ...     np.array([[0.1, 0.2], [0.0, 0.0]]), np.array([np.nan, np.nan]), alpha=0.8)
    >>> v.tolist()[0], s.tolist(), c.tolist()
    (0.5, ['inferred', 'none'], [0.25, 0.0])
    """
    obs = np.isfinite(std)
    num, den = np.maximum(f[:, 0], 0.0), np.maximum(f[:, 1], 0.0)
    reach = den > 1e-12 * max(1.0, float(den.max(initial=0.0)))
    value = np.where(obs, std, np.nan)
    inferred = ~obs & reach
    value[inferred] = np.clip(num[inferred] / den[inferred], 0.0, 1.0)
    # one object array of three strings, picked per item
    source = np.array(["none", "inferred", "observed"], dtype=object)[
        np.where(obs, 2, np.where(inferred, 1, 0))
    ]
    confidence = np.where(obs, 1.0, np.where(inferred, np.clip(den / alpha, 0.0, 1.0), 0.0))
    return value, source, confidence


def infer_popularity(
    graph: Any,
    observed_raw: Any,
    provider: Any,
    *,
    alpha: float = 0.85,
    tol: float = 1e-10,
    percentile: float = 85.0,
    r: float = 0.85,
    max_iter: int = 1000,
    dtype: str = "float64",
) -> Popularity:
    r"""Standardise observed popularity and infer it for the other items over the graph.

    Parameters
    ----------
    graph
        :class:`~ccgraph.KnnGraph` (or a symmetric sparse adjacency) in the items' row order.
    observed_raw
        Raw metric per item, NaN where unobserved.
    provider
        Provider per item (standardisation groups).
    alpha
        Probability of following an edge in the random walk with restart.
    tol
        Max-abs change per sweep at which the propagation stops.
    percentile, r
        As in :func:`standardize_popularity`.
    max_iter
        Sweep cap.
    dtype
        Working precision (``"float64"`` or ``"float32"``).

    Returns
    -------
    Popularity
        ``value`` (0..1; NaN where ``source == "none"``), ``observed`` (raw, NaN where absent),
        ``source`` (``observed``/``inferred``/``none``) and ``confidence`` (1 for observed).

    Notes
    -----
    Let ``O`` be the observed items, ``p_j`` their standardised values and ``Pi`` the
    personalized PageRank matrix (row ``i`` = PPR of a walk restarting at ``i``,
    ``Pi = (1 - alpha)(I - alpha P)^{-1}``, ``P = D^{-1} W``). For an unobserved item ``i``

    .. math:: \hat p_i = \frac{\sum_{j \in O} \Pi_{ij}\, p_j}{\sum_{j \in O} \Pi_{ij}},\qquad
              q_i = \sum_{j \in O} \Pi_{ij},

    the average observed value where a walk from ``i`` stops, weighted by how often it stops
    there. Numerator and denominator for all items at once are two propagations with restart,
    ``F = alpha P F + (1 - alpha) X`` for ``X = [1_O p, 1_O]`` (solved in the symmetric form
    ``D^{1/2} F`` with :mod:`~ccgraph.propagate._solver`). ``source`` is ``inferred`` where
    ``q_i > 0`` (some observed item in its component) and ``none`` otherwise. Because the walk
    stays at ``i`` with probability at least ``1 - alpha``, ``q_i <= alpha`` for unobserved items;
    ``confidence = q_i / alpha`` in [0, 1] is the share of the walk's possible mass that landed
    on observed items.

    Examples
    --------
    >>> import numpy as np
    >>> from ccgraph import KnnGraph
    >>> g = KnnGraph.from_adjacency(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> pop = infer_popularity(g, [10.0, np.nan, 30.0], ["x", "x", "x"])
    >>> pop.source.tolist()
    ['observed', 'inferred', 'observed']
    """
    alpha = check_float(
        "alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    tol = check_float("tol", tol, low=0.0, low_inclusive=False)
    max_iter = check_int("max_iter", max_iter, low=1)
    check_alpha_tol(alpha, tol)
    adj, ids = as_adjacency(graph)
    n = adj.shape[0]
    raw = np.asarray(observed_raw, dtype=np.float64).ravel()
    if len(raw) != n:
        raise InputError(f"`observed_raw` has {len(raw)} entries but the graph has {n} nodes")
    std = standardize_popularity(raw, provider, percentile=percentile, r=r)
    obs = np.isfinite(std)
    with timed("propagate.infer_popularity"):
        op = build_operator(adj, alpha=alpha, dtype=resolve_dtype(dtype), reorder="none")
        x = np.column_stack([np.where(obs, std, 0.0), obs.astype(np.float64)])
        # F = (1-a) D^{-1/2} (I - aS)^{-1} D^{1/2} X: solve for Z = D^{-1/2} F ... in S-form.
        rhs = op.to_inner((1.0 - alpha) * x * op.sqrt_d[:, None]).astype(op.dtype)
        g = np.zeros((n, 2))

        def done(idx: np.ndarray, vals: np.ndarray) -> None:
            g[:, idx] = op.to_outer(vals)

        _, conv = solve(op, rhs, thresholds=np.full(2, tol), max_iter=max_iter, on_done=done)
        if not conv.all():
            warnings.warn(
                f"infer_popularity: the propagation did not reach tol={tol} in "
                f"max_iter={max_iter} sweeps",
                ConvergenceWarning,
                stacklevel=2,
            )
        inv_sqrt = np.divide(1.0, op.sqrt_d, out=np.zeros(n), where=op.sqrt_d > 0)
        f = g * inv_sqrt[:, None]
    isolated = op.sqrt_d == 0
    f[isolated] = (1.0 - alpha) * x[isolated]
    value, source, confidence = popularity_from_propagation(f, std, alpha=alpha)
    params = {
        "alpha": alpha,
        "tol": tol,
        "percentile": percentile,
        "r": r,
        "dtype": dtype,
        "converged": bool(conv.all()),
    }
    return Popularity(
        value,
        np.where(np.isfinite(raw), raw, np.nan),
        source,
        confidence,
        ids if ids is not None else np.arange(n).astype(str),
        params,
    )
