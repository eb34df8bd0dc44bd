"""Turn stage results into the run-directory tables (DESIGN.md section 3)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph import __version__
from ccgraph.containers import Catalog, KnnGraph, Partition, Popularity, TagScores

__all__ = [
    "SCHEMA_VERSION",
    "cluster_strength",
    "items_table",
    "manifest",
    "tags_table",
]

SCHEMA_VERSION = 1
_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "igraph",
    "leidenalg",
    "pynndescent",
    "networkx",
    "pydantic",
    "sentence-transformers",
    "torch",
    "pillow",
    "imagehash",
)
_ITEM_EXTRAS = ("title", "provider", "license", "url", "image_path")


def cluster_strength(adjacency: sp.csr_matrix, membership: np.ndarray) -> np.ndarray:
    """Share of each item's edge weight that stays inside its own cluster (1 if isolated)."""
    rows = np.repeat(np.arange(adjacency.shape[0]), np.diff(adjacency.indptr))
    inside = membership[adjacency.indices] == membership[rows]
    total = np.bincount(rows, weights=adjacency.data, minlength=adjacency.shape[0])
    internal = np.bincount(rows, weights=adjacency.data * inside, minlength=adjacency.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, internal / np.where(total > 0, total, 1), 1.0)
    return out.astype(np.float32)


def items_table(
    catalog: Catalog,
    graph: KnnGraph,
    levels: Sequence[Partition],
    default_level: int,
    duplicate_group: np.ndarray,
    is_canonical: np.ndarray,
    popularity: Popularity | None,
) -> pd.DataFrame:
    """The ``items.parquet`` table, one row per item in graph order."""
    ids = graph.ids
    items = catalog.items.set_index("id").reindex(ids)
    df = pd.DataFrame({"id": pd.array(ids, dtype="string")})
    default = levels[default_level].membership
    df["cluster"] = default.astype(np.int64)
    for i, part in enumerate(levels):
        df[f"cluster_l{i}"] = part.membership.astype(np.int64)
    df["cluster_strength"] = cluster_strength(graph.adjacency, default)
    df["duplicate_group"] = np.asarray(duplicate_group, dtype=np.int64)
    df["is_canonical"] = np.asarray(is_canonical, dtype=bool)
    n = len(ids)
    if popularity is not None:
        df["popularity_observed"] = np.asarray(popularity.observed, dtype=np.float64)
        df["popularity"] = np.asarray(popularity.value, dtype=np.float64)
        df["popularity_source"] = pd.array(popularity.source.astype(str), dtype="string")
        df["popularity_confidence"] = np.asarray(popularity.confidence, dtype=np.float64)
    else:
        raw = pd.to_numeric(items.get("popularity_raw"), errors="coerce")
        df["popularity_observed"] = (
            raw.to_numpy(np.float64) if raw is not None else np.full(n, np.nan)
        )
        df["popularity"] = np.full(n, np.nan)
        df["popularity_source"] = pd.array(["none"] * n, dtype="string")
        df["popularity_confidence"] = np.full(n, np.nan)
    df["degree"] = graph.degree
    for col in _ITEM_EXTRAS:
        if col in items.columns:
            df[col] = pd.array(items[col].fillna("").astype(str).to_numpy(), dtype="string")
    return df


def tags_table(catalog: Catalog, ids: np.ndarray, inferred: TagScores | None) -> pd.DataFrame:
    """The ``tags.parquet`` table: observed tags first, then inferred ones, per item order."""
    order = pd.Series(np.arange(len(ids)), index=ids)
    obs = catalog.tags
    obs = obs[obs["id"].isin(order.index)]
    observed = pd.DataFrame(
        {
            "id": obs["id"].astype(str).to_numpy(),
            "tag": obs["tag"].astype(str).to_numpy(),
            "score": pd.to_numeric(obs["weight"], errors="coerce").fillna(1.0).to_numpy(np.float32),
            "confidence": np.ones(len(obs), dtype=np.float32),
            "rank": pd.array([pd.NA] * len(obs), dtype="Int64"),
            "source": "observed",
            "origin": obs["source"].astype(str).to_numpy(),
            "tag_raw": obs["tag_raw"].astype(str).to_numpy(),
        }
    )
    frames = [observed]
    if inferred is not None:
        inf = inferred.to_frame()
        frames.append(
            pd.DataFrame(
                {
                    "id": inf["id"].astype(str).to_numpy(),
                    "tag": inf["tag"].astype(str).to_numpy(),
                    "score": inf["score"].to_numpy(np.float32),
                    "confidence": inf["confidence"].to_numpy(np.float32),
                    "rank": pd.array(inf["rank"].to_numpy(), dtype="Int64"),
                    "source": "inferred",
                    "origin": pd.array([pd.NA] * len(inf), dtype="string"),
                    "tag_raw": pd.array([pd.NA] * len(inf), dtype="string"),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df["_o"] = order.reindex(df["id"]).to_numpy()
    df["_s"] = (df["source"] == "inferred").astype(np.int8)
    df = df.sort_values(["_o", "_s", "rank", "tag"], kind="stable", na_position="first")
    df = df.drop(columns=["_o", "_s"]).reset_index(drop=True)
    for col in ("id", "tag", "source", "origin", "tag_raw"):
        df[col] = df[col].astype("string")
    return df


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the results (without importing them)."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def manifest(
    config: Mapping[str, Any],
    *,
    seed: int,
    timings: Mapping[str, float],
    counts: Mapping[str, Any],
    stages: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``manifest.json`` content (``created`` is the only time-dependent field)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ccgraph_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "config": dict(config),
        "packages": package_versions(),
        "timings_s": {k: round(float(v), 4) for k, v in timings.items()},
        "counts": dict(counts),
        "stages": dict(stages),
    }
