"""``read_catalog``: one :class:`~ccgraph.containers.Catalog` from any number of catalog files.

Each file is read (:mod:`ccgraph.io._files`), parsed by its layout (:mod:`.openverse` or
:mod:`.table`), and the results are combined in file order: rows removed at the source are
rejected, repeated ids are rejected, refused or merged, image paths are resolved and checked,
``limit`` keeps the first usable items, and the tags are cleaned (:mod:`.hygiene`). No row is
dropped silently: everything left out is in ``Catalog.rejects`` with its file, row and reason.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ccgraph._validation import check_choice, check_int
from ccgraph.containers import ITEM_COLUMNS, REJECT_COLUMNS, TAG_COLUMNS, Catalog
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.io._files import check_id_cells, expand_paths, read_raw
from ccgraph.io._rows import ParsedFile
from ccgraph.io._text import REMOTE_IMAGE, is_url
from ccgraph.io.hygiene import apply_hygiene, as_hygiene
from ccgraph.io.openverse import looks_like_openverse, parse_openverse
from ccgraph.io.table import check_columns, parse_table

if TYPE_CHECKING:
    from ccgraph.config import DataConfig, TagHygiene

__all__ = ["read_catalog", "read_catalog_from_config"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
_JOINED = ("title", "description")


def _id_column(columns: Mapping[str, str] | None) -> str:
    """The column a table's ids are read from (``data.columns.id``, default ``id``)."""
    return str(check_columns(columns)[0].get("id", "id"))


def _skip_empty(files: list[Path]) -> list[Path]:
    """Leave out 0-byte files among others, with a warning; all 0 bytes: kept (reading raises)."""
    empty = [f.stat().st_size == 0 for f in files]
    if all(empty):
        return files
    for f in (f for f, e in zip(files, empty, strict=True) if e):
        logger.warning("%s is empty (0 bytes: no header, no rows); skipped", f)
    return [f for f, e in zip(files, empty, strict=True) if not e]


def _read_file(
    path: Path,
    fmt: str,
    columns: Mapping[str, str] | None,
    tags_sep: str,
    include_removed: bool = False,
) -> ParsedFile:
    start = time.perf_counter()
    raw = read_raw(path)
    if fmt == "auto":
        fmt = "openverse" if looks_like_openverse(raw.frame.columns) else "table"
    id_columns = ("identifier", "id") if fmt == "openverse" else (_id_column(columns),)
    for column in id_columns:
        check_id_cells(raw, column)
    parsed = (
        parse_openverse(raw)
        if fmt == "openverse"
        else parse_table(raw, columns=columns, tags_sep=tags_sep)
    )
    gone = np.zeros(len(parsed.items), bool)
    if not include_removed and "removed" in parsed.items.columns:
        gone = parsed.items["removed"].fillna(False).to_numpy(bool)
    n_tags = len(parsed.tags)
    if gone.any() and "_pos" in parsed.tags.columns:
        n_tags -= int(gone[parsed.tags["_pos"].to_numpy(np.int64)].sum())
    logger.info(
        "%s: %s layout, %d rows -> %d items, %d tags, %d rejects%s (%.2f s)",
        path,
        fmt,
        parsed.n_rows,
        len(parsed.items) - int(gone.sum()),
        n_tags,
        len(parsed.rejects),
        f", {int(gone.sum())} removed from source" if gone.any() else "",
        time.perf_counter() - start,
    )
    if parsed.n_rows == 0:
        logger.warning("%s has a header but no data rows", path)
    return parsed


def _combine(parsed: list[ParsedFile]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    items, tags, rejects = [], [], []
    offset = 0
    for fi, p in enumerate(parsed):
        items.append(p.items.assign(_fi=fi))
        tags.append(p.tags.assign(_seq=p.tags["_pos"] + offset).drop(columns="_pos"))
        rejects.append(p.rejects.assign(_fi=fi))
        offset += len(p.items)
    all_items = pd.concat(items, ignore_index=True)
    text = [
        c
        for c, dtype in all_items.dtypes.items()
        if c not in ITEM_COLUMNS and not pd.api.types.is_numeric_dtype(dtype)
    ]
    if text:  # filled in one go: a catalog may have thousands of extra columns
        order = list(all_items.columns)
        filled = all_items[text].fillna("")
        all_items = pd.concat([all_items.drop(columns=text), filled], axis=1)[order]
    all_items["_seq"] = np.arange(len(all_items), dtype=np.int64)
    return all_items, pd.concat(tags, ignore_index=True), pd.concat(rejects, ignore_index=True)


def _as_rejects(items: pd.DataFrame, reason: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": items["_file"].to_numpy(),
            "row": items["_row"].to_numpy(np.int64),
            "id": items["id"].to_numpy(),
            "stage": "read",
            "reason": reason,
            "_fi": items["_fi"].to_numpy(),
        }
    )


def _sum_fixes(parsed: list[ParsedFile]) -> dict[str, int]:
    total: dict[str, int] = {}
    for p in parsed:
        for k, v in p.fixes.items():
            total[k] = total.get(k, 0) + v
    return total


def _merge_duplicates(items: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, int]]:
    """One row per id: text joined, tags later unioned; returns the seq -> kept seq map."""
    first_seq = items.groupby("id", sort=False)["_seq"].transform("first")
    seq_map = dict(zip(items["_seq"].to_numpy(), first_seq.to_numpy(), strict=True))
    repeated = items["id"].duplicated(keep=False).to_numpy(bool)
    if not repeated.any():
        return items, seq_map
    multi = items.loc[repeated]
    groups = multi.groupby("id", sort=False)
    merged = groups.first()  # numbers: the first non-null value
    for col in merged.columns:
        if pd.api.types.is_numeric_dtype(multi[col]) or pd.api.types.is_bool_dtype(multi[col]):
            continue
        values = multi[col].astype(str)
        if col in _JOINED:
            sub = multi.loc[values != "", ["id"]].assign(v=values).drop_duplicates()
            joined = sub.groupby("id", sort=False)["v"].agg(" ".join)
        else:
            joined = values.where(values != "").groupby(multi["id"], sort=False).first()
        merged[col] = joined.reindex(merged.index).fillna("").astype(str)
    merged["removed"] = groups["removed"].any()
    out = pd.concat([items.loc[~repeated], merged.reset_index()], ignore_index=True)
    out = out.sort_values("_seq", kind="stable").reset_index(drop=True)
    logger.info("merged %d rows with repeated ids into %d items", len(multi), len(merged))
    return out[items.columns], seq_map


def _resolve_images(
    items: pd.DataFrame, image_root: PathLike | None, files: list[Path]
) -> pd.Series:
    def resolve(p: str, fi: int) -> str:
        if not p or "://" in p:
            return p
        path = Path(p).expanduser()
        if not path.is_absolute():
            path = (Path(image_root) if image_root is not None else files[fi].parent) / path
        return os.path.abspath(path)

    return pd.Series(
        [resolve(p, fi) for p, fi in zip(items["image_path"], items["_fi"], strict=True)],
        index=items.index,
        dtype=str,
    )


def read_catalog(
    path: PathLike | Sequence[PathLike],
    *,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    tags_sep: str = ",",
    limit: int | None = None,
    on_duplicate: str = "reject",
    include_removed: bool = False,
    hygiene: TagHygiene | Mapping[str, Any] | None = None,
    image_root: PathLike | None = None,
    require_image: bool = False,
) -> Catalog:
    r"""Read catalog file(s) into items, a long tags table and the rejected rows.

    Parameters
    ----------
    path
        A file, a directory (every ``.csv``, ``.tsv``, ``.parquet`` and ``.jsonl`` in it and its
        sub-directories, in path order; hidden entries and run directories skipped), a glob,
        or a list of them. ``.txt`` files are delimited text with the
        delimiter detected from the header; any file may be ``.gz``-compressed. Among several
        files, a 0-byte or header-only one is skipped with a warning.
    format
        ``"openverse"`` (Openverse / CC Search rows), ``"table"`` (a generic table read through
        ``columns``) or ``"auto"`` (per file: Openverse when the header has its columns).
    columns
        For ``table``: ccgraph field -> column name (fields ``id``, ``title``, ``description``,
        ``tags``, ``popularity``, ``provider``, ``source``, ``license``, ``url``,
        ``image_path``, ``created_on``). Unmapped fields use a column of the same name
        (or the one column of that name in another case, e.g. ``Title``).
    tags_sep
        For ``table``: separator inside a tags string that is not a JSON list.
    limit
        Keep only the first ``limit`` usable items (rejects after the last kept row are not
        reported, as those rows count as unread).
    on_duplicate
        A repeated id: ``"reject"`` keeps the first row and rejects the others ("duplicate
        id"); ``"error"`` raises; ``"merge"`` makes one item of all its rows (titles and
        descriptions joined with a space, tags unioned, other fields from the first row).
    include_removed
        Keep rows flagged ``removed_from_source`` (by default they are rejected).
    hygiene
        Tag rules (:class:`ccgraph.config.TagHygiene` or a mapping of its fields); ``None``
        uses the defaults.
    image_root
        Directory that relative ``image_path`` values resolve against (default: the directory
        of the catalog file).
    require_image
        Reject items whose resolved image file does not exist ("image file not found"), or
        whose ``image_path`` is a URL (images are never downloaded).

    Returns
    -------
    Catalog
        ``items`` with ``ITEM_COLUMNS`` first, then extra columns (Openverse: ``creator``,
        ``license_version``, ``landing_url``, ``thumbnail``, ``width``, ``height`` and
        ``standardized_popularity`` when present; tables: their unmapped columns); ``tags``
        (``TAG_COLUMNS``) and ``rejects`` (``REJECT_COLUMNS``).

    Raises
    ------
    InputError
        A file is missing, empty, not UTF-8, malformed or has no id column; a repeated id with
        ``on_duplicate="error"``; no usable item at all. The message names the file and row.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "items.csv"
    >>> _ = f.write_text("id,title,tags\na,A dog,dog|Park\nb,A cat,cat\n")
    >>> cat = read_catalog(f, columns={"tags": "tags"}, tags_sep="|")
    >>> cat.tags[["id", "tag", "tag_raw"]].values.tolist()
    [['a', 'dog', 'dog'], ['a', 'park', 'Park'], ['b', 'cat', 'cat']]
    """
    check_choice("format", format, ("auto", "openverse", "table"))
    check_choice("on_duplicate", on_duplicate, ("reject", "error", "merge"))
    if limit is not None:
        limit = check_int("limit", limit, low=1)
    if not isinstance(tags_sep, str) or not tags_sep:
        raise ParameterError(f"`tags_sep` must be a non-empty string; got {tags_sep!r}")
    rules = as_hygiene(hygiene)
    check_columns(columns)
    start = time.perf_counter()
    files = _skip_empty(expand_paths(path))
    parsed = [_read_file(f, format, columns, tags_sep, include_removed) for f in files]
    items, tags, rejects = _combine(parsed)
    items["_file"] = np.array([str(f) for f in files], dtype=object)[items["_fi"].to_numpy(int)]

    extra_rejects = []
    if not include_removed and items["removed"].any():
        gone = items["removed"].to_numpy(bool)
        extra_rejects.append(_as_rejects(items.loc[gone], "removed from source"))
        items = items.loc[~gone]
    dup = items["id"].duplicated(keep="first").to_numpy(bool)
    seq_map: dict[int, int] | None = None
    if dup.any():
        if on_duplicate == "error":
            bad = items.loc[dup].iloc[0]
            first = items.loc[items["id"] == bad["id"]].iloc[0]
            raise InputError(
                f"{bad['_file']}: row {bad['_row']}: duplicate id {bad['id']!r} (first in "
                f"{first['_file']} row {first['_row']}); set on_duplicate to 'reject' (keep the "
                "first row) or 'merge' (combine the rows)"
            )
        if on_duplicate == "reject":
            extra_rejects.append(_as_rejects(items.loc[dup], "duplicate id"))
            items = items.loc[~dup]
        else:
            items, seq_map = _merge_duplicates(items)
    items = items.assign(image_path=_resolve_images(items, image_root, files))
    if require_image:
        found = np.array([bool(p) and os.path.isfile(p) for p in items["image_path"]], bool)
        remote = np.array([is_url(p) for p in items["image_path"]], bool)
        missing = ~found & ~remote
        if image_root is not None and missing.any() and not os.path.isdir(image_root):
            raise InputError(
                f"`image_root` {str(image_root)!r} is not an existing folder, so "
                f"{int(missing.sum())} of {len(found)} items have no image file; set "
                "`data.image_root` to the folder that the relative `image_path` values "
                "resolve against"
            )
        extra_rejects.append(_as_rejects(items.loc[missing], "image file not found"))
        extra_rejects.append(_as_rejects(items.loc[~found & remote], REMOTE_IMAGE))
        items = items.loc[found]
    rejects = pd.concat([rejects, *extra_rejects], ignore_index=True)
    if limit is not None and len(items) > limit:
        items = items.iloc[:limit]
        last = (int(items["_fi"].iloc[-1]), int(items["_row"].iloc[-1]))
        order = list(zip(rejects["_fi"], rejects["row"], strict=True))
        rejects = rejects.loc[[(int(f), int(r)) <= last for f, r in order]]
        logger.info("limit: kept the first %d usable items", limit)
    if seq_map is not None:
        tags = tags.assign(_seq=tags["_seq"].map(seq_map))
    kept = dict(zip(items["_seq"], items["id"], strict=True))
    tags = tags.loc[tags["_seq"].isin(kept.keys())]
    tags, tag_stats = apply_hygiene(tags.reset_index(drop=True), rules)
    tags["id"] = tags["_seq"].map(kept)
    tags = tags[list(TAG_COLUMNS)].reset_index(drop=True)
    rejects = rejects.sort_values(["_fi", "row"], kind="stable")[list(REJECT_COLUMNS)]
    rejects = rejects.astype({"row": "int64"}).reset_index(drop=True)
    if items.empty:
        where = ", ".join(map(str, files))
        if rejects.empty:
            raise InputError(
                f"no usable items in {where}: the file(s) have a header but no data rows; "
                "add rows to the catalog or point `data.path` at the right file"
            )
        reasons = {str(k): int(v) for k, v in rejects["reason"].value_counts().head(5).items()}
        removed = (
            "; every row is flagged removed_from_source: set `data.include_removed: true` "
            "(`include_removed=True`) to keep them"
            if set(reasons) == {"removed from source"}
            else ""
        )
        raise InputError(
            f"no usable items in {where}: {len(rejects)} rows rejected (by reason: {reasons}); "
            f"fix those rows, or map the right column of each field in `data.columns`{removed}"
        )
    items = items.drop(columns=["_fi", "_row", "_seq", "_file"]).reset_index(drop=True)
    seconds = time.perf_counter() - start
    counts = {
        "files": len(files),
        "rows": int(sum(p.n_rows for p in parsed)),
        "items": len(items),
        "tags_user": int((tags["source"] == "user").sum()),
        "tags_machine": int((tags["source"] == "machine").sum()),
        "rejects": len(rejects),
    }
    logger.info(
        "catalog: %d items, %d tags (%d user, %d machine), %d rejects from %d files in %.2f s",
        counts["items"],
        len(tags),
        counts["tags_user"],
        counts["tags_machine"],
        counts["rejects"],
        len(files),
        seconds,
    )
    params = {
        "paths": [str(f) for f in files],
        "formats": {str(p.path): p.format for p in parsed},
        "format": format,
        "columns": dict(columns or {}),
        "tags_sep": tags_sep,
        "limit": limit,
        "on_duplicate": on_duplicate,
        "include_removed": include_removed,
        "image_root": None if image_root is None else str(image_root),
        "require_image": require_image,
        "hygiene": rules.model_dump(),
        "hygiene_stats": tag_stats,
        "fixes": _sum_fixes(parsed),
        "counts": counts,
        "seconds": round(seconds, 3),
    }
    return Catalog(items, tags, rejects, params)


def read_catalog_from_config(cfg: DataConfig, base_dir: PathLike | None = None) -> Catalog:
    """Read the catalog a config's ``data`` section describes.

    Relative ``data.path`` and ``data.image_root`` resolve against ``base_dir`` (the config
    file's directory; default the working directory).
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()

    def resolve(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else base / q)

    paths = [cfg.path] if isinstance(cfg.path, str) else list(cfg.path)
    root = resolve(cfg.image_root) if cfg.image_root else None
    return read_catalog(
        [resolve(p) for p in paths],
        format=cfg.format,
        columns=cfg.columns,
        tags_sep=cfg.tags_sep,
        limit=cfg.limit,
        on_duplicate=cfg.on_duplicate,
        include_removed=cfg.include_removed,
        hygiene=cfg.tags,
        image_root=root,
        require_image=cfg.require_image,
    )
