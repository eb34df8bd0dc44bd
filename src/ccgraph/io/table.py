"""Reader of generic item tables (CSV, TSV, Parquet, JSON Lines) through a column mapping."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ccgraph.containers import ITEM_COLUMNS
from ccgraph.exceptions import DataQualityWarning, InputError, ParameterError
from ccgraph.io._files import RawTable, iter_records
from ccgraph.io._rows import ParsedFile, RowCollector
from ccgraph.io._table_fast import parse_columns
from ccgraph.io._text import RawTag, parse_count, parse_tag_list, text_of

__all__ = ["TABLE_FIELDS", "check_columns", "parse_table"]

#: The ccgraph fields a table column can be mapped to.
TABLE_FIELDS = (
    "id",
    "title",
    "description",
    "tags",
    "popularity",
    "provider",
    "source",
    "license",
    "url",
    "image_path",
    "created_on",
)
_TEXT_FIELDS = (
    "title",
    "description",
    "provider",
    "source",
    "license",
    "url",
    "image_path",
    "created_on",
)


def check_columns(columns: Mapping[str, str] | None) -> tuple[dict[str, str], str | None]:
    """Validate a field -> column mapping; return it and a ``tags_sep`` given inside it."""
    mapping = dict(columns or {})
    sep = mapping.pop("tags_sep", None)
    unknown = sorted(set(mapping) - set(TABLE_FIELDS))
    if unknown:
        raise ParameterError(
            f"`columns` maps unknown fields {unknown}; allowed fields: {', '.join(TABLE_FIELDS)}"
        )
    bad = {k: v for k, v in mapping.items() if not isinstance(v, str) or not v}
    if bad:
        raise ParameterError(f"`columns` values must be column names (strings); got {bad}")
    return mapping, sep


def _resolve(raw: RawTable, mapping: dict[str, str]) -> dict[str, str]:
    present = [str(c) for c in raw.frame.columns]
    folded: dict[str, list[str]] = {}
    for c in present:
        folded.setdefault(c.strip().lower(), []).append(c)
    resolved: dict[str, str] = {}
    for name in TABLE_FIELDS:
        column = mapping.get(name)
        if column is not None:
            if column not in present:
                raise InputError(
                    f"{raw.path}: column {column!r} (mapped to `{name}`) not found; "
                    f"columns present: {present}; fix `data.columns.{name}` (field -> column "
                    "name) to name one of them"
                )
            resolved[name] = column
        elif name in present:
            resolved[name] = name
        elif len(folded.get(name, ())) == 1:  # "Title", " tags ": the field in another case
            resolved[name] = folded[name][0]
    if "id" not in resolved:
        raise InputError(
            f"{raw.path}: no id column; name one in the column mapping "
            f"(`columns: {{id: <column>}}`, config `data.columns.id`); columns present: {present}"
        )
    return resolved


#: Separators a tags column is commonly split by.
_OTHER_SEPS = (",", ";", "|")
#: Warn when at least this many values, and most values with more than one word, hold another
#: separator while (almost) none holds ``tags_sep``.
_MIN_SEP_EVIDENCE = 3
#: Rows looked at (the first ones).
_SAMPLE = 20_000


def _check_tags_sep(raw: RawTable, column: str, sep: str) -> None:
    """Warn when the tags column is clearly split by another separator than ``sep``."""
    values = [
        v.strip()
        for v in raw.frame[column].head(_SAMPLE).tolist()
        if isinstance(v, str) and v.strip() and not v.lstrip().startswith(("[", "{"))
    ]
    with_sep = sum(sep in v for v in values)
    multi = [v for v in values if any(ch.isspace() or ch in _OTHER_SEPS for ch in v)]
    for other in _OTHER_SEPS:
        if other == sep:
            continue
        hits = sum(other in v for v in multi)
        if hits >= _MIN_SEP_EVIDENCE and hits > len(multi) / 2 and with_sep * 20 < hits:
            warnings.warn(
                f"{raw.path}: column {column!r}: {hits} of {len(values)} tag values contain "
                f"{other!r} and {with_sep} contain the tags separator {sep!r}, so each such value "
                f"became one long tag; if {other!r} separates the tags, set `data.tags_sep: "
                f"{other!r}` (`tags_sep` in read_catalog)",
                DataQualityWarning,
                stacklevel=2,
            )
            return


def parse_table(
    raw: RawTable, *, columns: Mapping[str, str] | None = None, tags_sep: str = ","
) -> ParsedFile:
    """Parse a generic table into items, raw tags and rejects.

    A field not named in ``columns`` is taken from a column of the same name when there is
    one, else from the one column whose name matches it ignoring case and surrounding spaces
    (``Title``, ``TAGS``). The tags column is a ``tags_sep``-separated string, a JSON list (of
    names or of ``{"name", "provider", "accuracy"}`` objects) or a list value (Parquet).
    ``popularity`` must be a non-negative number; a bad value is set to NaN and recorded in the
    rejects (stage ``popularity``). Columns that map to no field are kept as extra item columns.

    Raises
    ------
    InputError
        A mapped column is missing, or no id column is mapped or named ``id``.
    """
    mapping, sep_override = check_columns(columns)
    sep = sep_override or tags_sep
    fields = _resolve(raw, mapping)
    if "tags" in fields:
        _check_tags_sep(raw, fields["tags"], sep)
    used = set(fields.values())
    extras = [
        str(c)
        for c in raw.frame.columns
        if str(c) not in used and str(c) not in ITEM_COLUMNS and not str(c).startswith("_")
    ]
    fast = parse_columns(raw, fields, extras, _TEXT_FIELDS, sep=sep)  # the same, by column
    if fast is not None:
        return fast
    out = RowCollector(raw.path)
    pop_col = fields.get("popularity")
    for n, row in enumerate(iter_records(raw.frame), start=1):
        item_id = text_of(row[fields["id"]])
        if not item_id:
            out.reject(n, "", "read", f"empty id in column {fields['id']!r}")
            continue
        item: dict[str, Any] = {
            name: text_of(row[fields[name]]) if name in fields else "" for name in _TEXT_FIELDS
        }
        item["id"] = item_id
        item["_row"] = n
        if pop_col is not None:
            value, problem = parse_count(row[pop_col])
            if problem:
                out.reject(n, item_id, "popularity", f"column {pop_col!r}: {problem}")
            item["popularity_raw"] = value
            item["popularity_metric"] = pop_col
        for col in extras:
            item[col] = row[col]
        tags: list[RawTag] = []
        problems: list[str] = []
        if "tags" in fields:
            tags, problems = parse_tag_list(
                row[fields["tags"]], default_provider=item["provider"], sep=sep
            )
        if problems:
            out.reject(n, item_id, "tags", "; ".join(problems[:3]))
        out.add(item, tags)
    return out.build("table", len(raw.frame))
