"""Calibration diagnostics: expected calibration error, reliability table, precision/coverage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ccgraph._validation import check_int
from ccgraph.exceptions import InputError

__all__ = ["expected_calibration_error", "precision_coverage", "reliability_table"]


def expected_calibration_error(conf: Any, correct: Any, *, n_bins: int = 10) -> float:
    r"""Compute the expected calibration error with equal-width confidence bins.

    .. math:: ECE = \sum_b \frac{n_b}{n} \left| \mathrm{acc}_b - \mathrm{conf}_b \right|

    Examples
    --------
    >>> expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 1, 0, 1], n_bins=10)
    0.25
    """
    table = reliability_table(conf, correct, n_bins=n_bins)
    n = table["n"].sum()
    if n == 0:
        return float("nan")
    gap = (table["accuracy"] - table["mean_confidence"]).abs().fillna(0.0)
    return round(float((table["n"] * gap).sum() / n), 12)


def reliability_table(conf: Any, correct: Any, *, n_bins: int = 10) -> pd.DataFrame:
    """Per confidence bin: ``bin_lo, bin_hi, n, mean_confidence, accuracy`` (equal width)."""
    n_bins = check_int("n_bins", n_bins, low=1)
    c = np.asarray(conf, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=np.float64).ravel()
    if len(c) != len(y):
        raise InputError(f"`conf` has {len(c)} entries but `correct` has {len(y)}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    sc = np.bincount(b, weights=c, minlength=n_bins)
    sy = np.bincount(b, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "bin_lo": edges[:-1],
                "bin_hi": edges[1:],
                "n": cnt,
                "mean_confidence": np.where(cnt > 0, sc / cnt, np.nan),
                "accuracy": np.where(cnt > 0, sy / cnt, np.nan),
            }
        )


def precision_coverage(
    conf: Any, correct: Any, *, items: Any = None, thresholds: Any = None
) -> pd.DataFrame:
    """Precision of the inferred tags kept at each abstention threshold, and what is kept.

    Returns ``threshold, kept`` (share of inferred tags with confidence >= threshold),
    ``precision`` (share of those that are correct) and, when ``items`` is given,
    ``item_coverage`` (share of items keeping at least one tag).
    """
    c = np.asarray(conf, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=bool).ravel()
    th = np.linspace(0.0, 0.9, 10) if thresholds is None else np.asarray(thresholds, float)
    rows = []
    item_arr = None if items is None else np.asarray(items).ravel()
    n_items = 0 if item_arr is None else len(np.unique(item_arr))
    for t in th:
        keep = c >= t
        row = {
            "threshold": float(t),
            "kept": float(keep.mean()) if len(c) else float("nan"),
            "precision": float(y[keep].mean()) if keep.any() else float("nan"),
        }
        if item_arr is not None:
            row["item_coverage"] = len(np.unique(item_arr[keep])) / max(n_items, 1)
        rows.append(row)
    return pd.DataFrame(rows)
