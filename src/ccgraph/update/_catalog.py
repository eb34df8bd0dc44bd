"""The catalog side of an update: read the batch, sort its rows into changes, merge with the run.

A run directory keeps, per item, what the later stages need (title, provider, license, url,
image path, raw popularity in ``items.parquet``; observed tags with their weights in
``tags.parquet``), so the catalog of the updated run is rebuilt from the run plus the batch
without reading the original catalog files again.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.config import Config
from ccgraph.containers import ITEM_COLUMNS, REJECT_COLUMNS, TAG_COLUMNS, Catalog, RunResult
from ccgraph.exceptions import DataQualityWarning, InputError
from ccgraph.update._persist import leading_positions, member

__all__ = ["Changes", "merged_catalog", "plan_changes", "read_batch", "run_catalog"]

logger = logging.getLogger(__name__)


@dataclass
class Changes:
    """How the batch relates to the run: ids added, present again (candidates), removed."""

    added: np.ndarray
    present: np.ndarray
    removed: np.ndarray
    unknown_removals: list[str] = field(default_factory=list)


def read_batch(source: Catalog | str | Path, cfg: Config) -> Catalog:
    """The batch of new rows, read with the run's ``data`` options (removed rows kept)."""
    from ccgraph.io import read_catalog

    if isinstance(source, Catalog):
        return source
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"new catalog not found: {path}")
    d = cfg.data
    try:
        return read_catalog(
            path,
            format=d.format,
            columns=d.columns,
            tags_sep=d.tags_sep,
            on_duplicate=d.on_duplicate,
            include_removed=True,
            hygiene=d.tags,
            image_root=cfg.resolve(d.image_root) if d.image_root else None,
            require_image=d.require_image,
        )
    except InputError as exc:
        # a header-only batch is a removal-only update (`--remove`), not a broken catalog
        if "have a header but no data rows" not in str(exc):
            raise
    logger.info("%s: no rows (an update that only removes items)", path)
    items = pd.DataFrame({c: pd.Series(dtype=object) for c in ITEM_COLUMNS})
    tags = pd.DataFrame({c: pd.Series(dtype=object) for c in TAG_COLUMNS})
    return Catalog(items, tags, params={"path": str(path)})


def plan_changes(run_ids: Any, batch: Catalog, remove: Iterable[str] = ()) -> Changes:
    """Sort the batch: removed (flagged or listed), present in the run, or added.

    ``run_ids`` are the run's item ids (an array, or the run's Arrow-backed ``id`` column,
    looked up as it is).
    """
    from ccgraph.update._persist import _as_arrow

    run = _as_arrow(run_ids)
    items = batch.items
    ids = items["id"].astype(str).to_numpy()
    flagged = (
        items["removed"].fillna(False).astype(bool).to_numpy()
        if "removed" in items.columns
        else np.zeros(len(ids), dtype=bool)
    )
    listed = {str(x) for x in remove}
    gone = np.array(sorted(set(ids[flagged].tolist()) | listed), dtype=str)
    rest = ids[~member(ids, gone)]
    # one lookup in the run's ids (hashing 100k ids costs more than probing the batch's)
    found = member(np.concatenate([gone, rest]), run)
    gone_in_run, in_run = found[: len(gone)], found[len(gone) :]
    removed = gone[gone_in_run]
    unknown = gone[~gone_in_run].tolist()
    if unknown:
        logger.info("%d removals name items that are not in the run (ignored)", len(unknown))
    # rows flagged removed may well never have been in the run; ids listed on purpose must be
    unlisted = [i for i in unknown if i in listed]
    if unlisted:
        warnings.warn(
            f"{len(unlisted)} of {len(listed)} ids to remove are not in the run and were "
            f"ignored (e.g. {unlisted[:3]}): check the ids file (`--remove`, one id a line, "
            "the ids of the run's items.parquet)",
            DataQualityWarning,
            stacklevel=3,
        )
    # a row sent in the batch and also listed to remove: the removal wins, say so
    unflagged = ids[~flagged] if listed else ids[:0]
    sent = np.unique(unflagged[member(unflagged, np.array(sorted(listed), dtype=str))])
    if len(sent):
        warnings.warn(
            f"{len(sent)} ids are both rows of the batch and listed to remove (e.g. "
            f"{sent[:3].tolist()}): they are removed and their rows ignored; to replace an "
            "item, send its row without listing it in `--remove`",
            DataQualityWarning,
            stacklevel=3,
        )
    return Changes(
        added=rest[~in_run], present=rest[in_run], removed=removed, unknown_removals=unknown
    )


def run_catalog(old: RunResult) -> Catalog:
    """The run's items and observed tags as a :class:`Catalog` (the fields later stages use).

    String columns stay Arrow-backed (``str`` dtype, missing text as ``""``): no Python string
    is made per item.
    """
    items = old.items
    frame = pd.DataFrame({"id": items["id"].astype(str).array})
    for col in ITEM_COLUMNS[1:]:
        if col == "popularity_raw":
            frame[col] = pd.to_numeric(items.get("popularity_observed"), errors="coerce")
        elif col in items.columns:
            frame[col] = items[col].fillna("").astype(str).array
        elif col == "removed":
            frame[col] = False
    source = old.tags["source"]
    observed = _equals(source, "observed")
    obs = old.tags[["id", "tag", "tag_raw", "origin", "score"]][observed]
    tags = pd.DataFrame(
        {
            "id": obs["id"].astype(str).array,
            "tag": obs["tag"].astype(str).array,
            "tag_raw": obs["tag_raw"].astype(str).array,
            "source": obs["origin"].astype(str).array,
            "provider": pd.array(np.full(len(obs), None, dtype=object), dtype="string"),
            "weight": pd.to_numeric(obs["score"], errors="coerce").to_numpy(np.float64),
        }
    )
    return Catalog(frame, tags[list(TAG_COLUMNS)], pd.DataFrame(columns=REJECT_COLUMNS))


def _equals(column: pd.Series, value: str) -> np.ndarray:
    """``(column.astype(str) == value).to_numpy(bool)``; an Arrow column by Arrow's kernel."""
    arr = column.array
    if isinstance(arr, pd.arrays.ArrowStringArray):
        import pyarrow.compute as pc

        found = pc.equal(arr._pa_array, value).fill_null(False)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    return (column.astype(str) == value).to_numpy(bool)


def merged_catalog(
    run: Catalog, batch: Catalog, ids: np.ndarray, *, from_batch: np.ndarray
) -> Catalog:
    """Items ``ids`` in order: rows of ``from_batch`` ids from the batch, the rest from the run."""
    from ccgraph.update._persist import _as_arrow

    take = _as_arrow(from_batch)
    ids_arrow = _as_arrow(ids)  # converted once, looked up three times
    cols = [c for c in ITEM_COLUMNS if c in run.items.columns or c in batch.items.columns]
    from_run = ~member(run.items["id"], take)
    old_items = run.items if from_run.all() else run.items[from_run]
    new_items = batch.items[member(batch.items["id"], take)]
    items = pd.concat(
        [old_items.reindex(columns=cols), new_items.reindex(columns=cols)], ignore_index=True
    )
    rows = leading_positions(ids_arrow, items["id"])  # usually the rows in order
    if (rows < 0).any():
        raise InputError("internal: an item of the update has no catalog row")
    items = items.take(rows).reset_index(drop=True)  # (also joins the Arrow chunks)
    for col in ("popularity_raw",):
        if col in items.columns:
            items[col] = pd.to_numeric(items[col], errors="coerce")
    old_tags = run.tags[~member(run.tags["id"], take) & member(run.tags["id"], ids_arrow)]
    new_tags = batch.tags[member(batch.tags["id"], take)]
    tags = pd.concat(
        [old_tags.reindex(columns=TAG_COLUMNS), new_tags.reindex(columns=TAG_COLUMNS)],
        ignore_index=True,
    )
    return Catalog(items, tags, pd.DataFrame(columns=REJECT_COLUMNS), dict(batch.params))
