"""The drift report of an update: moved items, split and merged clusters, rebuild advice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.cluster._common import unique_inverse

__all__ = ["drift_markdown", "drift_report", "splits_and_merges", "unique_inverse"]


def splits_and_merges(
    old: np.ndarray, new: np.ndarray, *, share: float = 0.2, min_items: int = 2
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Old clusters that split and new clusters that merged, from the contingency table.

    Parameters
    ----------
    old, new
        Cluster ID of the same items before and after (items present in both).
    share
        An old cluster *split* when at least two new clusters each received at least this
        share of its items; a new cluster is a *merge* when it holds at least this share of
        each of two or more old clusters.
    min_items
        A part counts only with at least this many items.

    Returns
    -------
    splits, merges
        ``[{"old": id, "into": [new ids], "sizes": [...]}]`` and
        ``[{"new": id, "from": [old ids], "sizes": [...]}]``.

    Examples
    --------
    >>> s, m = splits_and_merges(np.array([1, 1, 1, 1, 2, 2, 3, 3]),
    ...                          np.array([1, 1, 9, 9, 2, 2, 2, 2]))
    >>> s, [x["from"] for x in m]
    ([{'old': 1, 'into': [1, 9], 'sizes': [2, 2]}], [[2, 3]])
    """
    old = np.asarray(old, dtype=np.int64)
    new = np.asarray(new, dtype=np.int64)
    if len(old) == 0:
        return [], []
    ou, oc = unique_inverse(old)
    nu, nc = unique_inverse(new)
    table = sp.coo_matrix((np.ones(len(old)), (oc, nc)), shape=(len(ou), len(nu))).tocsr()
    table.sum_duplicates()
    coo = table.tocoo()
    old_size = np.bincount(oc, minlength=len(ou))
    o, n, c = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.int64)
    keep = c >= min_items
    o, n, c = o[keep], n[keep], c[keep]
    big = c / old_size[o] >= share
    o, n, c = o[big], n[big], c[big]
    by_old = np.lexsort((n, -c, o))  # per old cluster: largest part first, then new id
    splits = [
        {"old": int(ou[o[g[0]]]), "into": nu[n[g]].tolist(), "sizes": c[g].tolist()}
        for g in _groups(o, by_old)
    ]
    by_new = np.lexsort((o, -c, n))
    merges = [
        {"new": int(nu[n[g[0]]]), "from": ou[o[g]].tolist(), "sizes": c[g].tolist()}
        for g in _groups(n, by_new)
    ]
    return splits, merges


def _groups(key: np.ndarray, order: np.ndarray) -> list[np.ndarray]:
    """Runs of equal ``key[order]`` (``order`` sorts by ``key`` first) with at least two rows."""
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    ends = np.r_[starts[1:], len(k)]
    return [order[a:b] for a, b in zip(starts, ends, strict=True) if b - a >= 2]


def drift_report(
    old_items: pd.DataFrame,
    new_items: pd.DataFrame,
    *,
    n_levels: int,
    default_level: int,
    changes: Mapping[str, int],
    drift_threshold: float,
    max_batch_fraction: float,
    split_share: float,
    max_listed: int = 50,
) -> dict[str, Any]:
    """Compare the clusters of two runs and advise whether to rebuild.

    Parameters
    ----------
    old_items, new_items
        ``items`` tables (``id``, ``cluster_l0`` ..) before and after the update.
    n_levels, default_level
        Levels to compare and the one whose churn decides.
    changes
        ``added``, ``replaced``, ``removed`` (and any other counts to report).
    drift_threshold
        Recommend a rebuild when more than this share of the kept items changed cluster at
        the default level.
    max_batch_fraction
        ... or when the added, replaced and removed items exceed this share of the old run.
    split_share
        See :func:`splits_and_merges`.
    max_listed
        Items listed per level in ``moved_items`` (all are counted).

    Returns
    -------
    dict
        JSON-ready: ``changes``, per-level ``levels`` (``churn``, ``n_moved``, ``clusters_before``,
        ``clusters_after``, ``new_clusters``, ``vanished_clusters``, ``splits``, ``merges``,
        ``moved_items``), ``rebuild_recommended``, ``reasons``.
    """
    from ccgraph.update._persist import leading_positions

    old, new = old_items, new_items
    where = leading_positions(old_items["id"], new_items["id"])
    in_both = where >= 0
    common = np.flatnonzero(in_both)  # rows of the kept items, in the old order
    where = where[in_both]
    levels: list[dict[str, Any]] = []
    for i in range(n_levels):
        col = f"cluster_l{i}"
        a = old[col].to_numpy(np.int64)[in_both]
        b = new[col].to_numpy(np.int64)[where]
        moved = a != b
        splits, merges = splits_and_merges(a, b, share=split_share)
        before = set(unique_inverse(old[col].to_numpy(np.int64))[0].tolist())
        after = set(unique_inverse(new[col].to_numpy(np.int64))[0].tolist())
        levels.append(
            {
                "level": i,
                "churn": float(moved.mean()) if len(moved) else 0.0,
                "n_moved": int(moved.sum()),
                "clusters_before": len(before),
                "clusters_after": len(after),
                "new_clusters": sorted(int(x) for x in after - before),
                "vanished_clusters": sorted(int(x) for x in before - after),
                "splits": splits,
                "merges": merges,
                "moved_items": [
                    {"id": str(x), "from": int(f), "to": int(t)}
                    for x, f, t in zip(
                        old["id"].iloc[common[moved][:max_listed]],
                        a[moved][:max_listed],
                        b[moved][:max_listed],
                        strict=True,
                    )
                ],
            }
        )
    n_old = max(1, len(old))
    batch = sum(int(changes.get(k, 0)) for k in ("added", "replaced", "removed"))
    reasons = []
    churn = levels[default_level]["churn"] if levels else 0.0
    if churn > drift_threshold:
        reasons.append(
            f"{churn:.1%} of the kept items changed cluster at the default level "
            f"(threshold {drift_threshold:.1%})"
        )
    if batch / n_old > max_batch_fraction:
        reasons.append(
            f"the update added, replaced or removed {batch / n_old:.1%} of the run's items "
            f"(threshold {max_batch_fraction:.1%})"
        )
    return {
        "changes": {k: int(v) for k, v in changes.items()},
        "default_level": default_level,
        "levels": levels,
        "drift_threshold": drift_threshold,
        "max_batch_fraction": max_batch_fraction,
        "rebuild_recommended": bool(reasons),
        "reasons": reasons,
    }


def drift_markdown(report: Mapping[str, Any]) -> str:
    """The drift report as a short markdown document (one table row per level)."""
    ch = report["changes"]
    lines = [
        "# Update drift report",
        "",
        ", ".join(f"{k}: {v}" for k, v in ch.items()),
        "",
        "| level | churn | items moved | clusters before | after | new IDs | vanished | "
        "splits | merges |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in report["levels"]:
        mark = " (default)" if lv["level"] == report["default_level"] else ""
        lines.append(
            f"| {lv['level']}{mark} | {lv['churn']:.2%} | {lv['n_moved']} | "
            f"{lv['clusters_before']} | {lv['clusters_after']} | {len(lv['new_clusters'])} | "
            f"{len(lv['vanished_clusters'])} | {len(lv['splits'])} | {len(lv['merges'])} |"
        )
    lines.append("")
    if report["rebuild_recommended"]:
        lines.append("**A full rebuild is recommended:** " + "; ".join(report["reasons"]) + ".")
    else:
        lines.append(
            "No rebuild needed: drift is below the thresholds "
            f"(churn {report['drift_threshold']:.1%}, batch "
            f"{report['max_batch_fraction']:.1%} of the run)."
        )
    return "\n".join(lines) + "\n"
