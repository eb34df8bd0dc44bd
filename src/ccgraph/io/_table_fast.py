"""Column-wise parsing of generic tables: the same result as the row loop, without it.

:func:`ccgraph.io.table.parse_table` calls :func:`parse_columns` first; it returns ``None``
when a column holds values it does not handle in bulk (a tags column that is not a list of
strings, for instance), and the row-by-row parser runs instead. At a million rows the row loop
costs ~30 cpu-s; this path ~2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ccgraph.containers import ITEM_COLUMNS, REJECT_COLUMNS
from ccgraph.io._files import RawTable
from ccgraph.io._rows import ParsedFile
from ccgraph.io._text import is_missing, parse_count, text_of

__all__ = ["parse_columns"]


def _is_text(col: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(col.dtype) and col.dtype != object


def _keeps_dtype(dtype: Any) -> bool:
    """Whether ``pd.DataFrame({c: col.to_numpy()[rows]})`` gives ``col``'s dtype back."""
    if isinstance(dtype, pd.CategoricalDtype):
        return True
    if isinstance(dtype, np.dtype):
        return dtype.kind in "biufcmM"
    return dtype == pd.StringDtype(na_value=np.nan)


def _text(col: pd.Series) -> np.ndarray:
    """``text_of`` of every value, as an object array of str."""
    if _is_text(col):
        s = col.fillna("").str.strip()
        return np.asarray(s.where(s != "\\N", ""), dtype=object)
    return np.asarray([text_of(v) for v in col.tolist()], dtype=object)


def _counts(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``parse_count`` of every value: values and a per-row problem (or None).

    A numeric column is parsed in bulk; any other (a CSV column read as text) value by value.
    """
    if not (pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col)):
        values = np.empty(len(col), dtype=np.float64)
        problem = np.empty(len(col), dtype=object)
        for i, value in enumerate(col.tolist()):
            values[i], problem[i] = parse_count(value)
        return values, problem
    x = col.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(x)
    bad = ~missing & (~np.isfinite(x) | (x < 0))
    problem = np.full(len(x), None, dtype=object)
    for row in np.flatnonzero(bad):
        problem[row] = f"{float(x[row])!r} is not a non-negative finite number"
    return np.where(bad, np.nan, x), problem


def _tag_lists(col: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Offsets and flat values of a column of string lists (None when it is anything else)."""
    import pyarrow as pa

    try:
        arr = pa.array(col.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if pa.types.is_null(arr.type):
        return np.zeros(len(col) + 1, dtype=np.int64), np.zeros(0, dtype=object)
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        return None
    if not (pa.types.is_string(arr.type.value_type) or pa.types.is_null(arr.type.value_type)):
        return None
    if arr.values.null_count:  # a None inside a list is a problem the row parser reports
        return None
    arr = arr.fill_null(pa.scalar([], arr.type))
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    values = np.asarray(arr.flatten().to_pylist() if len(arr) else [], dtype=object)
    return offsets - offsets[0], values


def _split_tags(col: pd.Series, sep: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    r"""Offsets and flat names of a column of ``sep``-separated tag strings, as the row parser.

    Each cell is split as :func:`~ccgraph.io._text.parse_tag_list` splits it: a missing cell
    (None, NaN, blank, ``\N``) has no tags, the other names are stripped and empty ones
    dropped. None when a cell is anything else (a JSON list or object, a number): the row
    parser handles those.
    """
    if not sep:
        return None
    offsets = np.zeros(len(col) + 1, dtype=np.int64)
    names: list[str] = []
    for i, value in enumerate(col.tolist()):
        if not is_missing(value):
            if not isinstance(value, str):
                return None
            text = value.strip()
            if text.startswith(("[", "{")):
                return None
            names.extend(t.strip() for t in text.split(sep) if t.strip())
        offsets[i + 1] = len(names)
    return offsets, np.asarray(names, dtype=object)


def parse_columns(
    raw: RawTable,
    fields: dict[str, str],
    extras: list[str],
    text_fields: tuple[str, ...],
    *,
    sep: str | None = None,
) -> ParsedFile | None:
    """Parse ``raw`` column-wise, or return None when a column needs the row parser.

    ``fields`` maps ccgraph fields to columns (as resolved by ``parse_table``); ``extras`` are
    the unmapped columns kept as they are; ``sep`` separates the tags of a text cell.
    """
    frame = raw.frame
    n_rows = len(frame)
    tags = None
    if "tags" in fields:
        tags = _tag_lists(frame[fields["tags"]])
        if tags is None:
            tags = _split_tags(frame[fields["tags"]], sep)
        if tags is None:
            return None
    pop_col = fields.get("popularity")
    pop = None
    if pop_col is not None:
        pop = _counts(frame[pop_col])
    ids = _text(frame[fields["id"]])
    keep = ids != ""
    rows = np.arange(1, n_rows + 1, dtype=np.int64)
    rej: list[tuple[np.ndarray, np.ndarray, str, np.ndarray, int]] = []
    empty = np.flatnonzero(~keep)
    if empty.size:
        reason = f"empty id in column {fields['id']!r}"
        rej.append(
            (
                rows[empty],
                np.full(empty.size, "", object),
                "read",
                np.full(empty.size, reason, object),
                0,
            )
        )
    cols: dict[str, Any] = {}
    for name in text_fields:
        cols[name] = (
            _text(frame[fields[name]])[keep]
            if name in fields
            else np.full(int(keep.sum()), "", object)
        )
    cols["id"] = ids[keep]
    kept_rows = rows[keep]
    cols["_row"] = kept_rows
    if pop is not None:
        value, problem = pop
        cols["popularity_raw"] = value[keep]
        cols["popularity_metric"] = np.full(len(kept_rows), pop_col, dtype=object)
        bad = np.flatnonzero(problem[keep] != None)  # noqa: E711 (object array)
        if bad.size:
            msg = np.array([f"column {pop_col!r}: {p}" for p in problem[keep][bad]], dtype=object)
            rej.append((kept_rows[bad], cols["id"][bad], "popularity", msg, 1))
    # extra columns (a catalog may have thousands) are taken in one go: those a row filter
    # keeps as they are by it, object ones through one 2-D array (the DataFrame constructor
    # infers each column as it does a 1-D one); any other dtype one by one
    dtypes = frame.dtypes
    fresh = [c for c in extras if c not in cols]  # (an extra named like a field column wins)
    same = [c for c in fresh if _keeps_dtype(dtypes[c])]
    objs = [c for c in fresh if isinstance(dtypes[c], np.dtype) and dtypes[c].kind == "O"]
    taken = {*same, *objs}
    for col in extras:
        if col not in taken:
            cols[col] = (
                frame[col].to_numpy()[keep]
                if not isinstance(dtypes[col], pd.CategoricalDtype)
                else frame[col][keep].reset_index(drop=True)
            )
    items = pd.DataFrame(cols)
    for col in (*ITEM_COLUMNS, "_row"):
        if col not in items.columns:
            items[col] = np.nan if col == "popularity_raw" else ""
    items["removed"] = False
    items["popularity_raw"] = pd.to_numeric(items["popularity_raw"], errors="coerce").astype(
        "float64"
    )
    rest = [c for c in items.columns if c not in ITEM_COLUMNS]
    items = items[[*ITEM_COLUMNS, *rest]]
    if same or objs:
        at = np.flatnonzero(keep)
        parts = [items, frame[same].iloc[at].reset_index(drop=True)]
        if objs:
            parts.append(pd.DataFrame(frame[objs].to_numpy()[at], columns=objs))
        items = pd.concat(parts, axis=1)
        new = set(fresh)
        items = items[[*ITEM_COLUMNS, *(c for c in rest if c not in new), *fresh]]

    if tags is not None:
        offsets, values = tags
        counts = np.diff(offsets)
        owner = np.repeat(np.arange(n_rows), counts)
        stripped = pd.Series(values, dtype=object).str.strip().to_numpy(dtype=object)
        ok = (stripped != "") & keep[owner]
        pos = np.cumsum(keep) - 1  # row -> position among kept items
        owner = owner[ok]
        tag_frame = pd.DataFrame(
            {
                "_pos": pos[owner].astype(np.int64),
                "tag_raw": values[ok],
                "source": np.full(len(owner), "user", dtype=object),
                "provider": items["provider"].to_numpy(dtype=object)[pos[owner]],
                "weight": np.ones(len(owner), dtype=np.float64),
            }
        )
    else:
        tag_frame = pd.DataFrame(
            {
                "_pos": np.zeros(0, dtype=np.int64),
                "tag_raw": [],
                "source": [],
                "provider": [],
                "weight": np.zeros(0, dtype=np.float64),
            }
        )
    if rej:
        row = np.concatenate([r[0] for r in rej])
        order = np.lexsort((np.concatenate([np.full(len(r[0]), r[4]) for r in rej]), row))
        rejects = pd.DataFrame(
            {
                "file": str(raw.path),
                "row": row[order].astype("int64"),
                "id": np.concatenate([r[1] for r in rej])[order],
                "stage": np.concatenate([np.full(len(r[0]), r[2], dtype=object) for r in rej])[
                    order
                ],
                "reason": np.concatenate([r[3] for r in rej])[order],
            },
            columns=list(REJECT_COLUMNS),
        )
    else:
        rejects = pd.DataFrame(columns=list(REJECT_COLUMNS))
        rejects["row"] = rejects["row"].astype("int64")
    return ParsedFile(raw.path, "table", n_rows, items, tag_frame, rejects, {})
