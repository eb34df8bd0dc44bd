"""The run directory: ``write_run`` (atomic, byte-reproducible) and ``load_run``.

Layout (schema version 1, see ``docs/architecture.md``): ``items.parquet``, ``tags.parquet``,
``clusters.parquet``, ``rejects.parquet``, ``graph.npz`` and ``manifest.json``, plus extra
``<name>.npy`` / ``<name>.parquet`` files a stage asked to keep. Everything is written into a
temporary sibling directory and swapped in only when complete.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.containers import RunResult
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.io._writer import (
    CORE_FILES,
    SCHEMA_VERSION,
    TABLES,
    RunWriter,
    check_result,
    extra_files,
    staged_file,
)
from ccgraph.io.atomic import MANIFEST_NAME
from ccgraph.io.graphfile import GRAPH_ARRAYS, graph_from_arrays, read_npz

__all__ = ["SCHEMA_VERSION", "RunWriter", "load_run", "staged_file", "write_run"]

logger = logging.getLogger(__name__)


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
        ``.npy`` files the caller made for this run and gives up (or folders: every ``.npy``
        file directly inside): an extra that is a ``numpy.lib.format.open_memmap`` of one of
        them (the whole file) is moved into the run instead of written again (an update's
        merged embeddings: hundreds of MB). Files not listed are never moved, so nothing a
        user gave is touched.

    Raises
    ------
    InputError
        A table lacks a required column, or the items and the graph disagree on the ids.
    OutputError
        ``path`` is not empty and is not a ccgraph run (or ``overwrite`` is false), or it
        cannot be written.
    """
    check_result(result)
    extra_files(result.extras)
    with RunWriter(path, overwrite=overwrite, adopt=adopt) as writer:
        return writer.finish(result)


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


def _read_table(path: Path) -> pd.DataFrame:
    """One table of a run (the four are read at once: Parquet decoding releases the GIL)."""
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise InputError(f"{path}: unreadable Parquet ({exc})") from None


def load_run(path: str | os.PathLike[str]) -> RunResult:
    """Read a run directory back into a :class:`~ccgraph.containers.RunResult`.

    Extra outputs are listed in ``result.extras`` and read lazily on access.

    Raises
    ------
    InputError
        The directory is missing, incomplete (a file absent or of another size than the
        manifest records), of another schema version, or inconsistent.
    ParameterError
        ``path`` is not a str or path.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> import pandas as pd
    >>> import ccgraph
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> ids = [f"i{j}" for j in range(40)]
    >>> pd.DataFrame({"id": ids, "title": ids}).to_csv(tmp / "cat.csv", index=False)
    >>> vectors = np.random.default_rng(0).normal(size=(40, 8)).astype("float32")
    >>> np.save(tmp / "vec.npy", vectors)
    >>> _ = ccgraph.run({
    ...     "data": {"path": str(tmp / "cat.csv"), "format": "table"},
    ...     "embed": {"text": {"enabled": False}, "precomputed": {"path": str(tmp / "vec.npy")}},
    ...     "graph": {"k": 5},
    ...     "output": {"dir": str(tmp / "run")},
    ... })
    >>> run = ccgraph.load_run(tmp / "run")
    >>> len(run.items), run.graph.adjacency.shape
    (40, (40, 40))
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(
            f"`path` must be a run directory (a str or Path); got {type(path).__name__} {path!r}"
        )
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
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(TABLES), thread_name_prefix="load_run") as pool:
        jobs = {name: pool.submit(_read_table, root / f"{name}.parquet") for name in TABLES}
        tables = {name: job.result() for name, job in jobs.items()}  # the first error first
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
