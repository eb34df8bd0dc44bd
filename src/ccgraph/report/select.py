"""Choose and shape what the report shows: clusters, members, neighbours, tag samples.

Pure functions of the run tables and the graph (numpy / pandas in, numpy / pandas out); the
HTML layer only formats their results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_int

__all__ = [
    "cluster_sizes_by_level",
    "default_level",
    "large_clusters",
    "pick_members",
    "resolution_sweep",
    "sample_untagged",
    "top_neighbours",
]

_LEVEL = re.compile(r"^cluster_l(\d+)$")


def top_neighbours(
    adjacency: sp.csr_matrix, rows: Sequence[int] | np.ndarray, n: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the ``n`` heaviest edges of each row (neighbour indices and weights).

    Ties are broken by the smaller neighbour index, so the result is deterministic.

    Parameters
    ----------
    adjacency
        CSR weight matrix (the diagonal is ignored).
    rows
        Row indices to look up.
    n
        Neighbours kept per row.

    Returns
    -------
    list of (indices, weights)
        One pair of arrays per row, each of length ``min(n, degree)``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> a = sp.csr_matrix([[0, .2, .9, .5], [.2, 0, 0, 0], [.9, 0, 0, 0], [.5, 0, 0, 0]])
    >>> idx, w = top_neighbours(a, [0], 2)[0]
    >>> idx.tolist(), w.tolist()
    ([2, 3], [0.9, 0.5])
    """
    n = check_int("n", n, low=0)
    a = sp.csr_matrix(adjacency)
    out = []
    for r in np.asarray(rows, dtype=np.int64):
        lo, hi = a.indptr[r], a.indptr[r + 1]
        idx = a.indices[lo:hi]
        w = a.data[lo:hi]
        keep = idx != r
        idx, w = idx[keep], w[keep]
        order = np.lexsort((idx, -w))[:n]
        out.append((idx[order].astype(np.int64), w[order].astype(np.float64)))
    return out


def level_columns(items: pd.DataFrame) -> list[str]:
    """``cluster_l0``, ``cluster_l1``, ... in level order."""
    found = [(int(m.group(1)), c) for c in items.columns if (m := _LEVEL.match(str(c)))]
    return [c for _, c in sorted(found)]


def default_level(items: pd.DataFrame, manifest: Mapping[str, Any]) -> int | None:
    """Index of the level written to ``cluster``: from the manifest, else by matching columns."""
    for source in (manifest.get("counts", {}), manifest.get("stages", {}).get("cluster", {})):
        if isinstance(source, Mapping) and isinstance(source.get("default_level"), int):
            return int(source["default_level"])
    for i, col in enumerate(level_columns(items)):
        if np.array_equal(items[col].to_numpy(), items["cluster"].to_numpy()):
            return i
    return None


def cluster_sizes_by_level(items: pd.DataFrame) -> dict[str, np.ndarray]:
    """Cluster sizes per level (``level 0`` = coarsest); just ``cluster`` if no level columns."""
    cols = level_columns(items) or ["cluster"]
    return {
        (f"level {c[9:]}" if c != "cluster" else "clusters"): items[c].value_counts().to_numpy()
        for c in cols
    }


def resolution_sweep(manifest: Mapping[str, Any], items: pd.DataFrame) -> pd.DataFrame | None:
    """Resolution against cluster count: the manifest's sweep, else one point per level.

    Reads ``stages.cluster.sweep`` (records with ``resolution`` and ``n_clusters``, optional
    ``quality`` / ``modularity`` / ``median_size``) when present; otherwise pairs
    ``config.cluster.resolutions`` with the level columns of ``items``. Returns ``None`` when
    fewer than two points are known.
    """
    stage = manifest.get("stages", {}).get("cluster", {}) or {}
    sweep = stage.get("sweep") if isinstance(stage, Mapping) else None
    if isinstance(sweep, Mapping):
        sweep = pd.DataFrame(sweep).to_dict("records")
    if isinstance(sweep, list) and sweep and all(isinstance(r, Mapping) for r in sweep):
        df = pd.DataFrame(sweep)
        if "quality" not in df and "modularity" in df:
            df["quality"] = df["modularity"]
        if {"resolution", "n_clusters"} <= set(df.columns):
            df = df.dropna(subset=["resolution", "n_clusters"]).sort_values("resolution")
            return df.reset_index(drop=True) if len(df) >= 2 else None
    res = manifest.get("config", {}).get("cluster", {}).get("resolutions")
    cols = level_columns(items)
    if not isinstance(res, list) or len(res) != len(cols) or len(cols) < 2:
        return None
    rows = [
        {
            "resolution": float(r),
            "n_clusters": int(items[c].nunique()),
            "median_size": float(items[c].value_counts().median()),
        }
        for r, c in zip(res, cols, strict=True)
    ]
    return pd.DataFrame(rows).sort_values("resolution").reset_index(drop=True)


def large_clusters(
    items: pd.DataFrame, clusters: pd.DataFrame, *, level: int | None, max_clusters: int
) -> pd.DataFrame:
    """Return the ``max_clusters`` largest clusters of the default level (size >= 2).

    Columns: ``cluster``, ``size`` (counted in ``items``), ``label``, ``top_tags``,
    ``top_tag_scores``, ``representative_ids``, ``density``, ``conductance`` (from
    ``clusters.parquet`` when it describes the cluster, else empty values).
    """
    max_clusters = check_int("max_clusters", max_clusters, low=0)
    counts = items["cluster"].value_counts()
    counts = counts[counts >= 2]
    order = sorted(counts.items(), key=lambda kv: (-int(kv[1]), int(kv[0])))[:max_clusters]
    out = pd.DataFrame({"cluster": [int(c) for c, _ in order], "size": [int(s) for _, s in order]})
    desc = clusters
    if not desc.empty and "level" in desc and level is not None:
        desc = desc[desc["level"] == level]
    if not desc.empty and "cluster" in desc:
        desc = desc.drop_duplicates("cluster").set_index("cluster")
    else:
        desc = pd.DataFrame()
    for col, empty in (
        ("label", ""),
        ("top_tags", ()),
        ("top_tag_scores", ()),
        ("representative_ids", ()),
        ("density", np.nan),
        ("conductance", np.nan),
    ):
        if col in desc:
            values = desc[col].reindex(out["cluster"]).tolist()
            out[col] = [_clean(v, empty) for v in values]
        else:
            out[col] = [empty] * len(out)
    return out


def _clean(value: Any, empty: Any) -> Any:
    if isinstance(empty, tuple):
        return [] if value is None or (np.isscalar(value) and pd.isna(value)) else list(value)
    if value is None or (np.isscalar(value) and pd.isna(value)):
        return empty
    return value


def pick_members(
    members: np.ndarray, representatives: Sequence[int], n: int, *, rng: RngLike = 0
) -> np.ndarray:
    """Up to ``n`` members to show: the representatives first, then a seeded random sample.

    Examples
    --------
    >>> pick_members(np.arange(10), [7, 3], 4, rng=0)[:2].tolist()
    [7, 3]
    """
    n = check_int("n", n, low=0)
    members = np.asarray(members, dtype=np.int64)
    pool = set(members.tolist())
    reps = list(dict.fromkeys(int(r) for r in representatives if int(r) in pool))[:n]
    rest = np.setdiff1d(members, reps)
    k = min(n - len(reps), len(rest))
    extra = np.sort(as_generator(rng).choice(rest, size=k, replace=False)) if k > 0 else rest[:0]
    return np.concatenate([np.asarray(reps, dtype=np.int64), extra]).astype(np.int64)


def sample_untagged(
    tags: pd.DataFrame, ids: np.ndarray, n: int, *, rng: RngLike = 0
) -> tuple[np.ndarray, bool]:
    """Row indices of up to ``n`` items that have inferred tags but no observed tag.

    Returns the sorted indices and ``True``; when no such item exists, a sample of items with
    inferred tags (tagged ones) and ``False``.
    """
    n = check_int("n", n, low=0)
    if tags.empty or "source" not in tags:
        return np.array([], dtype=np.int64), True
    src = tags["source"].astype(str)
    inferred = set(tags.loc[src == "inferred", "id"])
    observed = set(tags.loc[src == "observed", "id"])
    ids = np.asarray(ids).astype(str)
    has_inf = np.fromiter((i in inferred for i in ids), bool, len(ids))
    has_obs = np.fromiter((i in observed for i in ids), bool, len(ids))
    pool, untagged = np.flatnonzero(has_inf & ~has_obs), True
    if not len(pool):
        pool, untagged = np.flatnonzero(has_inf), False
    k = min(n, len(pool))
    chosen = as_generator(rng).choice(pool, size=k, replace=False) if k else pool[:0]
    return np.sort(chosen).astype(np.int64), untagged
