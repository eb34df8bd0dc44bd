"""The per-file result of a catalog reader: items, raw tags and rejects, before merging."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.containers import ITEM_COLUMNS, REJECT_COLUMNS
from ccgraph.io._text import RawTag

__all__ = ["ParsedFile", "RowCollector"]

_FLOAT_ITEM_COLUMNS = {"popularity_raw"}
_BOOL_ITEM_COLUMNS = {"removed"}


@dataclass
class ParsedFile:
    """Items of one file (with ``_row``, the 1-based data row), their raw tags and rejects.

    ``tags`` has ``_pos`` (the item's position in ``items``), ``tag_raw``, ``source``,
    ``provider`` and ``weight``.
    """

    path: Path
    format: str
    n_rows: int
    items: pd.DataFrame
    tags: pd.DataFrame
    rejects: pd.DataFrame
    fixes: dict[str, int] = field(default_factory=dict)


@dataclass
class RowCollector:
    """Accumulates parsed rows of one file and builds a :class:`ParsedFile`."""

    path: Path
    float_extras: tuple[str, ...] = ()
    items: list[dict[str, Any]] = field(default_factory=list)
    tag_pos: list[int] = field(default_factory=list)
    tags: list[RawTag] = field(default_factory=list)
    rejects: list[tuple[str, int, str, str, str]] = field(default_factory=list)
    fixes: dict[str, int] = field(default_factory=dict)

    def fixed(self, what: str) -> None:
        """Count a value that was repaired rather than rejected (e.g. a URL without scheme)."""
        self.fixes[what] = self.fixes.get(what, 0) + 1

    def reject(self, row: int, item_id: str, stage: str, reason: str) -> None:
        """Record an unusable row or value."""
        self.rejects.append((str(self.path), row, item_id, stage, reason))

    def add(self, item: dict[str, Any], tags: list[RawTag]) -> None:
        """Add an item (a dict with ``_row``) and its tags."""
        pos = len(self.items)
        self.items.append(item)
        self.tag_pos.extend([pos] * len(tags))
        self.tags.extend(tags)

    def build(self, fmt: str, n_rows: int) -> ParsedFile:
        """Assemble the tables: every ``ITEM_COLUMNS`` column present, typed."""
        items = pd.DataFrame.from_records(self.items)
        for col in (*ITEM_COLUMNS, "_row"):
            if col not in items.columns:
                items[col] = np.nan if col in _FLOAT_ITEM_COLUMNS else ""
        items["removed"] = items["removed"].map(lambda v: v is True).astype(bool)
        for col in (*_FLOAT_ITEM_COLUMNS, *self.float_extras):
            if col in items.columns:
                items[col] = pd.to_numeric(items[col], errors="coerce").astype("float64")
        items["_row"] = items["_row"].astype("int64") if len(items) else items["_row"]
        rest = [c for c in items.columns if c not in ITEM_COLUMNS]
        items = items[[*ITEM_COLUMNS, *rest]]
        tags = pd.DataFrame(
            {
                "_pos": np.asarray(self.tag_pos, dtype=np.int64),
                "tag_raw": [t.raw for t in self.tags],
                "source": [t.source for t in self.tags],
                "provider": [t.provider for t in self.tags],
                "weight": np.asarray([t.weight for t in self.tags], dtype=np.float64),
            }
        )
        rejects = pd.DataFrame(self.rejects, columns=list(REJECT_COLUMNS))
        rejects["row"] = rejects["row"].astype("int64")
        return ParsedFile(self.path, fmt, n_rows, items, tags, rejects, dict(self.fixes))
