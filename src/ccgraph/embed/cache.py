"""A content-addressed embedding cache on disk, so reruns and interrupted runs reuse work.

Layout under ``cache_dir``::

    <embedder name>-<first 16 hex of the embedder key>/
        meta.json                       # name, params, kind, dim (for people; not read back)
        shards/<stamp>-<uuid>.vecs.npy  # float32 [m, d] or uint8 [m, bytes]
        shards/<stamp>-<uuid>.keys.npy  # the m item keys (unicode), written last

An item key is ``sha256(embedder key + ":" + content digest)`` where the content digest is
the sha256 of the image file's bytes or of the caption text (:meth:`Embedder.content_keys`),
and the embedder key hashes the embedder's name, version and output-defining parameters. So a
changed file, caption, model or parameter is a miss, and a renamed or moved file is a hit.
Every file is written to a temporary name and moved into place with :func:`os.replace`; a
shard counts only once its keys file exists, so a run killed mid-write leaves no half shard.
The shards' keys files are the index: they are read when the cache is opened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph._validation import check_int
from ccgraph.containers import Embeddings
from ccgraph.embed.base import Embedder, EmbedOutput, make_rejects, progress_bar
from ccgraph.exceptions import InputError, OutputError

__all__ = ["EmbeddingCache", "embed_with_cache"]

logger = logging.getLogger(__name__)


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class EmbeddingCache:
    """Shards of cached vectors for one embedder, indexed by item key.

    Parameters
    ----------
    cache_dir
        Root folder (created if needed).
    embedder
        Decides the sub-folder (name and key) and the vector kind.
    """

    def __init__(self, cache_dir: str | Path, embedder: Embedder) -> None:
        self.embedder_key = embedder.key()
        self.kind = embedder.kind
        self.root = Path(cache_dir).expanduser() / f"{embedder.name}-{self.embedder_key[:16]}"
        self.shards = self.root / "shards"
        try:
            self.shards.mkdir(parents=True, exist_ok=True)
            meta = self.root / "meta.json"
            if not meta.exists():
                text = json.dumps(
                    {
                        "name": embedder.name,
                        "kind": embedder.kind,
                        "params": embedder.params,
                        "key": self.embedder_key,
                    },
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
                tmp = meta.with_name(f".meta.{uuid.uuid4().hex[:8]}.tmp")
                tmp.write_text(text)
                os.replace(tmp, meta)
        except OSError as exc:
            raise OutputError(
                f"cannot use embedding cache folder {self.root}: {exc}; set `embed.cache_dir` "
                "to a writable folder"
            ) from exc
        self._index: dict[str, tuple[Path, int]] = {}
        self._dim: int | None = None
        self._load_index()

    def _load_index(self) -> None:
        for keys_file in sorted(self.shards.glob("*.keys.npy")):
            vecs_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".vecs.npy"))
            try:
                keys = np.load(keys_file, allow_pickle=False)
                vecs = np.load(vecs_file, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
                logger.warning("skipping unreadable cache shard %s (%s)", keys_file, exc)
                continue
            if vecs.ndim != 2 or len(keys) != vecs.shape[0]:
                logger.warning("skipping inconsistent cache shard %s", keys_file)
                continue
            if self._dim is None:
                self._dim = int(vecs.shape[1])
            elif vecs.shape[1] != self._dim:
                logger.warning("skipping cache shard %s of another width", keys_file)
                continue
            for row, k in enumerate(keys.tolist()):
                self._index[k] = (vecs_file, row)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def item_key(self, content_key: str) -> str:
        """Cache key of one item from its content digest."""
        return hashlib.sha256(f"{self.embedder_key}:{content_key}".encode()).hexdigest()

    def get(self, keys: list[str]) -> np.ndarray:
        """Stack the cached vectors of ``keys`` (all must be present), reading shard by shard."""
        if not keys:
            return np.zeros(
                (0, self._dim or 0), dtype=np.uint8 if self.kind == "binary" else np.float32
            )
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for pos, k in enumerate(keys):
            f, row = self._index[k]
            by_file.setdefault(f, []).append((pos, row))
        out: np.ndarray | None = None
        for f, pairs in by_file.items():
            vecs = np.load(f, mmap_mode="r", allow_pickle=False)
            if out is None:
                out = np.empty((len(keys), vecs.shape[1]), dtype=vecs.dtype)
            pos, rows = np.array(pairs).T
            out[pos] = vecs[rows]
        assert out is not None
        return out

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        """Write one shard holding ``vectors`` under ``keys`` (atomically)."""
        if not keys:
            return
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise InputError(
                f"cache {self.root}: vectors of width {vectors.shape[1]} do not match the cached "
                f"width {self._dim}"
            )
        stem = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        vecs_file = self.shards / f"{stem}.vecs.npy"
        try:
            _atomic_save(vecs_file, np.ascontiguousarray(vectors))
            _atomic_save(self.shards / f"{stem}.keys.npy", np.asarray(keys, dtype="U64"))
        except OSError as exc:
            raise OutputError(
                f"cannot write embedding cache shard in {self.shards}: {exc}; set "
                "`embed.cache_dir` to a writable folder"
            ) from exc
        self._dim = int(vectors.shape[1])
        for row, k in enumerate(keys):
            self._index[k] = (vecs_file, row)


def embed_with_cache(
    embedder: Embedder,
    items: pd.DataFrame,
    cache_dir: str | Path,
    *,
    chunk_size: int = 512,
    show_progress: bool = False,
) -> EmbedOutput:
    """Embed ``items``, computing only what the cache does not already hold.

    Parameters
    ----------
    embedder
        Any :class:`~ccgraph.embed.Embedder`.
    items
        The items table (unique ``id`` column plus what the embedder reads).
    cache_dir
        Root of the cache (see the module notes for the layout).
    chunk_size
        Misses are embedded and written in shards of this many items, so an interrupted run
        keeps every finished shard.
    show_progress
        Progress bar over the misses.

    Returns
    -------
    EmbedOutput
        The same result as ``embedder.embed(items)`` (rows in input order), with
        ``cache_hits`` and ``cache_misses`` in its stats. Items with identical content are
        embedded once. Rejects are not cached (a missing file may appear later).
    """
    chunk_size = check_int("chunk_size", chunk_size, low=1)
    if "id" not in items.columns:
        raise InputError(f"items need an `id` column; got {list(items.columns)}")
    start = time.perf_counter()
    cache = EmbeddingCache(cache_dir, embedder)
    ids = items["id"].astype(str).to_numpy()
    content = embedder.content_keys(items)
    keys = [cache.item_key(c) if c is not None else None for c in content]
    hits = sum(1 for k in keys if k is not None and k in cache)
    todo: list[int] = []
    seen: set[str] = set()
    for i, k in enumerate(keys):
        if k is None:
            todo.append(i)
        elif k not in cache and k not in seen:
            seen.add(k)
            todo.append(i)
    reject_rows: list[tuple[Any, ...]] = []
    reason_of: dict[str, tuple[Any, ...]] = {}  # key -> reject row of its first occurrence
    direct: dict[int, np.ndarray] = {}  # embedded items without a content key (not cached)
    with progress_bar(len(todo), f"embed {embedder.name}", enabled=show_progress) as advance:
        for lo in range(0, len(todo), chunk_size):
            chunk = todo[lo : lo + chunk_size]
            out = embedder.embed(items.iloc[chunk])
            pos_of = {ids[i]: i for i in chunk}
            done = [pos_of[str(x)] for x in out.embeddings.ids]
            vecs = np.asarray(out.embeddings.vectors)
            good = [(keys[i], j) for j, i in enumerate(done) if keys[i] is not None]
            cache.put([k for k, _ in good], vecs[[j for _, j in good]])  # type: ignore[misc]
            direct.update({i: vecs[j] for j, i in enumerate(done) if keys[i] is None})
            for file, row, item_id, stage, reason in out.rejects.itertuples(index=False):
                pos = chunk[int(row) - 1]
                rec = (file, pos + 1, item_id, stage, reason)
                reject_rows.append(rec)
                if keys[pos] is not None:
                    reason_of[keys[pos]] = rec  # type: ignore[index]
            advance(len(chunk))
    rejected = {r[1] - 1 for r in reject_rows}
    ok: list[int] = []
    for i, k in enumerate(keys):
        if i in rejected:
            continue
        if i in direct or (k is not None and k in cache):
            ok.append(i)
        elif k is not None and k in reason_of:  # same content as a rejected item
            file, _, _, stage, reason = reason_of[k]
            reject_rows.append((file, i + 1, ids[i], stage, reason))
    cached = [i for i in ok if i not in direct]
    got = cache.get([keys[i] for i in cached])  # type: ignore[misc]
    dim = got.shape[1] if cached else (next(iter(direct.values())).shape[0] if direct else None)
    dtype = np.uint8 if embedder.kind == "binary" else np.float32
    vectors = np.zeros((len(ok), dim or int(getattr(embedder, "dim", 0))), dtype=dtype)
    where = {i: j for j, i in enumerate(ok)}
    if cached:
        vectors[[where[i] for i in cached]] = got
    for i, v in direct.items():
        vectors[where[i]] = v
    params = {"embedder": embedder.name, **embedder.params}
    emb = Embeddings(vectors, ids[ok], embedder.kind, params)
    rejects = make_rejects(
        [(r[0], r[1], r[2], r[4]) for r in sorted(reject_rows, key=lambda r: r[1])]
    )
    elapsed = time.perf_counter() - start
    stats = {
        "n_items": len(ids),
        "n_embedded": emb.n_items,
        "n_rejected": len(rejects),
        "cache_hits": hits,
        "cache_misses": len(todo),
        "seconds": elapsed,
    }
    logger.info(
        "%s: %d items, %d cache hits, %d embedded, %d rejected in %.2f s",
        embedder.name,
        len(ids),
        hits,
        len(todo),
        len(rejects),
        elapsed,
    )
    return EmbedOutput(emb, rejects, stats)
