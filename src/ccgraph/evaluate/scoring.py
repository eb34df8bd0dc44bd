"""Score one method's inferred tags against the hidden tags of one split, and pool repeats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._random import RngLike
from ccgraph.containers import TagScores, TagSet
from ccgraph.evaluate.metrics import (
    bootstrap_ci,
    coverage,
    expected_calibration_error,
    per_item_metrics,
    per_tag_metrics,
    ranked_hits,
    reliability_table,
)

__all__ = [
    "Truth",
    "aligned_scores",
    "build_truth",
    "score_tags",
    "source_vocabulary",
    "summarise",
]


@dataclass(frozen=True, slots=True, eq=False)
class Truth:
    """Hidden tags of the evaluated items, in the visible vocabulary.

    Attributes
    ----------
    rows
        Row positions (in the seed matrix) of the evaluated items: items with at least one
        hidden tag that the visible vocabulary contains.
    matrix
        CSR ``[len(rows), n_tags]`` of relevant tags.
    n_hidden, n_oov
        Hidden (item, tag) pairs in all, and those whose tag is not in the visible vocabulary
        (no method can propose them; they are left out of the scores).
    """

    rows: np.ndarray
    matrix: sp.csr_matrix
    n_hidden: int
    n_oov: int


def source_vocabulary(visible: pd.DataFrame, seeds: TagSet, source: str) -> np.ndarray:
    """Boolean per seed tag: whether some visible row gives it with ``source``."""
    tags = visible.loc[visible["source"].astype(str) == source, "tag"].astype(str)
    return np.isin(seeds.tags, tags.unique())


def build_truth(
    hidden: pd.DataFrame, seeds: TagSet, *, candidates: np.ndarray | None = None
) -> Truth:
    """Map the hidden tags table onto the seeds' items and vocabulary (or its ``candidates``)."""
    pairs = hidden[["id", "tag"]].astype(str).drop_duplicates()
    r = pd.Index(seeds.ids).get_indexer(pairs["id"])
    c = pd.Index(seeds.tags).get_indexer(pairs["tag"])
    ok = (r >= 0) & (c >= 0)
    if candidates is not None:
        ok &= np.asarray(candidates, dtype=bool)[np.maximum(c, 0)]
    full = sp.csr_matrix(
        (np.ones(int(ok.sum()), np.float32), (r[ok], c[ok])), shape=seeds.matrix.shape
    )
    rows = np.flatnonzero(np.diff(full.indptr) > 0)
    return Truth(rows, full[rows], len(pairs), int((~ok).sum()))


def aligned_scores(result: TagScores, seeds: TagSet) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """A method's scores and confidences in the seeds' row and column order."""
    if np.array_equal(result.tags, seeds.tags) and np.array_equal(result.ids, seeds.ids):
        return sp.csr_matrix(result.scores), sp.csr_matrix(result.confidence)
    rpos = pd.Index(result.ids).get_indexer(seeds.ids)
    cpos = pd.Index(seeds.tags).get_indexer(result.tags)

    def remap(m: sp.spmatrix) -> sp.csr_matrix:
        coo = sp.coo_matrix(m)
        row_new = np.full(coo.shape[0], -1)
        row_new[rpos[rpos >= 0]] = np.flatnonzero(rpos >= 0)
        rr, cc = row_new[coo.row], cpos[coo.col]
        ok = (rr >= 0) & (cc >= 0)
        return sp.csr_matrix(
            (coo.data[ok], (rr[ok], cc[ok])), shape=seeds.matrix.shape, dtype=np.float32
        )

    return remap(result.scores), remap(result.confidence)


def score_tags(
    result: TagScores,
    seeds: TagSet,
    truth: Truth,
    *,
    k: Sequence[int],
    depth: int,
    n_bins: int = 10,
    candidates: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Per-item metrics, corpus-level metrics, per-tag metrics and the reliability table.

    ``candidates`` (boolean per tag) restricts every ranking to those tags before scoring,
    e.g. to the user-tag vocabulary when only user tags were hidden.

    Returns
    -------
    tuple
        ``(per_item, corpus, per_tag, reliability)``: ``per_item`` has one row per evaluated
        item (``precision@k``, ``recall@k``, ``f1@k``, ``ap``, ``coverage``); ``corpus`` holds
        ``map_tags`` (mean per-tag AP), ``n_plus`` (tags with recall > 0 at 5 annotations, or
        the largest cut-off below 5), ``n_tags_evaluated`` and ``ece`` (confidence of the top
        ``max(k)`` proposals against their correctness).
    """
    scores, confidence = aligned_scores(result, seeds)
    s = scores[truth.rows]
    c = confidence[truth.rows]
    if candidates is not None:
        keep = sp.diags(np.asarray(candidates, dtype=np.float32))
        s, c = (s @ keep).tocsr(), (c @ keep).tocsr()
        s.eliminate_zeros()
    ranked = ranked_hits(truth.matrix, s, depth=depth)
    per_item = per_item_metrics(ranked, k=k)
    per_item["coverage"] = coverage(s)
    k_ann = max([kk for kk in k if kk <= 5] or [min(k)])
    per_tag = per_tag_metrics(truth.matrix, s, k=k_ann)
    kmax = max(k)
    top = ranked.tags[:, :kmax]
    got = top >= 0
    rows = np.repeat(np.arange(len(truth.rows)), kmax).reshape(-1, kmax)[got]
    conf_vals = np.asarray(c[rows, top[got]]).ravel() if got.any() else np.zeros(0)
    correct = ranked.hits[:, :kmax][got]
    reliability = reliability_table(np.clip(conf_vals, 0, 1), correct, n_bins=n_bins)
    corpus = {
        "map_tags": float(per_tag["ap"].mean()) if len(per_tag) else float("nan"),
        f"n_plus@{k_ann}": int((per_tag["recall"] > 0).sum()),
        "n_tags_evaluated": len(per_tag),
        f"ece@{kmax}": expected_calibration_error(np.clip(conf_vals, 0, 1), correct, n_bins=n_bins),
    }
    return per_item, corpus, per_tag, reliability


def summarise(
    pooled: pd.DataFrame,
    per_tag: pd.DataFrame,
    per_repeat: pd.DataFrame,
    *,
    reference: str | None,
    n_boot: int,
    rng: RngLike = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Aggregate over repeats with paired bootstrap CIs.

    Parameters
    ----------
    pooled
        Per-item rows of every method: ``repeat``, ``item``, ``method`` and metric columns.
        Rows of all methods for the same ``(repeat, item)`` are resampled together.
    per_tag
        Per-tag rows: ``repeat``, ``tag``, ``method``, ``ap`` (bootstrapped over tags).
    per_repeat
        Long table ``repeat, method, metric, value``; corpus-level metrics without a per-unit
        breakdown (N+, ECE) are summarised by their mean and min / max over repeats.
    reference
        Method the others are compared with.
    n_boot
        Bootstrap resamples.
    rng
        Seed or Generator of the resamples (shared by all columns, so differences are paired).

    Returns
    -------
    tuple
        ``(summary, comparisons)``: ``summary`` has ``method, metric, mean, ci_low,
        ci_high, n, interval`` (``interval`` = "bootstrap" or "repeats min-max");
        ``comparisons`` has ``method, reference, metric, difference, ci_low, ci_high, n``.
    """
    metric_cols = [c for c in pooled.columns if c not in ("repeat", "item", "method", "n_relevant")]
    wide = pooled.set_index(["repeat", "item", "method"])[metric_cols].unstack("method")
    methods = list(dict.fromkeys(pooled["method"]))
    cols, names = [], []
    for metric in metric_cols:
        for m in methods:
            cols.append(wide[(metric, m)].to_numpy(np.float64))
            names.append(("summary", m, metric))
        if reference in methods:
            for m in methods:
                if m != reference:
                    cols.append(
                        wide[(metric, m)].to_numpy(np.float64)
                        - wide[(metric, reference)].to_numpy(np.float64)
                    )
                    names.append(("diff", m, metric))
    ci = bootstrap_ci(np.column_stack(cols), n_boot=n_boot, rng=rng)
    summary_rows: list[dict[str, Any]] = []
    comp_rows: list[dict[str, Any]] = []
    for (kind, m, metric), row in zip(names, ci.itertuples(index=False), strict=True):
        rec = {
            "method": m,
            "metric": metric,
            "ci_low": row.ci_low,
            "ci_high": row.ci_high,
            "n": int(row.n),
        }
        if kind == "summary":
            summary_rows.append({**rec, "mean": row.mean, "interval": "bootstrap over items"})
        else:
            comp_rows.append({**rec, "reference": reference, "difference": row.mean})
    if len(per_tag):
        tag_wide = per_tag.set_index(["repeat", "tag", "method"])["ap"].unstack("method")
        tag_methods = [m for m in methods if m in tag_wide.columns]
        tag_ci = bootstrap_ci(tag_wide[tag_methods].to_numpy(np.float64), n_boot=n_boot, rng=rng)
        for m, row in zip(tag_methods, tag_ci.itertuples(index=False), strict=True):
            summary_rows.append(
                {
                    "method": m,
                    "metric": "map_tags",
                    "mean": row.mean,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "n": int(row.n),
                    "interval": "bootstrap over tags",
                }
            )
    corpus = per_repeat[~per_repeat["metric"].isin(set(metric_cols) | {"map_tags"})]
    for (m, metric), grp in corpus.groupby(["method", "metric"], sort=False):
        v = grp["value"].to_numpy(np.float64)
        summary_rows.append(
            {
                "method": m,
                "metric": metric,
                "mean": float(np.nanmean(v)),
                "ci_low": float(np.nanmin(v)),
                "ci_high": float(np.nanmax(v)),
                "n": len(v),
                "interval": "min-max over repeats",
            }
        )
    order = ["method", "metric", "mean", "ci_low", "ci_high", "n", "interval"]
    summary = pd.DataFrame(summary_rows)[order] if summary_rows else pd.DataFrame(columns=order)
    comp_order = ["method", "reference", "metric", "difference", "ci_low", "ci_high", "n"]
    comparisons = pd.DataFrame(comp_rows, columns=comp_order)
    return summary, comparisons
