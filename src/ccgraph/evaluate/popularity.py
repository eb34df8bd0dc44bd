"""Held-out popularity: hide observed values, infer them, rank-correlate with the truth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_float, check_int
from ccgraph.containers import KnnGraph
from ccgraph.evaluate.metrics import rank_correlation
from ccgraph.exceptions import InputError

__all__ = ["evaluate_popularity", "knn_mean_popularity", "provider_median_popularity"]


def knn_mean_popularity(graph: KnnGraph, standardized: np.ndarray) -> np.ndarray:
    """Edge-weighted mean of the neighbours' observed (standardised) popularity; NaN if none."""
    a = graph.adjacency
    known = np.isfinite(standardized)
    v = np.where(known, standardized, 0.0)
    num = a @ v
    den = a @ known.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def provider_median_popularity(standardized: np.ndarray, provider: np.ndarray) -> np.ndarray:
    """The median observed (standardised) popularity of the item's provider."""
    s = pd.Series(standardized)
    med = s.groupby(np.asarray(provider, dtype=str)).transform("median")
    return med.to_numpy(np.float64)


def _bootstrap_corr(
    pred: np.ndarray, truth: np.ndarray, n_boot: int, gen: np.random.Generator
) -> dict[str, Any]:
    ok = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[ok], truth[ok]
    point = rank_correlation(p, t)
    out: dict[str, Any] = {**point, "coverage": float(ok.mean()) if len(ok) else float("nan")}
    if len(p) < 5:
        return out
    idx = gen.integers(0, len(p), size=(n_boot, len(p)))
    for name in ("spearman", "kendall"):
        vals = np.array([rank_correlation(p[i], t[i])[name] for i in idx])
        vals = vals[np.isfinite(vals)]
        if len(vals):
            out[f"{name} 95% CI"] = [
                float(np.quantile(vals, 0.025)),
                float(np.quantile(vals, 0.975)),
            ]
    return out


def evaluate_popularity(
    graph: KnnGraph,
    raw: np.ndarray,
    provider: np.ndarray,
    *,
    fraction: float = 0.2,
    n_boot: int = 500,
    rng: RngLike = None,
    infer_kwargs: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    r"""Hide the observed popularity of a share of the items and score its inference.

    Parameters
    ----------
    graph
        The similarity graph (row order of ``raw``).
    raw
        Raw popularity signal per item, NaN where unobserved.
    provider
        Provider per item (Openverse standardises per provider).
    fraction
        Share of the observed items whose value is hidden.
    n_boot
        Bootstrap resamples (over the hidden items) of the rank correlations.
    rng
        Seed or Generator.
    infer_kwargs
        Keyword arguments of :func:`ccgraph.propagate.infer_popularity`.

    Returns
    -------
    dict
        Per method (``ppr`` = ccgraph's :func:`~ccgraph.propagate.infer_popularity`,
        ``knn_mean``, ``provider_median``): Spearman's ρ and Kendall's τ-b between the
        prediction and the hidden standardised value, their 95 % bootstrap intervals, ``n``
        and ``coverage`` (share of hidden items that got a prediction).

    Notes
    -----
    The truth is the Openverse standardisation of the observed value,
    :math:`p = x / (x + C)`, :math:`C = \frac{1-r}{r} V_{provider}`, computed from all observed
    values (an evaluation-side choice: the methods only see the visible values).
    """
    from ccgraph.propagate import infer_popularity, standardize_popularity

    fraction = check_float(
        "fraction", fraction, low=0, high=1, low_inclusive=False, high_inclusive=False
    )
    n_boot = check_int("n_boot", n_boot, low=1)
    x = np.asarray(raw, dtype=np.float64)
    prov = np.asarray(provider, dtype=str)
    if x.shape != (graph.n_items,) or prov.shape != x.shape:
        raise InputError(f"`raw` and `provider` need {graph.n_items} entries each")
    gen = as_generator(rng)
    observed = np.flatnonzero(np.isfinite(x))
    if len(observed) < 10:
        raise InputError(f"only {len(observed)} items have observed popularity; need 10")
    hidden = gen.choice(observed, size=max(1, round(fraction * len(observed))), replace=False)
    visible_raw = x.copy()
    visible_raw[hidden] = np.nan
    truth = standardize_popularity(x, prov)[hidden]
    vis_std = standardize_popularity(visible_raw, prov)
    inferred = infer_popularity(graph, visible_raw, prov, **(infer_kwargs or {}))
    preds = {
        "ppr": np.asarray(inferred.value, dtype=np.float64)[hidden],
        "knn_mean": knn_mean_popularity(graph, vis_std)[hidden],
        "provider_median": provider_median_popularity(vis_std, prov)[hidden],
    }
    out = {name: _bootstrap_corr(p, truth, n_boot, gen) for name, p in preds.items()}
    out["_split"] = {"hidden": len(hidden), "observed": len(observed)}
    return out
