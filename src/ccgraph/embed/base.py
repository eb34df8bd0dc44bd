"""The :class:`Embedder` protocol and the :class:`EmbedOutput` every embedder returns.

An embedder turns a table of items into vectors. Items it cannot embed (a missing or corrupt
image, a URL-only item) do not stop the run: they come back as rows of a ``rejects`` table with
the columns of ``rejects.parquet`` (``file, row, id, stage, reason``; ``stage`` is ``"embed"``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ccgraph.containers import REJECT_COLUMNS, Embeddings

__all__ = [
    "EmbedOutput",
    "Embedder",
    "embedder_key",
    "make_rejects",
    "progress_bar",
    "resolve_n_jobs",
]


@dataclass(frozen=True, slots=True, eq=False)
class EmbedOutput:
    """What an embedder returns: vectors for the items that worked, rejects for the rest.

    Attributes
    ----------
    embeddings
        One row per embedded item, in input order (may have zero rows).
    rejects
        ``file, row, id, stage, reason`` for each item that failed; ``row`` is the item's
        1-based position in the table given to :meth:`Embedder.embed`.
    stats
        Counts and timings of this call (``n_items``, ``n_embedded``, ``n_rejected``,
        ``seconds``; with a cache also ``cache_hits`` and ``cache_misses``).
    """

    embeddings: Embeddings
    rejects: pd.DataFrame = field(default_factory=lambda: make_rejects([]))
    stats: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Embedder(Protocol):
    """Turns item rows into vectors.

    Attributes
    ----------
    name
        Short stable name (``"phash"``, ``"cnn"``, ``"text"``, ...).
    kind
        ``"dense"`` (float32, unit rows) or ``"binary"`` (packed uint8 codes).
    params
        Everything that changes the output (model identity, sizes, library versions); runtime
        settings such as ``batch_size`` or ``n_jobs`` are not part of it.
    """

    name: str
    kind: str

    @property
    def params(self) -> dict[str, Any]:
        """Output-defining parameters (JSON-serialisable)."""
        ...

    def key(self) -> str:
        """Cache key of this embedder: sha256 of name, version and :attr:`params`."""
        ...

    def content_keys(self, items: pd.DataFrame) -> list[str | None]:
        """Per-item digest of the embedded content (text or file bytes); ``None`` if unreadable."""
        ...

    def embed(self, items: pd.DataFrame) -> EmbedOutput:
        """Embed ``items``; failures become reject rows, never exceptions."""
        ...


def embedder_key(name: str, version: str, params: Mapping[str, Any]) -> str:
    """Return the sha256 hex digest of an embedder's identity.

    Examples
    --------
    >>> a = embedder_key("phash", "1", {"hash_size": 8})
    >>> a == embedder_key("phash", "1", {"hash_size": 8})
    True
    >>> a == embedder_key("phash", "1", {"hash_size": 16})
    False
    """
    blob = json.dumps({"name": name, "version": version, "params": dict(params)}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def make_rejects(
    rows: Sequence[tuple[str | None, int | None, str | None, str]], *, stage: str = "embed"
) -> pd.DataFrame:
    """Build a rejects table from ``(file, row, id, reason)`` tuples.

    Examples
    --------
    >>> make_rejects([("a.jpg", 1, "a", "file not found")]).iloc[0].to_dict()["stage"]
    'embed'
    """
    frame = pd.DataFrame(
        {
            "file": pd.array([r[0] for r in rows], dtype="string"),
            "row": pd.array([r[1] for r in rows], dtype="Int64"),
            "id": pd.array([r[2] for r in rows], dtype="string"),
            "stage": pd.array([stage] * len(rows), dtype="string"),
            "reason": pd.array([r[3] for r in rows], dtype="string"),
        }
    )
    return frame[list(REJECT_COLUMNS)]


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Return the number of worker threads: ``n_jobs`` or the usable cores."""
    if n_jobs is not None:
        return max(1, int(n_jobs))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def dense_embeddings(
    vectors: np.ndarray, ids: Sequence[str] | np.ndarray, params: Mapping[str, Any]
) -> Embeddings:
    """Wrap already unit-normalised float32 rows (possibly zero rows) as dense embeddings."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    return Embeddings(arr, np.asarray(ids, dtype=str), "dense", dict(params))


def empty_embeddings(dim: int, kind: str, params: Mapping[str, Any]) -> Embeddings:
    """Zero-row embeddings of width ``dim`` (when every item was rejected)."""
    dtype = np.uint8 if kind == "binary" else np.float32
    return Embeddings(np.zeros((0, dim), dtype=dtype), np.zeros(0, dtype=str), kind, dict(params))


@contextmanager
def progress_bar(total: int, description: str, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callback driving a rich progress bar (a no-op when disabled)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n: prog.advance(task, n)
