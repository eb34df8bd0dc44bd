"""Writing the files of a run directory: :class:`RunWriter` (files written while they are made).

:func:`ccgraph.io.write_run` hands every file to a :class:`RunWriter` at once. A caller that
makes the run's parts one after the other (an update: arrays first, then the items table, then
the tags table) gives each part to the writer as soon as it exists, so two writer threads
encode, ``fsync`` and hash the files while the caller is still assembling the rest;
:meth:`RunWriter.finish` then checks the whole result, writes the manifest and swaps the
directory in. The files are the same bytes either way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np
import pandas as pd

from ccgraph._lane import current
from ccgraph.containers import KnnGraph, RunResult, check_same_ids
from ccgraph.exceptions import InputError, OutputError
from ccgraph.io._json import jsonable
from ccgraph.io._workers import Workers
from ccgraph.io.atomic import (
    MANIFEST_NAME,
    make_temp_dir,
    output_error,
    refuse_existing_run,
    remove_stale_temp_dirs,
    replace_directory,
)
from ccgraph.io.graphfile import graph_arrays, write_npz

__all__ = ["RunWriter", "staged_file"]

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


def _arrow_table(frame: pd.DataFrame, what: str) -> Any:
    """``frame`` as an Arrow table (made by the caller's thread: the writer gets immutable data)."""
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InputError(f"{what} cannot be stored as Parquet: {exc}") from None


#: Parquet options of every table: zstd level 1 and a 32 KiB dictionary page limit. A column
#: whose distinct values outgrow the limit (ids, titles, scores) falls back to plain encoding
#: after a few thousand values instead of hashing ~1 MiB of them first; a column of few values
#: (cluster ids, tags, sources, ranks) keeps its dictionary. On the 100k update this encodes
#: the items and tags tables in ~0.15 s of CPU instead of ~0.21 s, into smaller files.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "dictionary_pagesize_limit": 32 * 1024,
}


def _write_table(table: Any, path: Path) -> tuple[int, str]:
    import pyarrow.parquet as pq

    pq.write_table(table, path, **PARQUET_OPTIONS)
    return _seal(path)


#: Bytes hashed between two chances for a more urgent background job to run first.
_HASH_CHUNK = 16 << 20


def _sha256(path: Path) -> str:
    """SHA-256 of a file, hashed from a memory map (no copy out of the page cache)."""
    import mmap

    h = hashlib.sha256()
    lane = current()
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return h.hexdigest()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view, memoryview(view) as mv:
            for start in range(0, size, _HASH_CHUNK):
                h.update(mv[start : start + _HASH_CHUNK])  # hashlib releases the GIL
                lane.pause()
    return h.hexdigest()


def _seal(path: Path) -> tuple[int, str]:
    """``fsync`` a finished file and return its size and SHA-256 (for the manifest)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        with current().released():  # the disk works, not the core
            os.fsync(fd)
    finally:
        os.close(fd)
    return path.stat().st_size, _sha256(path)


def check_columns(name: str, frame: Any) -> None:
    """Raise :class:`InputError` unless ``frame`` is a DataFrame with table ``name``'s columns."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"RunResult.{name} must be a pandas DataFrame")
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in frame.columns]
    if missing:
        raise InputError(
            f"RunResult.{name} lacks the columns {missing} that the run-directory schema "
            f"requires (has {list(frame.columns)})"
        )


def check_result(result: RunResult) -> None:
    """The checks :func:`ccgraph.io.write_run` makes before writing anything."""
    if not isinstance(result, RunResult):
        raise InputError(f"`result` must be a RunResult; got {type(result).__name__}")
    for name in REQUIRED_COLUMNS:
        check_columns(name, getattr(result, name))
    if _same_arrow_ids(result.items["id"], result.graph.ids):
        return
    ids = result.items["id"].astype(str).to_numpy()
    check_same_ids(ids, result.graph.ids, what="write_run (items.parquet vs graph.npz)")


def _same_arrow_ids(column: pd.Series, ids: np.ndarray) -> bool:
    """Whether an Arrow-backed ``column`` without missing values holds exactly ``ids``.

    Compared on Arrow strings (the Arrow copy of an update's ids is made once), without a
    numpy string per item; ``False`` sends the caller to the plain comparison.
    """
    import pyarrow as pa

    from ccgraph._array_memo import arrow_strings

    arr = column.array
    if not isinstance(arr, pd.arrays.ArrowStringArray) or len(arr) != len(ids):
        return False
    mine = arr._pa_array
    if mine.null_count or not isinstance(ids, np.ndarray) or ids.dtype.kind != "U":
        return False
    theirs = arrow_strings(ids).cast(mine.type)
    return bool(mine.equals(pa.chunked_array([theirs], type=mine.type)))


def extra_files(extras: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """``{filename: (name, value)}`` of the extra outputs, checked."""
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


def staged_file(value: Any, adopt: Collection[Path]) -> Path | None:
    """The ``.npy`` file of ``adopt`` that ``value`` maps whole, if any.

    An array made with ``numpy.lib.format.open_memmap`` in a folder the caller owns is
    already the ``.npy`` file :func:`ccgraph.io.write_run` would write (same header, same
    bytes), so it can be moved into the run instead of written again. ``adopt`` lists files,
    or folders whose ``.npy`` files (directly inside) the caller gives up: a writer made
    before the array exists can adopt it.
    """
    mm = value
    while mm is not None and not isinstance(mm, np.memmap):
        mm = getattr(mm, "base", None)
    if mm is None or not mm.filename:
        return None
    source = Path(mm.filename).resolve()
    listed = source in adopt or (source.suffix == ".npy" and source.parent in adopt)
    if not listed or not isinstance(value, np.ndarray):
        return None
    whole = (
        value.shape == mm.shape
        and value.dtype == mm.dtype
        and value.flags.c_contiguous
        and value.ctypes.data == mm.ctypes.data
        and source.stat().st_size == mm.offset + mm.nbytes
    )
    return source if whole else None


def _cost(value: Any) -> int:
    """Rough cost of writing ``value`` (bytes; a table's cells count ~40 bytes to encode)."""
    if isinstance(value, pd.DataFrame):
        return 40 * value.shape[0] * max(1, value.shape[1])
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, KnnGraph):
        return int(value.adjacency.nnz * 8)
    return int(value)


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


def _manifest(
    result: RunResult, files: Mapping[str, tuple[int, str]], extras: dict[str, str]
) -> dict:
    from ccgraph import __version__

    man = jsonable(dict(result.manifest))
    man["schema_version"] = SCHEMA_VERSION
    man.setdefault("ccgraph_version", __version__)
    man["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    man.setdefault("graph_params", jsonable(dict(result.graph.params)))
    if "counts" in man:  # the caller's counts win; only the missing ones are computed
        need = {"items", "rejects", "edges", "inferred_tags", "clusters"} - set(man["counts"])
        man["counts"] = {**(_counts(result) if need else {}), **man["counts"]}
    else:
        man["counts"] = _counts(result)
    if "packages" not in man:
        from ccgraph._assemble import package_versions  # lazily: it imports scipy.sparse

        man["packages"] = package_versions()
    man["extras"] = extras
    man["files"] = {name: {"bytes": size, "sha256": sha} for name, (size, sha) in files.items()}
    return man


class RunWriter:
    """Write a run directory's files as they are made; :meth:`finish` completes the run.

    Files go into a temporary sibling of ``path``, written by one thread while the caller
    assembles the rest and by two once :meth:`finish` is called (Parquet encoding, ``write()``,
    ``fsync`` and SHA-256 release the GIL); :meth:`finish` checks the whole
    result, waits for the files, writes ``manifest.json`` and swaps the directory in. Use it
    as a context manager: leaving the block without :meth:`finish` (an error) removes the
    temporary directory.

    Parameters
    ----------
    path, overwrite, adopt
        As in :func:`ccgraph.io.write_run`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = True,
        adopt: Collection[str | os.PathLike[str]] = (),
    ) -> None:
        self.final = Path(path)
        refuse_existing_run(
            self.final,
            overwrite=overwrite,
            hint="pass overwrite=True (config `output.overwrite: true`) to replace it, or "
            "choose another output directory",
        )
        remove_stale_temp_dirs(self.final)
        self._adopt = {Path(f).resolve() for f in adopt}
        self.tmp = make_temp_dir(self.final)
        self._pool = Workers()
        self._pool.grow(1)
        self._jobs: dict[str, tuple[Any, Future[tuple[int, str]]]] = {}
        self._done = False

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._done:
            self.abort()

    def abort(self) -> None:
        """Stop and remove the temporary directory (nothing is written to ``path``)."""
        self._done = True
        self._pool.shutdown(cancel=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def grow(self) -> None:
        """Write with two threads from now on (:meth:`finish` does it anyway).

        For a caller whose remaining work is light next to the files still to be encoded.
        """
        self._pool.grow(2)

    def _given(self, filename: str, source: Any) -> bool:
        """Whether ``filename`` is being written already (from this very ``source``)."""
        if filename not in self._jobs:
            return False
        if self._jobs[filename][0] is not source:
            raise InputError(f"RunWriter: {filename} was given twice, with different contents")
        return True

    def _submit(self, filename: str, source: Any, job: Callable[[], tuple[int, str]]) -> None:
        self._jobs[filename] = (source, self._pool.submit(job))

    def add_graph(self, graph: KnnGraph) -> None:
        """Start writing ``graph.npz``."""
        target = self.tmp / "graph.npz"
        if self._given("graph.npz", graph):
            return

        def job() -> tuple[int, str]:
            write_npz(target, graph_arrays(graph))
            return _seal(target)

        self._submit("graph.npz", graph, job)

    def add_table(self, name: str, frame: pd.DataFrame) -> None:
        """Start writing ``<name>.parquet`` (``name`` one of ``items``, ``tags``, ...)."""
        filename = f"{name}.parquet"
        if self._given(filename, frame):
            return
        check_columns(name, frame)
        table = _arrow_table(frame, f"RunResult.{name}")
        self._submit(filename, frame, partial(_write_table, table, self.tmp / filename))

    def add_extras(self, extras: Mapping[str, Any]) -> None:
        """Start writing extra outputs (``<name>.npy`` / ``<name>.parquet``)."""
        for filename, (name, value) in sorted(
            extra_files(extras).items(), key=lambda kv: -_cost(kv[1][1])
        ):
            self._add_extra(filename, name, value)

    def _add_extra(self, filename: str, name: str, value: Any) -> None:
        target = self.tmp / filename
        if self._given(filename, value):
            return
        if isinstance(value, pd.DataFrame):
            table = _arrow_table(value, f"extra output {name!r}")
            self._submit(filename, value, partial(_write_table, table, target))
        else:
            self._submit(filename, value, partial(self._write_array, value, target))

    def _write_array(self, value: np.ndarray, target: Path) -> tuple[int, str]:
        staged = staged_file(value, self._adopt)
        if staged is not None:
            mm = value
            while not isinstance(mm, np.memmap):
                # staged_file found a memmap down this chain of bases, so none is None
                mm = cast(np.ndarray, mm.base)
            if not sys.platform.startswith("linux"):
                # Linux keeps a shared mapping's pages in the page cache, so _seal's fsync
                # writes them; msync (np.memmap.flush) would hold the GIL while the disk works
                mm.flush()
            os.replace(staged, target)  # the same bytes np.save would write, already on disk
        else:
            np.save(target, value, allow_pickle=False)
        return _seal(target)

    def finish(self, result: RunResult) -> Path:
        """Write what was not given yet, ``manifest.json``, and move the run into ``path``."""
        try:
            check_result(result)
            files_of = extra_files(result.extras)
            extra_names = {f"{name}.parquet" for name in TABLES} | {"graph.npz", *files_of}
            stray = sorted(set(self._jobs) - extra_names)
            if stray:
                raise InputError(f"RunWriter: {stray} were written but are not in the result")
            todo: list[tuple[int, Callable[[], None]]] = [
                (_cost(result.graph), partial(self.add_graph, result.graph))
            ]
            todo += [
                (_cost(getattr(result, n)), partial(self.add_table, n, getattr(result, n)))
                for n in TABLES
            ]
            todo += [
                (_cost(value), partial(self._add_extra, filename, name, value))
                for filename, (name, value) in sorted(files_of.items())
            ]
            for _, add in sorted(todo, key=lambda t: -t[0]):  # the costliest first
                add()
            self._pool.grow(2)
            with current().lend():  # this thread only waits now: its core writes too
                files = {filename: job.result() for filename, (_, job) in self._jobs.items()}
            extras = {name: filename for filename, (name, _) in sorted(files_of.items())}
            manifest = _manifest(result, files, extras)
            text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
            (self.tmp / MANIFEST_NAME).write_text(text, encoding="utf-8")
            _seal(self.tmp / MANIFEST_NAME)
            self._pool.shutdown()
            replace_directory(self.tmp, self.final)
        except OSError as exc:  # a full disk, ... while writing the temporary directory
            self.abort()
            if isinstance(exc, OutputError):  # already names the output and what to do
                raise
            raise output_error(self.final, exc) from exc
        except BaseException:
            self.abort()
            raise
        self._done = True
        logger.info("wrote run directory %s (%d items)", self.final, len(result.items))
        return self.final
