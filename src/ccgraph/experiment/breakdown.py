"""Per-cluster effects of substitution, flagging clusters where it hurts (a bad-cluster signal)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ccgraph.exceptions import DataQualityWarning, InputError

if TYPE_CHECKING:
    from ccgraph.experiment.logcheck import CheckedLog

__all__ = ["benjamini_hochberg", "cluster_breakdown", "cluster_labels", "empty_breakdown"]


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Return Benjamini-Hochberg adjusted p-values (q-values); NaN entries stay NaN.

    Notes
    -----
    With the ``m`` finite p-values sorted, ``q_(i) = min_{j >= i} min(1, m p_(j) / j)``; a
    hypothesis is rejected at false discovery rate ``a`` when ``q < a`` (Benjamini & Hochberg
    1995).

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, np.nan])).round(3).tolist()
    [0.03, 0.04, 0.04, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


def cluster_labels(
    log: pd.DataFrame, *, items: pd.DataFrame | None, cluster_column: str
) -> np.ndarray | None:
    """Cluster of each impression's original item: the log's column, else looked up in items."""
    if cluster_column in log.columns:
        col = log[cluster_column]
    elif items is not None:
        for need in ("id", cluster_column):
            if need not in items.columns:
                raise InputError(
                    f"`items` needs columns 'id' and {cluster_column!r}; {need!r} is missing"
                )
        lookup = pd.Series(
            items[cluster_column].to_numpy(), index=items["id"].astype(str).to_numpy()
        )
        lookup = lookup[~lookup.index.duplicated()]
        col = pd.Series(lookup.reindex(log["original_id"].astype(str).to_numpy()).to_numpy())
    else:
        return None
    labels = col.to_numpy(dtype=object)
    unknown = pd.isna(col).to_numpy()
    if unknown.all():
        raise InputError(f"no impression has a known {cluster_column!r}; check `items` ids")
    if unknown.any():
        warnings.warn(
            f"{int(unknown.sum())} impressions have no cluster; they are left out of "
            "the per-cluster breakdown",
            DataQualityWarning,
            stacklevel=3,
        )
    return labels


def cluster_breakdown(
    log: CheckedLog, labels: np.ndarray, *, fdr: float, min_units: int
) -> pd.DataFrame:
    """Per-cluster CTR difference with a unit-clustered delta-method SE and BH-flagged harm.

    Notes
    -----
    Within cluster ``k`` the units are those with impressions of the cluster; the variance of
    each arm's ratio ``r = C / N`` is ``m / (m - 1) * sum_u (c_u - r n_u)^2 / N^2`` (computed from
    per-group sums of ``c^2``, ``c n`` and ``n^2``). ``p_hurt = Phi(d / se)`` is the one-sided
    p-value for "substitution lowers CTR"; ``q_hurt`` are its Benjamini-Hochberg q-values over
    the tested clusters (``min_units`` units in each arm and ``se > 0``), and ``hurts`` is
    ``q_hurt < fdr``.
    """
    valid = ~pd.isna(labels)
    ccodes, names = pd.factorize(pd.Series(labels[valid]), sort=True)
    k = len(names)
    m = len(log.units)
    key = ccodes.astype(np.int64) * m + log.unit_code[valid]
    uk, inv = np.unique(key, return_inverse=True)
    n_ku = np.bincount(inv).astype(np.float64)
    c_ku = np.bincount(inv, weights=log.clicked[valid])
    cl, unit = uk // m, uk % m
    treated = log.unit_treated[unit]
    cols: dict[str, np.ndarray] = {}
    for flag, arm in ((False, "control"), (True, "treatment")):
        sel = treated == flag
        idx = cl[sel]
        units = np.bincount(idx, minlength=k).astype(np.float64)
        nn = np.bincount(idx, weights=n_ku[sel], minlength=k)
        cc = np.bincount(idx, weights=c_ku[sel], minlength=k)
        s_cc = np.bincount(idx, weights=c_ku[sel] ** 2, minlength=k)
        s_cn = np.bincount(idx, weights=c_ku[sel] * n_ku[sel], minlength=k)
        s_nn = np.bincount(idx, weights=n_ku[sel] ** 2, minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cc / nn
            ss = np.maximum(s_cc - 2 * r * s_cn + r**2 * s_nn, 0.0)
            var = np.where(units > 1, units / (units - 1) * ss / nn**2, np.nan)
        cols[f"units_{arm}"] = units.astype(np.int64)
        cols[f"impressions_{arm}"] = nn.astype(np.int64)
        cols[f"ctr_{arm}"] = r
        cols[f"var_{arm}"] = var
    diff = cols["ctr_treatment"] - cols["ctr_control"]
    se = np.sqrt(cols.pop("var_treatment") + cols.pop("var_control"))
    tested = (
        (cols["units_control"] >= min_units) & (cols["units_treatment"] >= min_units) & (se > 0)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        zval = np.where(tested, diff / se, np.nan)
    p_two = 2 * stats.norm.sf(np.abs(zval))
    p_hurt = stats.norm.cdf(zval)
    q_hurt = benjamini_hochberg(p_hurt)
    frame = pd.DataFrame(
        {
            "cluster": np.asarray(names),
            **cols,
            "difference": diff,
            "se": se,
            "p_value": p_two,
            "p_hurt": p_hurt,
            "q_hurt": q_hurt,
            "hurts": np.nan_to_num(q_hurt, nan=1.0) < fdr,
        }
    )
    return frame


def empty_breakdown() -> pd.DataFrame:
    """The table of :func:`cluster_breakdown` with no rows (an analysis without clusters).

    Written in place of the breakdown so that a ``clusters.parquet`` left by an earlier
    analysis in the same folder is never read as this one's.
    """
    counts = {f"{what}_{arm}": np.zeros(0, np.int64) for arm in ("control", "treatment")
              for what in ("units", "impressions")}  # fmt: skip
    floats = ("difference", "se", "p_value", "p_hurt", "q_hurt")
    return pd.DataFrame(
        {
            "cluster": pd.Series([], dtype=object),
            "units_control": counts["units_control"],
            "impressions_control": counts["impressions_control"],
            "ctr_control": np.zeros(0),
            "units_treatment": counts["units_treatment"],
            "impressions_treatment": counts["impressions_treatment"],
            "ctr_treatment": np.zeros(0),
            **{name: np.zeros(0) for name in floats},
            "hurts": np.zeros(0, dtype=bool),
        }
    )
