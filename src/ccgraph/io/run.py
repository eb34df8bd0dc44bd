"""The run directory: ``write_run`` (atomic, byte-reproducible) and ``load_run``.

Layout (schema version 1, see ``docs/architecture.md``): ``items.parquet``, ``tags.parquet``,
``clusters.parquet``, ``rejects.parquet``, ``graph.npz`` and ``manifest.json``, plus extra
``<name>.npy`` / ``<name>.parquet`` files a stage asked to keep. Everything is written into a
temporary sibling directory and swapped in only when complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.containers import RunResult, check_same_ids
from ccgraph.exceptions import InputError, OutputError
from ccgraph.io._json import jsonable
from ccgraph.io.atomic import (
    MANIFEST_NAME,
    check_replaceable,
    make_temp_dir,
    remove_stale_temp_dirs,
    replace_directory,
)
from ccgraph.io.graphfile import GRAPH_ARRAYS, graph_arrays, graph_from_arrays, read_npz, write_npz

__all__ = ["SCHEMA_VERSION", "load_run", "write_run"]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TABLES = ("items", "tags", "clusters", "rejects")
#: Columns each table must have (the contract checked by ``shared/tools/check_run_dir.py``).
REQUIRED_COLUMNS = {
    "items": (
        "id",
        "cluster",
        "duplicate_group",
        "popularity_observed",
        "popularity",
        "popularity_source",
        "degree",
    ),
    "tags": ("id", "tag", "score", "confidence", "rank", "source"),
    "clusters": ("level", "cluster", "size", "label", "top_tags", "representative_ids"),
    "rejects": ("file", "row", "reason"),
}
CORE_FILES = (*(f"{t}.parquet" for t in TABLES), "graph.npz", MANIFEST_NAME)
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


def _write_parquet(frame: pd.DataFrame, path: Path, what: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InputError(f"{what} cannot be stored as Parquet: {exc}") from None
    pq.write_table(table, path, compression="zstd", compression_level=3)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_result(result: RunResult) -> None:
    if not isinstance(result, RunResult):
        raise InputError(f"`result` must be a RunResult; got {type(result).__name__}")
    for name, need in REQUIRED_COLUMNS.items():
        frame = getattr(result, name)
        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"RunResult.{name} must be a pandas DataFrame")
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise InputError(
                f"RunResult.{name} lacks the columns {missing} that the run-directory schema "
                f"requires (has {list(frame.columns)})"
            )
    ids = result.items["id"].astype(str).to_numpy()
    check_same_ids(ids, result.graph.ids, what="write_run (items.parquet vs graph.npz)")


def _extra_files(extras: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    for name, value in extras.items():
        if not isinstance(name, str) or not _EXTRA_NAME.match(name):
            raise InputError(
                f"extra output name {name!r} must be a plain file stem "
                "(letters, digits, '_', '-', '.')"
            )
        if isinstance(value, pd.DataFrame):
            filename = f"{name}.parquet"
        elif isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise InputError(
                    f"extra output {name!r} is an object array; store numbers or "
                    "strings (or a DataFrame)"
                )
            filename = f"{name}.npy"
        else:
            raise InputError(
                f"extra output {name!r} must be a numpy array or a DataFrame; "
                f"got {type(value).__name__}"
            )
        if filename in CORE_FILES or filename in out:
            raise InputError(f"extra output {name!r} clashes with the file {filename}")
        out[filename] = (name, value)
    return out


def _counts(result: RunResult) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "items": len(result.items),
        "rejects": len(result.rejects),
        "edges": result.graph.n_edges,
        "inferred_tags": int((result.tags["source"] == "inferred").sum()),
    }
    if len(result.clusters):
        per_level = result.clusters.groupby("level").size()
        counts["clusters"] = {str(k): int(v) for k, v in per_level.items()}
    return counts


def _package_versions() -> dict[str, str]:
    # Lazily: ccgraph._assemble pulls in scipy.sparse, which `import ccgraph` must not.
    from ccgraph._assemble import package_versions

    return package_versions()


def _manifest(
    result: RunResult, files: Mapping[str, tuple[int, str]], extras: dict[str, str]
) -> dict:
    from ccgraph import __version__

    man = jsonable(dict(result.manifest))
    man["schema_version"] = SCHEMA_VERSION
    man.setdefault("ccgraph_version", __version__)
    man["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    man.setdefault("graph_params", jsonable(dict(result.graph.params)))
    man["counts"] = {**_counts(result), **man.get("counts", {})}
    man.setdefault("packages", _package_versions())
    man["extras"] = extras
    man["files"] = {name: {"bytes": size, "sha256": sha} for name, (size, sha) in files.items()}
    return man


def _seal(path: Path) -> tuple[int, str]:
    """``fsync`` a finished file and return its size and SHA-256 (for the manifest)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.stat().st_size, _sha256(path)


def staged_file(value: Any, adopt: Collection[Path]) -> Path | None:
    """The ``.npy`` file in ``adopt`` that ``value`` maps whole, if any.

    An array made with ``numpy.lib.format.open_memmap`` in a folder the caller owns is
    already the ``.npy`` file :func:`write_run` would write (same header, same bytes), so it
    can be moved into the run instead of written again.
    """
    mm = value
    while mm is not None and not isinstance(mm, np.memmap):
        mm = getattr(mm, "base", None)
    if mm is None or not getattr(mm, "filename", None):
        return None
    source = Path(mm.filename).resolve()
    if source not in adopt or not isinstance(value, np.ndarray):
        return None
    whole = (
        value.shape == mm.shape
        and value.dtype == mm.dtype
        and value.flags.c_contiguous
        and value.ctypes.data == mm.ctypes.data
        and source.stat().st_size == mm.offset + mm.nbytes
    )
    return source if whole else None


def _write_files(
    result: RunResult,
    tmp: Path,
    extra_files: Mapping[str, tuple[str, Any]],
    adopt: Collection[Path] = (),
) -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
    """Write every file but the manifest into ``tmp``; return their (size, sha256) and extras.

    Each file is written, ``fsync``-ed and hashed by one task; two threads run the tasks
    (Parquet encoding, ``write()``, ``fsync`` and SHA-256 release the GIL), so the big arrays
    are hashed while the tables are encoded.
    """
    from concurrent.futures import ThreadPoolExecutor

    def table(frame: pd.DataFrame, target: Path, what: str) -> tuple[int, str]:
        _write_parquet(frame, target, what)
        return _seal(target)

    def array(value: np.ndarray, target: Path) -> tuple[int, str]:
        staged = staged_file(value, adopt)
        if staged is not None:
            mm = value
            while not isinstance(mm, np.memmap):
                mm = mm.base
            mm.flush()
            os.replace(staged, target)  # the same bytes np.save would write, already on disk
        else:
            np.save(target, value, allow_pickle=False)
        return _seal(target)

    def graph(target: Path) -> tuple[int, str]:
        write_npz(target, graph_arrays(result.graph))
        return _seal(target)

    tasks: list[tuple[int, str, Callable[[], tuple[int, str]]]] = [
        (_cost(result.graph.adjacency.nnz * 8), "graph.npz", lambda: graph(tmp / "graph.npz"))
    ]
    for name in TABLES:
        frame = getattr(result, name)
        tasks.append(
            (
                _cost(frame),
                f"{name}.parquet",
                partial(table, frame, tmp / f"{name}.parquet", f"RunResult.{name}"),
            )
        )
    extras: dict[str, str] = {}
    for filename, (name, value) in sorted(extra_files.items()):
        extras[name] = filename
        if isinstance(value, pd.DataFrame):
            job = partial(table, value, tmp / filename, f"extra output {name!r}")
        else:
            job = partial(array, value, tmp / filename)
        tasks.append((_cost(value), filename, job))
    # the costliest first, so the small files fill the gaps
    tasks.sort(key=lambda t: -t[0])
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="write_run") as pool:
        jobs = {filename: pool.submit(job) for _, filename, job in tasks}
        files = {filename: job.result() for filename, job in jobs.items()}
    return files, extras


def _cost(value: Any) -> int:
    """Rough cost of writing ``value`` (bytes; a table's cells count ~40 bytes to encode)."""
    if isinstance(value, pd.DataFrame):
        return 40 * value.shape[0] * max(1, value.shape[1])
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    return int(value)


def write_run(
    result: RunResult,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    adopt: Collection[str | os.PathLike[str]] = (),
) -> Path:
    """Write a run directory atomically and return its path.

    The tables go to Parquet (zstd; the same data gives byte-identical files), the graph to
    ``graph.npz`` (no pickle), ``result.extras`` to ``<name>.npy`` (arrays) or
    ``<name>.parquet`` (DataFrames), and ``result.manifest`` to ``manifest.json`` with
    ``schema_version``, ``ccgraph_version``, ``created``, ``counts``, ``graph_params``,
    ``packages`` and the size and SHA-256 of every file added. All files are written into a
    temporary sibling directory which replaces ``path`` only once complete.

    Parameters
    ----------
    result
        The run's tables, graph and manifest. ``items.id`` must list ``graph.ids`` in order.
    path
        The run directory. It may be absent, empty or an earlier ccgraph run.
    overwrite
        Replace an earlier run at ``path`` (otherwise an existing non-empty ``path`` raises).
    adopt
        ``.npy`` files the caller made for this run and gives up: an extra that is a
        ``numpy.lib.format.open_memmap`` of one of them (the whole file) is moved into the run
        instead of written again (an update's merged embeddings: hundreds of MB). Files not
        listed are never moved, so nothing a user gave is touched.

    Raises
    ------
    InputError
        A table lacks a required column, or the items and the graph disagree on the ids.
    OutputError
        ``path`` is not empty and is not a ccgraph run (or ``overwrite`` is false), or it
        cannot be written.
    """
    final = Path(path)
    _check_result(result)
    extra_files = _extra_files(result.extras)
    if check_replaceable(final) and not overwrite and any(final.iterdir()):
        raise OutputError(
            f"{final} already holds a run; pass overwrite=True (config `output.overwrite: "
            "true`) to replace it, or choose another output directory"
        )
    remove_stale_temp_dirs(final)
    tmp = make_temp_dir(final)
    try:
        owned = {Path(f).resolve() for f in adopt}
        files, extras = _write_files(result, tmp, extra_files, owned)
        manifest = _manifest(result, files, extras)
        text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
        (tmp / MANIFEST_NAME).write_text(text, encoding="utf-8")
        _seal(tmp / MANIFEST_NAME)
        replace_directory(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote run directory %s (%d items)", final, len(result.items))
    return final


class LazyExtras(Mapping[str, Any]):
    """Extra outputs of a run, each read from disk on first access (``.npy`` memory-mapped)."""

    def __init__(self, root: Path, files: Mapping[str, str]) -> None:
        self._root = root
        self._files = dict(files)
        self._cache: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._cache:
            target = self._root / self._files[name]
            if not target.is_file():
                raise InputError(f"{target}: extra output {name!r} is listed but missing")
            loader: Callable[[Path], Any] = (
                pd.read_parquet
                if target.suffix == ".parquet"
                else lambda p: np.load(p, mmap_mode="r", allow_pickle=False)
            )
            self._cache[name] = loader(target)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"LazyExtras({sorted(self._files)})"


def _read_manifest(root: Path) -> dict[str, Any]:
    if not root.is_dir():
        raise InputError(f"run directory not found: {root}")
    mpath = root / MANIFEST_NAME
    if not mpath.is_file():
        raise InputError(
            f"{root} is not a complete ccgraph run directory: {MANIFEST_NAME} is missing "
            "(the run may have been interrupted; run it again)"
        )
    try:
        man = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise InputError(f"{mpath}: not valid JSON ({exc})") from None
    if not isinstance(man, dict) or "schema_version" not in man:
        raise InputError(f"{mpath}: not a ccgraph manifest (no schema_version)")
    if man["schema_version"] != SCHEMA_VERSION:
        raise InputError(
            f"{root}: run schema_version {man['schema_version']!r} is not supported; this "
            f"ccgraph reads version {SCHEMA_VERSION} (re-run with this version)"
        )
    return man


def load_run(path: str | os.PathLike[str]) -> RunResult:
    """Read a run directory back into a :class:`~ccgraph.containers.RunResult`.

    Extra outputs are listed in ``result.extras`` and read lazily on access.

    Raises
    ------
    InputError
        The directory is missing, incomplete (a file absent or of another size than the
        manifest records), of another schema version, or inconsistent.
    """
    root = Path(path)
    man = _read_manifest(root)
    recorded = man.get("files", {})
    missing = [f for f in CORE_FILES if not (root / f).is_file()]
    missing += [f for f in recorded if f not in missing and not (root / f).is_file()]
    if missing:
        raise InputError(f"{root} is an incomplete run directory: missing {missing} (run it again)")
    for name, info in recorded.items():
        size = (root / name).stat().st_size
        if isinstance(info, dict) and info.get("bytes") not in (None, size):
            raise InputError(
                f"{root / name} has {size} bytes but the manifest records {info['bytes']}: "
                "the run directory was modified or is incomplete (run it again)"
            )
    tables = {}
    for name in TABLES:
        try:
            tables[name] = pd.read_parquet(root / f"{name}.parquet")
        except Exception as exc:  # pyarrow raises several unrelated types
            raise InputError(f"{root / (name + '.parquet')}: unreadable Parquet ({exc})") from None
    graph = graph_from_arrays(
        read_npz(root / "graph.npz", GRAPH_ARRAYS),
        man.get("graph_params", {}),
        where=root / "graph.npz",
    )
    ids = tables["items"]["id"].astype(str).to_numpy()
    if len(ids) != graph.n_items or not np.array_equal(ids, graph.ids):
        raise InputError(f"{root}: items.parquet and graph.npz list different item ids")
    return RunResult(
        tables["items"],
        tables["tags"],
        tables["clusters"],
        tables["rejects"],
        graph,
        man,
        path=root,
        extras=LazyExtras(root, man.get("extras", {})),
    )
