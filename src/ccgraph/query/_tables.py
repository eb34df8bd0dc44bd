"""Per-item lookups over a loaded run: id positions, cluster levels, tag slices, groups.

Private to :mod:`ccgraph.query`: built once when a run is opened, then every lookup is an
array slice (no pandas filtering per query).
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.exceptions import InputError

__all__ = ["ClusterInfo", "IdLookup", "TagTable", "group_index", "level_matrix"]

_LEVEL = re.compile(r"^cluster_l(\d+)$")


class IdLookup:
    """Item id to row position, with close-id suggestions for unknown ids."""

    def __init__(self, ids: np.ndarray, where: str) -> None:
        self.ids = ids
        self.where = where
        self._pos = {s: i for i, s in enumerate(ids.tolist())}
        self._sorted: list[str] | None = None

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and item_id in self._pos

    def position(self, item_id: Any, *, name: str = "id") -> int:
        """Row of ``item_id``; raises :class:`InputError` (with close ids) if unknown."""
        if isinstance(item_id, (int, np.integer)) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if isinstance(item_id, np.str_):
            item_id = str(item_id)
        if not isinstance(item_id, str):
            raise InputError(
                f"`{name}` must be an item id (a string); got {type(item_id).__name__}"
            )
        pos = self._pos.get(item_id)
        if pos is not None:
            return pos
        if not item_id.strip():
            raise InputError(f"`{name}` is empty; give the id of an item of the run {self.where}")
        hint = self.suggest(item_id)
        more = f"; close ids: {', '.join(repr(h) for h in hint)}" if hint else ""
        raise InputError(
            f"`{name}` {item_id!r} is not an item of the run {self.where} "
            f"({len(self._pos)} items){more}"
        )

    def suggest(self, item_id: str, n: int = 3) -> list[str]:
        """Up to ``n`` ids close to ``item_id`` (same case-folded text, or near in sort order)."""
        if self._sorted is None:
            self._sorted = sorted(self._pos)
        folded = item_id.strip().casefold()
        around: list[str] = []
        for probe in {item_id, item_id.strip(), folded, item_id.strip().upper()}:
            at = bisect.bisect_left(self._sorted, probe)
            around.extend(self._sorted[max(0, at - 25) : at + 25])
        exact = [s for s in around if s.casefold() == folded]
        close = difflib.get_close_matches(item_id, sorted(set(around)), n=n, cutoff=0.6)
        return list(dict.fromkeys(exact + close))[:n]


def level_matrix(items: pd.DataFrame, manifest: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """``int64 [n_levels, n]`` cluster labels (level 0 coarsest) and the default level."""
    found = sorted((int(m.group(1)), c) for c in items.columns if (m := _LEVEL.match(str(c))))
    cols = [c for _, c in found] or ["cluster"]
    levels = np.vstack([items[c].to_numpy(np.int64) for c in cols])
    default = None
    for source in (manifest.get("counts", {}), manifest.get("stages", {}).get("cluster", {})):
        if isinstance(source, Mapping) and isinstance(source.get("default_level"), int):
            default = int(source["default_level"])
            break
    cluster = items["cluster"].to_numpy(np.int64)
    if default is None or not 0 <= default < len(levels):
        match = [i for i in range(len(levels)) if np.array_equal(levels[i], cluster)]
        default = match[0] if match else 0
    return levels, default


class ClusterInfo:
    """Size and label of each cluster at each level (from ``clusters.parquet``)."""

    def __init__(self, clusters: pd.DataFrame, levels: np.ndarray) -> None:
        self._size: list[dict[int, int]] = []
        self._label: list[dict[int, str]] = []
        have = {"level", "cluster"} <= set(clusters.columns)
        for lev in range(len(levels)):
            sub = clusters[clusters["level"] == lev] if have else clusters.iloc[:0]
            ids = sub["cluster"].to_numpy(np.int64) if have else np.zeros(0, np.int64)
            if "size" in sub.columns and len(sub):
                sizes = dict(zip(ids.tolist(), sub["size"].astype(int).tolist(), strict=True))
            else:
                u, c = np.unique(levels[lev], return_counts=True)
                sizes = dict(zip(u.tolist(), c.tolist(), strict=True))
            labels = (
                dict(zip(ids.tolist(), sub["label"].fillna("").astype(str).tolist(), strict=True))
                if "label" in sub.columns
                else {}
            )
            self._size.append(sizes)
            self._label.append(labels)

    def size(self, level: int, cluster: int) -> int:
        """Number of items in ``cluster`` at ``level`` (0 if unknown)."""
        return self._size[level].get(int(cluster), 0)

    def label(self, level: int, cluster: int) -> str:
        """The cluster's short text label ("" if none)."""
        return self._label[level].get(int(cluster), "")


class TagTable:
    """``tags.parquet`` grouped by item row: slices, tag codes and confidences."""

    COLUMNS = ("tag", "source", "score", "confidence", "rank", "origin")

    def __init__(self, tags: pd.DataFrame, lookup: IdLookup) -> None:
        rows = pd.Index(lookup.ids).get_indexer(tags["id"].astype(str).to_numpy())
        keep = rows >= 0
        order = np.argsort(rows[keep], kind="stable")
        frame = tags.loc[keep].iloc[order].reset_index(drop=True)
        for col in self.COLUMNS:
            if col not in frame.columns:
                frame[col] = pd.NA
        self.frame = frame[list(self.COLUMNS)]
        counts = np.bincount(rows[keep], minlength=len(lookup))
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        codes, uniques = pd.factorize(self.frame["tag"].astype(str), sort=False)
        self.codes = np.asarray(codes, dtype=np.int64)
        self.names = np.asarray(uniques, dtype=object)
        conf = pd.to_numeric(self.frame["confidence"], errors="coerce").to_numpy(np.float64)
        self.confidence = np.nan_to_num(conf, nan=0.0)

    def of(self, row: int) -> pd.DataFrame:
        """The tag rows of one item (observed first, then inferred by rank)."""
        lo, hi = self.indptr[row], self.indptr[row + 1]
        return self.frame.iloc[lo:hi].reset_index(drop=True)

    def combine(self, rows: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
        """Similarity-weighted tags of ``rows``: tag codes, support share, confidence.

        ``weights`` sum to 1. An item's tag counts once, with its largest confidence.
        """
        spans = [(self.indptr[r], self.indptr[r + 1]) for r in rows]
        idx = np.concatenate([np.arange(lo, hi) for lo, hi in spans] or [np.zeros(0, np.int64)])
        if idx.size == 0:
            empty = np.zeros(0)
            return np.zeros(0, dtype=np.int64), empty, empty
        owner = np.repeat(np.arange(len(rows)), [hi - lo for lo, hi in spans])
        codes = self.codes[idx]
        conf = self.confidence[idx]
        # one entry per (item, tag): the largest confidence
        key = owner * (len(self.names) + 1) + codes
        order = np.lexsort((-conf, key))
        first = np.ones(len(order), dtype=bool)
        first[1:] = key[order][1:] != key[order][:-1]
        sel = order[first]
        uniq, inv = np.unique(codes[sel], return_inverse=True)
        w = weights[owner[sel]]
        support = np.bincount(inv, weights=w, minlength=len(uniq))
        confidence = np.bincount(inv, weights=w * conf[sel], minlength=len(uniq))
        return uniq, support, confidence


def group_index(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by group, the CSR-style pointer, and each group's slot in it."""
    order = np.argsort(group, kind="stable")
    uniq, counts = np.unique(group[order], return_counts=True)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return order, indptr, uniq
