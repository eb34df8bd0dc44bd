"""The answers a run gives about one item: its clusters, related items and tags."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["RELATED_COLUMNS", "TAG_COLUMNS", "ClusterAnswer", "ItemAnswer"]

#: Columns of a ``related`` answer.
RELATED_COLUMNS = ("id", "rank", "score", "relation", "cluster", "duplicate_group")
#: Columns of a ``tags`` answer.
TAG_COLUMNS = ("tag", "source", "score", "confidence", "rank", "origin")


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar (numpy and pandas scalars to Python, NA / NaN to None)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    cols = list(frame.columns)
    return [
        {c: _plain(v) for c, v in zip(cols, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


@dataclass(frozen=True, slots=True, eq=False)
class ClusterAnswer:
    """The cluster or clusters of one item, with numbers.

    Attributes
    ----------
    id
        The item's id (``None`` for a new item).
    default_level
        The level written to the run's ``cluster`` column.
    levels
        One row per hierarchy level (0 = coarsest): ``level``, ``cluster``, ``strength`` (share
        of the item's edge weight, or of its neighbours' similarity for a new item, that falls
        inside that cluster), ``size`` and ``label`` (from ``clusters.parquet``).
    secondary
        The other clusters the item's edges (or neighbours) reach: ``level``, ``cluster``,
        ``share``, ``size``, ``label``; sorted by level, then by share (largest first).
    """

    id: str | None
    default_level: int
    levels: pd.DataFrame
    secondary: pd.DataFrame

    @property
    def cluster(self) -> int:
        """The item's cluster at the default level."""
        return int(self.levels["cluster"].iloc[self.default_level])

    @property
    def strength(self) -> float:
        """The membership strength at the default level (0..1)."""
        return float(self.levels["strength"].iloc[self.default_level])

    def shares(self, level: int | None = None) -> pd.DataFrame:
        """The item's own and secondary clusters at ``level`` (default level if ``None``).

        Columns ``cluster``, ``share``, ``label``; the shares sum to 1 unless the item has no
        edges (then its own cluster alone, with share 1).
        """
        lev = self.default_level if level is None else int(level)
        own = self.levels[self.levels["level"] == lev]
        own = own.rename(columns={"strength": "share"})[["cluster", "share", "label"]]
        sec = self.secondary[self.secondary["level"] == lev][["cluster", "share", "label"]]
        return pd.concat([own, sec], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "id": self.id,
            "cluster": self.cluster,
            "strength": self.strength,
            "default_level": self.default_level,
            "levels": _records(self.levels),
            "secondary": _records(self.secondary),
        }

    def __repr__(self) -> str:
        return (
            f"ClusterAnswer(id={self.id!r}, cluster={self.cluster}, "
            f"strength={self.strength:.3f}, secondary={len(self.secondary)})"
        )


@dataclass(frozen=True, slots=True, eq=False)
class ItemAnswer:
    """All three answers about one item (known or new).

    Attributes
    ----------
    query
        What was asked: the id, the text, the image path, or ``"vector"``.
    clusters
        See :class:`ClusterAnswer`.
    related
        Columns :data:`RELATED_COLUMNS` plus ``title`` when the run has titles.
    tags
        Columns :data:`TAG_COLUMNS`.
    neighbors
        For a new item: its nearest stored items, ``id``, ``modality``, ``similarity``,
        ``edge`` (the run's graph rule would link them) and ``weight`` (its share in the
        answers; 0 for non-edges); ``None`` for an item of the run.
    """

    query: str
    clusters: ClusterAnswer
    related: pd.DataFrame
    tags: pd.DataFrame
    neighbors: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        out = {
            "query": self.query,
            "clusters": self.clusters.to_dict(),
            "related": _records(self.related),
            "tags": _records(self.tags),
        }
        if self.neighbors is not None:
            out["neighbors"] = _records(self.neighbors)
        return out

    def __repr__(self) -> str:
        return (
            f"ItemAnswer(query={self.query!r}, cluster={self.clusters.cluster}, "
            f"related={len(self.related)}, tags={len(self.tags)})"
        )
