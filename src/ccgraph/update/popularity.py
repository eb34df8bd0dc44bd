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

from typing import Any

import numpy as np
import pandas as pd

from ccgraph.containers import KnnGraph, Popularity
from ccgraph.exceptions import InputError

__all__ = ["popularity_constants", "standardize_with", "update_popularity"]


def popularity_constants(items: pd.DataFrame) -> dict[str, float]:
    """Per-provider ``C`` recovered from a run's ``items`` table (providers with ``0 < p < 1``)."""
    need = {"provider", "popularity_observed", "popularity", "popularity_source"}
    if not need <= set(items.columns):
        return {}
    obs = items[items["popularity_source"].astype(str) == "observed"]
    x = pd.to_numeric(obs["popularity_observed"], errors="coerce").to_numpy(np.float64)
    p = pd.to_numeric(obs["popularity"], errors="coerce").to_numpy(np.float64)
    ok = np.isfinite(x) & np.isfinite(p) & (x > 0) & (p > 0) & (p < 1)
    c = x[ok] * (1.0 - p[ok]) / p[ok]
    prov = obs["provider"].fillna("").astype(str).to_numpy()[ok]
    frame = pd.DataFrame({"provider": prov, "c": c})
    return {str(k): float(v) for k, v in frame.groupby("provider")["c"].median().items()}


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
    prov = pd.Series(provider).fillna("").astype(str).to_numpy()
    out = np.full(len(x), np.nan)
    known = np.isin(prov, list(constants)) & np.isfinite(x)
    if known.any():
        c = np.array([constants[p] for p in prov[known]])
        out[known] = np.divide(
            x[known], x[known] + c, out=np.zeros(int(known.sum())), where=x[known] + c > 0
        )
    rest = ~np.isin(prov, list(constants))
    fresh: dict[str, float] = {}
    if (rest & np.isfinite(x)).any():
        out[rest] = standardize_popularity(x[rest], prov[rest], percentile=percentile, r=r)
        for p in np.unique(prov[rest & np.isfinite(x)]):
            m = (prov == p) & np.isfinite(x) & (x > 0) & (out > 0) & (out < 1)
            if m.any():
                fresh[str(p)] = float(np.median(x[m] * (1 - out[m]) / out[m]))
    return out, fresh


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
) -> Popularity:
    r"""Standardise with the run's constants and infer popularity for unobserved items.

    ``keep`` (one value per item, NaN elsewhere) gives standardised values to reuse as they
    are: the run's values of observed items whose raw count did not change, so they stay
    bit-identical (recomputing them from the recovered constants may differ in the last bit).

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
    from ccgraph.propagate import personalized_pagerank_batch
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
    deg = np.asarray(adj.sum(axis=1), dtype=np.float64).ravel()
    isolated = deg == 0
    v = xx * deg[:, None]
    f = (1.0 - alpha) * xx.copy()
    sums = v.sum(axis=0)
    if (sums > 0).any():
        ppr = personalized_pagerank_batch(adj, v, alpha=alpha, tol=tol)
        scale = sums / (1.0 - alpha)  # (I - a P^T)^{-1} v sums to this (no isolated mass)
        y = ppr * scale[None, :]
        inv = np.divide(1.0, deg, out=np.zeros(n), where=~isolated)
        f[~isolated] = ((1.0 - alpha) * y * inv[:, None])[~isolated]
    value, source, confidence = popularity_from_propagation(f, std, alpha=alpha)
    params: dict[str, Any] = {
        "alpha": alpha,
        "tol": tol,
        "percentile": percentile,
        "r": r,
        "constants": "kept from the previous run",
        "fresh_providers": sorted(fresh),
    }
    return Popularity(
        value, np.where(np.isfinite(x), x, np.nan), source, confidence, graph.ids, params
    )
