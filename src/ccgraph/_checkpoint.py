"""Checkpoints of the expensive stages, so a killed or repeated run does not redo them.

Embeddings already resume through their content-addressed cache (:mod:`ccgraph.embed.cache`).
This module does the same for the kNN graph: the graph is saved with
:func:`ccgraph.io.save_graph` (temporary file, fsync, rename) under the run's cache folder as
``checkpoints/graph-<key>.npz``, where the key is a SHA-256 over everything that determines the
graph: the bytes, kind and ids of every embedding, the ``graph`` config section (without the
near-duplicate rules, which do not change it), the seed, ``n_jobs``, the ccgraph version and a
checkpoint format version.

Policy: a checkpoint is reused whenever its key matches, with or without ``--resume``. The key
covers every input of the stage, so a match gives exactly the graph the stage would compute
(the pipeline is deterministic for a given seed), and a changed input, parameter or ccgraph
version is simply a miss. ``resume=True`` only adds reporting: the run logs what it restores
and warns when nothing matches, so a user who expected to resume learns that it starts over.
A checkpoint that cannot be read is ignored (logged) and recomputed. The newest
:data:`KEEP_GRAPHS` graph checkpoints are kept; older ones are deleted after each save.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ccgraph.containers import Embeddings, KnnGraph
from ccgraph.exceptions import CcgraphError

__all__ = [
    "FORMAT_VERSION",
    "KEEP_GRAPHS",
    "graph_key",
    "load_graph",
    "load_knn",
    "save_graph",
    "save_knn",
]

log = logging.getLogger(__name__)

#: Bump when the meaning of a stored checkpoint changes (old ones then stop matching).
FORMAT_VERSION = 1
#: Graph checkpoints kept per cache folder (newest first).
KEEP_GRAPHS = 3
_INFO_KEY = "_stage_info"
_KEY_KEY = "_checkpoint_key"
_KNN_KEY = "__checkpoint_key"


def graph_key(
    embeddings: Mapping[str, Embeddings],
    ids: np.ndarray,
    params: Mapping[str, Any],
) -> str:
    """SHA-256 content key of the graph stage.

    Parameters
    ----------
    embeddings
        The embeddings by modality name (their vectors, kind and ids are hashed).
    ids
        The catalog's item ids in row order (the graph's node order).
    params
        Everything else that determines the graph (JSON-serialisable), e.g. the ``graph``
        config section, the seed and ``n_jobs``.

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> e = Embeddings.from_array(np.eye(3), ["a", "b", "c"])
    >>> ids = np.array(["a", "b", "c"])
    >>> graph_key({"x": e}, ids, {"k": 1}) == graph_key({"x": e}, ids, {"k": 1})
    True
    >>> graph_key({"x": e}, ids, {"k": 1}) == graph_key({"x": e}, ids, {"k": 2})
    False
    """
    from ccgraph import __version__

    h = hashlib.sha256()
    head = {"format": FORMAT_VERSION, "ccgraph": __version__, "params": params}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    h.update(_ids_bytes(ids))
    for name in sorted(embeddings):
        e = embeddings[name]
        vectors = np.ascontiguousarray(e.vectors)
        h.update(f"\0{name}\0{e.kind}\0{vectors.dtype.str}\0{vectors.shape}\0".encode())
        h.update(_ids_bytes(e.ids))
        h.update(vectors.data.cast("B"))  # the array's own buffer (numpy types __buffer__ >= 3.12)
    return h.hexdigest()


def _ids_bytes(ids: np.ndarray) -> bytes:
    return ("\0".join(map(str, ids)) + "\1").encode()


#: What to do when a checkpoint cannot be written (the run goes on without it).
_ADVICE = "; set `embed.cache_dir` to a writable folder to keep checkpoints"


def _reason(exc: BaseException) -> BaseException:
    """The OS error behind a write failure (the writers' own advice names `output.dir`)."""
    cause = exc.__cause__
    return cause if isinstance(exc, CcgraphError) and isinstance(cause, OSError) else exc


def _path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "checkpoints" / f"graph-{key[:32]}.npz"


def load_graph(
    cache_dir: str | Path, key: str, *, resume: bool = False
) -> tuple[KnnGraph, dict[str, Any]] | None:
    """Return the checkpointed graph and stage info for ``key``, or ``None`` on a miss.

    With ``resume`` a miss is logged as a warning (the run starts this stage over).
    """
    from ccgraph.io import load_graph as _load

    path = _path(Path(cache_dir), key)
    if not path.is_file():
        if resume and not any(path.parent.glob("graph-*.npz")):
            log.warning(
                "--resume: no graph checkpoint matches: there is none at all in %s "
                "(checkpoints live beside the output folder, in `.<out name>.cache`, or in "
                "`embed.cache_dir`: a different `--out` starts a new cache); building the graph",
                path.parent,
            )
        elif resume:
            log.warning(
                "--resume: no graph checkpoint matches this run's embeddings and `graph` "
                "settings (%s); building the graph again",
                path.name,
            )
        return None
    try:
        stored = _load(path)
    except CcgraphError as exc:
        log.warning("ignoring unreadable graph checkpoint %s (%s)", path, exc)
        return None
    params = dict(stored.params)
    info = params.pop(_INFO_KEY, {})
    if params.pop(_KEY_KEY, None) != key:
        log.warning("ignoring graph checkpoint %s: it was saved under another key", path)
        return None
    log.info("graph restored from checkpoint %s", path)
    return KnnGraph(stored.adjacency, stored.ids, params), dict(info)


def save_graph(
    cache_dir: str | Path, key: str, graph: KnnGraph, info: Mapping[str, Any]
) -> Path | None:
    """Save ``graph`` (and the stage's ``info``) atomically as the checkpoint of ``key``.

    A failure to write is logged and ignored: a checkpoint only saves time.
    """
    from ccgraph.io import save_graph as _save

    path = _path(Path(cache_dir), key)
    params = {**dict(graph.params), _INFO_KEY: dict(info), _KEY_KEY: key}
    try:
        _save(KnnGraph(graph.adjacency, graph.ids, params), path)
    except (CcgraphError, OSError) as exc:
        log.warning("could not write the graph checkpoint %s (%s)%s", path, _reason(exc), _ADVICE)
        return None
    log.info("graph checkpoint written to %s", path)
    _prune(path.parent, keep=path)
    return path


def _prune(folder: Path, *, keep: Path) -> None:
    """Delete all but the newest :data:`KEEP_GRAPHS` graph checkpoints (never ``keep``)."""
    found = []
    for p in folder.glob("graph-*.npz"):
        try:
            found.append((p.stat().st_mtime, p))
        except OSError:
            continue
    found.sort(reverse=True)
    for _, p in found[KEEP_GRAPHS:]:
        if p != keep:
            p.unlink(missing_ok=True)


def _knn_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "checkpoints" / f"knn-{key[:32]}.npz"


def save_knn(cache_dir: str | Path, key: str, lists: Mapping[str, Any]) -> Path | None:
    """Save the kNN lists behind a checkpointed graph (kept for incremental updates).

    ``lists`` maps a graph name to an object with ``ids``, ``indices`` and ``distances``
    (:class:`ccgraph.update._persist.KnnLists`). A failure to write is logged and ignored.
    """
    from ccgraph.io.atomic import atomic_path

    path = _knn_path(Path(cache_dir), key)
    arrays: dict[str, np.ndarray] = {_KNN_KEY: np.array(key)}
    for name, kl in lists.items():
        arrays[f"{name}__ids"] = np.asarray(kl.ids).astype(str)
        arrays[f"{name}__indices"] = np.asarray(kl.indices)
        arrays[f"{name}__distances"] = np.asarray(kl.distances)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            # numpy's stub lets ``**arrays`` fill ``allow_pickle``; its keys are array names
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    except (CcgraphError, OSError) as exc:
        log.warning("could not write the kNN checkpoint %s (%s)%s", path, _reason(exc), _ADVICE)
        return None
    # Keep kNN lists only beside a graph checkpoint that still exists (graphs are pruned).
    for stale in path.parent.glob("knn-*.npz"):
        if not (path.parent / stale.name.replace("knn-", "graph-", 1)).exists():
            stale.unlink(missing_ok=True)
    return path


def load_knn(cache_dir: str | Path, key: str) -> dict[str, Any] | None:
    """The kNN lists saved with :func:`save_knn` for ``key``, or ``None`` when absent."""
    from ccgraph.update._persist import KnnLists

    path = _knn_path(Path(cache_dir), key)
    if not path.is_file():
        return None
    try:
        # opened here: np.load leaves its own handle open when the zip is corrupt
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
            if _KNN_KEY not in z.files or str(z[_KNN_KEY]) != key:
                log.warning("ignoring kNN checkpoint %s: it was saved under another key", path)
                return None
            names = sorted({f.rsplit("__", 1)[0] for f in z.files if f != _KNN_KEY})
            return {
                n: KnnLists(z[f"{n}__ids"], z[f"{n}__indices"], z[f"{n}__distances"]) for n in names
            }
    # a truncated or empty file raises BadZipFile / EOFError, not OSError
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable kNN checkpoint %s (%s)", path, exc)
        return None
