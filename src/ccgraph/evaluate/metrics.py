"""Evaluation metrics, vectorised over sparse items x tags matrices, and bootstrap intervals.

Cluster metrics (NMI / ARI / purity, tag coherence) are in :mod:`ccgraph.evaluate.clusters`.

Rankings come from a CSR matrix of scores whose stored entries are an item's candidate tags;
entries not stored are "not retrieved". Ground truth is a CSR matrix of the same shape whose
stored entries are the relevant (hidden) tags. Ties in score are broken by tag index.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_float, check_int
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "RankedHits",
    "bootstrap_ci",
    "coverage",
    "expected_calibration_error",
    "per_item_metrics",
    "per_tag_metrics",
    "rank_correlation",
    "ranked_hits",
    "reliability_table",
]


@dataclass(frozen=True, slots=True)
class RankedHits:
    """The top of each item's ranking matched against its relevant tags.

    Attributes
    ----------
    hits
        Boolean ``[n, depth]``: whether the tag at rank ``r`` (0-based) is relevant; ranks past
        the item's stored candidates are False.
    tags
        Int ``[n, depth]``: the tag at each rank, ``-1`` past the stored candidates.
    scores
        Float ``[n, depth]``: the score at each rank, NaN past the stored candidates.
    n_relevant
        Number of relevant tags of each item.
    """

    hits: np.ndarray
    tags: np.ndarray
    scores: np.ndarray
    n_relevant: np.ndarray


def _as_csr(m: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    """A private CSR copy with duplicates summed and explicit zeros dropped."""
    out = sp.csr_matrix(m, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def _keys(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
    return rows.astype(np.int64) * np.int64(n_cols) + cols.astype(np.int64)


def ranked_hits(
    truth: sp.spmatrix | np.ndarray, scores: sp.spmatrix | np.ndarray, *, depth: int
) -> RankedHits:
    """Rank each item's stored candidates by score and mark the relevant ones.

    Parameters
    ----------
    truth
        ``[n, T]`` matrix; non-zero entries are relevant.
    scores
        ``[n, T]`` matrix; stored entries are candidates (explicit zeros count as candidates).
    depth
        How many ranks to keep.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> truth = sp.csr_matrix(np.array([[1, 0, 1]]))
    >>> scores = sp.csr_matrix(np.array([[0.2, 0.9, 0.5]]))
    >>> ranked_hits(truth, scores, depth=3).hits.tolist()
    [[False, True, True]]
    """
    depth = check_int("depth", depth, low=1)
    t = _as_csr(truth)
    s = sp.csr_matrix(scores)
    if t.shape != s.shape:
        raise InputError(f"`truth` has shape {t.shape} but `scores` has shape {s.shape}")
    n, n_tags = s.shape
    rows = np.repeat(np.arange(n), np.diff(s.indptr))
    cols = s.indices.astype(np.int64)
    data = s.data.astype(np.float64)
    order = np.lexsort((cols, -data, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    starts = np.repeat(s.indptr[:-1], np.diff(s.indptr))
    rank = np.arange(len(rows)) - starts
    keep = rank < depth
    rows, cols, data, rank = rows[keep], cols[keep], data[keep], rank[keep]
    t_rows, t_cols = t.nonzero()
    truth_keys = np.sort(_keys(t_rows, t_cols, n_tags))
    cand = _keys(rows, cols, n_tags)
    pos = np.searchsorted(truth_keys, cand)
    pos = np.minimum(pos, max(len(truth_keys) - 1, 0))
    rel = truth_keys[pos] == cand if len(truth_keys) else np.zeros(len(cand), dtype=bool)
    hits = np.zeros((n, depth), dtype=bool)
    tags = np.full((n, depth), -1, dtype=np.int64)
    sc = np.full((n, depth), np.nan)
    hits[rows, rank] = rel
    tags[rows, rank] = cols
    sc[rows, rank] = data
    return RankedHits(hits, tags, sc, np.diff(t.indptr).astype(np.int64))


def per_item_metrics(ranked: RankedHits, *, k: Sequence[int]) -> pd.DataFrame:
    r"""Precision, recall and F1 at each cut-off, and average precision, one row per item.

    Parameters
    ----------
    ranked
        From :func:`ranked_hits`.
    k
        Cut-offs (each at most ``depth``).

    Returns
    -------
    pandas.DataFrame
        Columns ``precision@k``, ``recall@k``, ``f1@k`` for each k, ``ap`` and ``n_relevant``.
        Items with no relevant tag get NaN.

    Notes
    -----
    With :math:`h_r` the hit indicator at rank :math:`r` and :math:`R` the number of relevant
    tags: :math:`P@k = \sum_{r \le k} h_r / k`, :math:`R@k = \sum_{r \le k} h_r / R`,
    :math:`F1@k` their harmonic mean, and
    :math:`AP = \frac{1}{R} \sum_r h_r \frac{\sum_{s \le r} h_s}{r}` over the ranks up to
    ``depth``; relevant tags never ranked add zero (so AP is AP@depth, equal to scikit-learn's
    ``average_precision_score`` when every tag is ranked).
    """
    hits = ranked.hits
    depth = hits.shape[1]
    n_rel = ranked.n_relevant.astype(np.float64)
    valid = n_rel > 0
    denom = np.where(valid, n_rel, np.nan)
    cum = np.cumsum(hits, axis=1)
    out: dict[str, np.ndarray] = {}
    for kk in k:
        kk = check_int("k", kk, low=1, high=depth)
        h = cum[:, kk - 1].astype(np.float64)
        p = np.where(valid, h / kk, np.nan)
        r = h / denom
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        out[f"precision@{kk}"] = p
        out[f"recall@{kk}"] = r
        out[f"f1@{kk}"] = np.where(valid, f, np.nan)
    prec_at = cum / np.arange(1, depth + 1)
    out["ap"] = (prec_at * hits).sum(axis=1) / denom
    out["n_relevant"] = ranked.n_relevant
    return pd.DataFrame(out)


def per_tag_metrics(
    truth: sp.spmatrix | np.ndarray, scores: sp.spmatrix | np.ndarray, *, k: int
) -> pd.DataFrame:
    r"""Per-tag recall at ``k`` annotations per item and per-tag average precision.

    Parameters
    ----------
    truth, scores
        As in :func:`ranked_hits`.
    k
        Each item is annotated with its top ``k`` tags (TagProp's protocol uses 5).

    Returns
    -------
    pandas.DataFrame
        One row per tag with at least one relevant item: ``tag`` (column index),
        ``n_relevant``, ``recall`` (share of its relevant items that got it in their top k),
        ``precision`` (share of items annotated with it that are relevant; NaN if none) and
        ``ap`` (items ranked by their score for the tag; unscored items are not retrieved).

    Notes
    -----
    ``N+`` (Guillaumin et al. 2009) is ``(recall > 0).sum()``; mean per-tag AP is MAP over
    tags.
    """
    t = _as_csr(truth)
    s = sp.csr_matrix(scores)
    _n, n_tags = s.shape
    ranked = ranked_hits(t, s, depth=k)
    got = ranked.tags >= 0
    hit_tags = ranked.tags[ranked.hits]
    ann_tags = ranked.tags[got]
    n_rel = np.bincount(t.nonzero()[1], minlength=n_tags)
    n_hit = np.bincount(hit_tags, minlength=n_tags)
    n_ann = np.bincount(ann_tags, minlength=n_tags)
    # per-tag AP: rank items within each tag column
    c = s.tocsc()
    cols = np.repeat(np.arange(n_tags), np.diff(c.indptr))
    rows = c.indices.astype(np.int64)
    data = c.data.astype(np.float64)
    order = np.lexsort((rows, -data, cols))
    rows, cols = rows[order], cols[order]
    t_rows, t_cols = t.nonzero()
    truth_keys = np.sort(_keys(t_rows, t_cols, n_tags))
    cand = _keys(rows, cols, n_tags)
    pos = np.minimum(np.searchsorted(truth_keys, cand), max(len(truth_keys) - 1, 0))
    rel = (truth_keys[pos] == cand) if len(truth_keys) else np.zeros(len(cand), dtype=bool)
    starts = np.repeat(c.indptr[:-1], np.diff(c.indptr))
    rank = np.arange(len(rows)) - starts + 1
    cum_all = np.cumsum(rel)
    base = np.concatenate([[0], cum_all])[starts]
    cum_in = cum_all - base
    ap_sum = np.bincount(cols, weights=rel * cum_in / rank, minlength=n_tags)
    used = np.flatnonzero(n_rel > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "tag": used,
                "n_relevant": n_rel[used],
                "recall": n_hit[used] / n_rel[used],
                "precision": np.where(n_ann[used] > 0, n_hit[used] / n_ann[used], np.nan),
                "ap": ap_sum[used] / n_rel[used],
            }
        )


def coverage(scores: sp.spmatrix | np.ndarray, *, min_score: float | None = None) -> np.ndarray:
    """Per item: 1.0 if it received any tag (score >= ``min_score`` if given), else 0.0."""
    s = sp.csr_matrix(scores)
    if min_score is None:
        return (np.diff(s.indptr) > 0).astype(np.float64)
    ok = sp.csr_matrix((s.data >= min_score, s.indices, s.indptr), shape=s.shape)
    return (np.asarray(ok.sum(axis=1)).ravel() > 0).astype(np.float64)


def reliability_table(
    confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = 10
) -> pd.DataFrame:
    """Bin predictions by confidence and compare mean confidence with observed accuracy.

    Bins are equal-width on [0, 1] (the last bin closed); empty bins are kept with count 0.

    Examples
    --------
    >>> t = reliability_table(np.array([0.05, 0.95, 0.95]), np.array([0, 1, 0]), n_bins=2)
    >>> t[["count", "accuracy"]].values.tolist()
    [[1.0, 0.0], [2.0, 0.5]]
    """
    n_bins = check_int("n_bins", n_bins, low=1)
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    ok = np.asarray(correct, dtype=np.float64).ravel()
    if conf.shape != ok.shape:
        raise InputError(f"`confidence` has {conf.size} values but `correct` has {ok.size}")
    if conf.size and (np.nanmin(conf) < 0 or np.nanmax(conf) > 1):
        raise InputError("`confidence` values must lie in [0, 1]")
    b = np.clip((conf * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / count
        acc = np.bincount(b, weights=ok, minlength=n_bins) / count
    edges = np.linspace(0, 1, n_bins + 1)
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "count": count,
            "mean_confidence": mean_conf,
            "accuracy": acc,
        }
    )


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = 10
) -> float:
    r"""Expected calibration error :math:`\sum_b \frac{n_b}{N} |acc_b - conf_b|`.

    References
    ----------
    Naeini, Cooper, Hauskrecht (2015). Obtaining well calibrated probabilities using Bayesian
    binning. AAAI. Guo et al. (2017). On calibration of modern neural networks. ICML.
    """
    table = reliability_table(confidence, correct, n_bins=n_bins)
    n = table["count"].sum()
    if n == 0:
        return float("nan")
    gap = (table["accuracy"] - table["mean_confidence"]).abs().fillna(0.0)
    return float((table["count"] * gap).sum() / n)


def rank_correlation(inferred: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    """Spearman's rho and Kendall's tau-b between inferred and held-out observed values."""
    from scipy import stats

    x = np.asarray(inferred, dtype=np.float64).ravel()
    y = np.asarray(observed, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"`inferred` has {x.size} values but `observed` has {y.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return {"spearman": float("nan"), "kendall": float("nan"), "n": int(ok.sum())}
    return {
        "spearman": float(stats.spearmanr(x[ok], y[ok]).statistic),
        "kendall": float(stats.kendalltau(x[ok], y[ok]).statistic),
        "n": int(ok.sum()),
    }


def bootstrap_ci(
    values: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    rng: RngLike = None,
    block: int = 256,
) -> pd.DataFrame:
    r"""Percentile bootstrap confidence intervals of means, resampling rows (items).

    Parameters
    ----------
    values
        ``[n]`` or ``[n, m]``: one row per item, one column per statistic. All columns are
        resampled with the same item weights, so a column of paired differences gives the
        interval of a difference between methods. NaN rows of a column are left out of that
        column's mean.
    n_boot
        Number of resamples.
    level
        Coverage of the interval.
    rng
        Seed or Generator.
    block
        Resamples drawn per batch (bounds memory at ``block * n`` counts).

    Returns
    -------
    pandas.DataFrame
        One row per column: ``mean``, ``ci_low``, ``ci_high``, ``n``.

    Notes
    -----
    Each resample is a weight vector :math:`w \sim \mathrm{Multinomial}(n, 1/n)`; its mean is
    :math:`\sum_i w_i x_i / \sum_i w_i` (over the non-NaN rows), computed for a whole batch of
    resamples as one matrix product. The interval is the :math:`(1 \pm level)/2` percentiles.

    References
    ----------
    Efron & Tibshirani (1993). An Introduction to the Bootstrap, ch. 13.

    Examples
    --------
    >>> ci = bootstrap_ci(np.arange(100.0), n_boot=200, rng=0)
    >>> bool(ci.loc[0, "ci_low"] < 49.5 < ci.loc[0, "ci_high"])
    True
    """
    n_boot = check_int("n_boot", n_boot, low=1)
    level = check_float("level", level, low=0, high=1, low_inclusive=False, high_inclusive=False)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise InputError(f"`values` must be 1-D or 2-D; got shape {x.shape}")
    n, m = x.shape
    gen = as_generator(rng)
    present = np.isfinite(x)
    xz = np.where(present, x, 0.0)
    pz = present.astype(np.float64)
    boots = np.empty((n_boot, m))
    done = 0
    while done < n_boot:
        b = min(block, n_boot - done)
        if n:
            w = gen.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)
        else:
            w = np.zeros((b, 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            boots[done : done + b] = (w @ xz) / (w @ pz)
        done += b
    alpha = (1 - level) / 2
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanquantile(boots, alpha, axis=0) if n else np.full(m, np.nan)
        hi = np.nanquantile(boots, 1 - alpha, axis=0) if n else np.full(m, np.nan)
    counts = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = xz.sum(axis=0) / counts
    return pd.DataFrame({"mean": mean, "ci_low": lo, "ci_high": hi, "n": counts})
