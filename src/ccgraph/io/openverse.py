r"""Reader of Openverse / CC Search catalog rows (all known layouts, 2018 to 2023).

Handles the ``image`` table dumps of the Openverse API (2023, ``identifier`` + ``tags`` +
``meta_data`` + ``standardized_popularity``), the CC Catalog API (2018, numeric ``id``) and the
provider-script TSV outputs (2019-2020, ``\N`` nulls, ids from ``provider:foreign_identifier``).
Rows are parsed defensively: a row without any id is rejected; a bad ``tags``, ``meta_data`` or
popularity value keeps the item but is recorded in the rejects with its stage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from ccgraph.exceptions import InputError
from ccgraph.io._files import RawTable, iter_records
from ccgraph.io._rows import ParsedFile, RowCollector
from ccgraph.io._text import (
    clean_text,
    fix_url,
    is_missing,
    parse_count,
    parse_tag_list,
    text_of,
)

__all__ = ["POPULARITY_METRICS", "looks_like_openverse", "parse_openverse"]

#: ``meta_data`` keys holding a raw popularity count, in order of preference.
POPULARITY_METRICS = ("views", "global_usage_count")
_SIGNATURE = {"foreign_identifier", "meta_data", "tags", "provider", "url"}
_TRUE = {"t", "true", "1", "yes", "y"}


def looks_like_openverse(columns: Iterable[str]) -> bool:
    """Whether a header has the Openverse catalog signature (``foreign_identifier``, ...)."""
    return _SIGNATURE <= {str(c).strip().lower() for c in columns}


def _item_id(row: dict[str, Any]) -> str:
    for key in ("identifier", "id"):
        value = text_of(row.get(key))
        if value:
            return value
    provider = text_of(row.get("provider"))
    foreign = text_of(row.get("foreign_identifier"))
    return f"{provider}:{foreign}" if provider and foreign else ""


def _json_object(value: Any) -> tuple[dict[str, Any], str | None]:
    if is_missing(value):
        return {}, None
    if isinstance(value, dict):
        return value, None
    try:
        obj = json.loads(str(value))
    except json.JSONDecodeError as exc:
        return {}, f"meta_data is not valid JSON ({exc.msg} at character {exc.pos})"
    except RecursionError:
        return {}, "meta_data is JSON nested too deeply to read"
    if obj is None:
        return {}, None
    if not isinstance(obj, dict):
        return {}, f"meta_data is a JSON {type(obj).__name__}, not an object"
    return obj, None


def _description(meta: dict[str, Any], n: int, item_id: str, out: RowCollector) -> str:
    """``meta_data.description`` as text; a JSON object or list there is rejected, not shown."""
    value = meta.get("description")
    if isinstance(value, (dict, list)):
        out.reject(
            n, item_id, "meta_data", f"meta_data.description is a JSON {type(value).__name__}"
        )
        return ""
    return clean_text(value)


def _standardized(row: dict[str, Any], n: int, item_id: str, out: RowCollector) -> float:
    """``standardized_popularity`` (Openverse's p = x / (x + C), in [0, 1]) or NaN, noted."""
    value = row.get("standardized_popularity")
    std, problem = parse_count(value)
    if problem is None and std > 1:
        problem = f"{std!r} is above 1"
    if problem:
        out.reject(
            n, item_id, "popularity", f"standardized_popularity: {problem} (expected 0 to 1)"
        )
        return math.nan
    return std


def _summary(problems: list[str]) -> str:
    head = "; ".join(problems[:3])
    return head + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")


def _parse_row(row: dict[str, Any], n: int, out: RowCollector, has_std: bool) -> None:
    item_id = _item_id(row)
    if not item_id:
        out.reject(n, "", "read", "no id: identifier, id and provider:foreign_identifier are empty")
        return
    provider = text_of(row.get("provider"))
    meta, meta_problem = _json_object(row.get("meta_data"))
    if meta_problem:
        out.reject(n, item_id, "meta_data", meta_problem)
    popularity, metric = math.nan, ""
    for key in POPULARITY_METRICS:
        if key in meta and not is_missing(meta[key]):
            metric = key
            popularity, problem = parse_count(meta[key])
            if problem:
                out.reject(n, item_id, "popularity", f"meta_data.{key}: {problem}")
            break
    tags, problems = parse_tag_list(row.get("tags"), default_provider=provider)
    if problems:
        out.reject(n, item_id, "tags", _summary(problems))
    url = fix_url(row.get("url"))
    if url != text_of(row.get("url")):
        out.fixed("url scheme added")
    landing = fix_url(row.get("foreign_landing_url"))
    if landing != text_of(row.get("foreign_landing_url")):
        out.fixed("landing_url scheme added")
    item = {
        "id": item_id,
        "title": clean_text(row.get("title")),
        "description": _description(meta, n, item_id, out),
        "provider": provider,
        "source": text_of(row.get("source")),
        "license": text_of(row.get("license")).lower(),
        "url": url,
        "image_path": "",
        "popularity_raw": popularity,
        "popularity_metric": metric,
        "created_on": text_of(row.get("created_on")),
        "removed": text_of(row.get("removed_from_source")).lower() in _TRUE,
        "license_version": text_of(row.get("license_version")),
        "creator": clean_text(row.get("creator")),
        "landing_url": landing,
        "thumbnail": fix_url(row.get("thumbnail")),
        "width": parse_count(row.get("width"))[0],
        "height": parse_count(row.get("height"))[0],
        "_row": n,
    }
    if has_std:
        item["standardized_popularity"] = _standardized(row, n, item_id, out)
    out.add(item, tags)


def parse_openverse(raw: RawTable) -> ParsedFile:
    r"""Parse an Openverse-layout table into items, raw tags and rejects.

    Ids are ``identifier`` when present and non-empty, else ``id``, else
    ``provider:foreign_identifier``. ``meta_data.views`` (Flickr) or
    ``meta_data.global_usage_count`` (Wikimedia) becomes ``popularity_raw`` with
    ``popularity_metric`` naming it; ``meta_data.description`` the description;
    ``standardized_popularity`` is kept when the file has it. Text has HTML tags, entities and
    literal ``\xHH`` escapes resolved; scheme-less URLs get ``https://``.

    Raises
    ------
    InputError
        The file has no column an id could come from.
    """
    frame = raw.frame.rename(columns=lambda c: str(c).strip().lower())
    cols = set(frame.columns)
    if not ({"identifier", "id"} & cols or {"provider", "foreign_identifier"} <= cols):
        raise InputError(
            f"{raw.path}: no id column for the openverse format (needs `identifier`, `id` or "
            f"`provider` + `foreign_identifier`); columns present: {sorted(cols)}"
        )
    has_std = "standardized_popularity" in cols
    floats = ("width", "height") + (("standardized_popularity",) if has_std else ())
    out = RowCollector(raw.path, float_extras=floats)
    for n, row in enumerate(iter_records(frame), start=1):
        _parse_row(row, n, out, has_std)
    return out.build("openverse", len(frame))
