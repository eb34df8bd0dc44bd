"""Item embeddings kept in a run directory, for queries about new items and for updates.

A run stores each modality's vectors as two extra arrays (``RunResult.extras``, written by
:func:`ccgraph.io.write_run` as ``.npy`` files and memory-mapped by :func:`ccgraph.load_run`):

- ``embeddings_<modality>.npy``: float32 ``[m, d]`` (dense) or uint8 ``[m, bytes]`` (packed
  hash codes), exactly the vectors the graph was built from;
- ``embeddings_<modality>_rows.npy``: int64 ``[m]``, the row of each vector in the items order
  (``items.parquet`` / ``graph.npz``); a modality may cover only some items (images that did
  not load, ids absent from a precomputed file).

The embedder's parameters are in ``manifest.json`` under ``stages.embed.<modality>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.containers import Embeddings, RunResult
from ccgraph.exceptions import InputError

__all__ = ["StoredEmbeddings", "embedding_extras", "stored_embeddings"]

PREFIX = "embeddings_"
ROWS_SUFFIX = "_rows"


def embedding_extras(
    embeddings: Mapping[str, Embeddings], ids: np.ndarray
) -> dict[str, np.ndarray]:
    """The extras that persist ``embeddings`` in a run directory.

    Parameters
    ----------
    embeddings
        Modality name (``text``, ``image``, ``precomputed``) to its embeddings; each covers a
        subset of ``ids``.
    ids
        The run's item ids in row order.

    Returns
    -------
    dict of str to numpy.ndarray
        ``embeddings_<modality>`` (the vectors as computed) and ``embeddings_<modality>_rows``
        (int64 row positions into ``ids``) for every modality.

    Examples
    --------
    >>> emb = Embeddings.from_array(np.eye(2), ["b", "c"])
    >>> out = embedding_extras({"text": emb}, np.array(["a", "b", "c"]))
    >>> sorted(out), out["embeddings_text_rows"].tolist()
    (['embeddings_text', 'embeddings_text_rows'], [1, 2])
    """
    out: dict[str, np.ndarray] = {}
    index = pd.Index(np.asarray(ids, dtype=str))
    for name, emb in embeddings.items():
        rows = index.get_indexer(emb.ids)
        if (rows < 0).any():
            raise InputError(f"embeddings {name!r} hold ids that are not items of the run")
        out[f"{PREFIX}{name}"] = np.ascontiguousarray(emb.vectors)
        out[f"{PREFIX}{name}{ROWS_SUFFIX}"] = rows.astype(np.int64)
    return out


@dataclass(frozen=True, slots=True, eq=False)
class StoredEmbeddings:
    """One modality's stored vectors (possibly memory-mapped) and the item rows they cover.

    Attributes
    ----------
    modality
        ``text``, ``image``, ``precomputed``.
    vectors
        float32 ``[m, d]`` or packed uint8 codes ``[m, bytes]`` (``kind == "binary"``).
    rows
        int64 ``[m]``: the item row of each vector.
    kind
        ``"dense"`` or ``"binary"``.
    params
        The embedder's parameters from the manifest (``stages.embed.<modality>``).
    """

    modality: str
    vectors: np.ndarray
    rows: np.ndarray
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """Width of a stored vector (bytes for binary codes)."""
        return int(self.vectors.shape[1])

    def __repr__(self) -> str:
        return f"StoredEmbeddings({self.modality!r}, {self.kind}, n={len(self.rows)}, d={self.dim})"


def stored_embeddings(run: RunResult) -> dict[str, StoredEmbeddings]:
    """Read the embeddings a run stored (empty when it stored none).

    Raises
    ------
    InputError
        A modality's vectors and rows disagree in length or point outside the items.
    """
    names = [
        k[len(PREFIX) :] for k in run.extras if k.startswith(PREFIX) and not k.endswith(ROWS_SUFFIX)
    ]
    params = run.manifest.get("stages", {}).get("embed", {})
    n = len(run.items)
    out = {}
    for name in sorted(names):
        rows_key = f"{PREFIX}{name}{ROWS_SUFFIX}"
        if rows_key not in run.extras:
            raise InputError(f"run {run.path}: {PREFIX}{name} is stored without {rows_key}")
        vectors = run.extras[f"{PREFIX}{name}"]
        rows = np.asarray(run.extras[rows_key], dtype=np.int64)
        if vectors.ndim != 2 or len(rows) != len(vectors):
            raise InputError(
                f"run {run.path}: {PREFIX}{name} has shape {vectors.shape} but its rows "
                f"array has {len(rows)} entries"
            )
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise InputError(f"run {run.path}: {rows_key} points outside the {n} items")
        kind = "binary" if vectors.dtype == np.uint8 else "dense"
        out[name] = StoredEmbeddings(name, vectors, rows, kind, dict(params.get(name, {})))
    return out
