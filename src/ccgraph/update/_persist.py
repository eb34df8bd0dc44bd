"""What a run keeps for later updates: per-modality embeddings and the kNN lists of each graph.

The pipeline asks :func:`search_and_build` for every kNN graph it builds, so the lists the graph
came from are kept, and :func:`run_extras` turns embeddings and lists into
:attr:`RunResult.extras <ccgraph.containers.RunResult.extras>` (written by
:func:`ccgraph.io.write_run` as ``<name>.npy``, memory-mapped by :func:`ccgraph.io.load_run`):

==================================  ===========================================================
``embeddings_<modality>``           ``float32 [n_m, d]`` vectors (``uint8`` packed codes for
                                    hashes) of the items that have this modality
``embeddings_<modality>_rows``      ``int64 [n_m]``: each vector's position in the items order
``knn_<graph>_rows``                ``int64 [n_g]``: the items the graph's kNN search covered,
                                    as positions in the items order
``knn_<graph>_indices``             ``int32 [n_g, k]``: each item's neighbours, as positions in
                                    ``knn_<graph>_rows`` (-1 for an unfilled slot)
``knn_<graph>_distances``           ``float32 [n_g, k]``: the neighbour distances
==================================  ===========================================================

``<graph>`` is the modality name, or ``concat`` for one search over concatenated modalities.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ccgraph._array_memo import arrow_strings
from ccgraph.containers import Embeddings, KnnGraph
from ccgraph.exceptions import DataQualityWarning, InputError

__all__ = [
    "KnnLists",
    "embedding_extras",
    "read_embeddings",
    "read_knn_lists",
    "run_extras",
    "search_and_build",
]

logger = logging.getLogger(__name__)

#: Name of the kNN graph searched over concatenated modalities.
CONCAT = "concat"


class KnnLists:
    """The kNN lists of one graph's search: ``indices`` / ``distances`` ``[n, k]`` over ``ids``."""

    __slots__ = ("distances", "ids", "indices")

    def __init__(self, ids: np.ndarray, indices: np.ndarray, distances: np.ndarray) -> None:
        self.ids = np.asarray(ids).astype(str)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.distances = np.asarray(distances, dtype=np.float32)

    @property
    def k(self) -> int:
        """Neighbours per item."""
        return int(self.indices.shape[1])


def search_and_build(
    emb: Embeddings,
    *,
    name: str,
    k: int,
    metric: str,
    store: dict[str, KnnLists],
    **common: Any,
) -> KnnGraph:
    """``build_knn_graph(emb, k=k, metric=metric, **common)``, keeping the kNN lists in ``store``.

    The search runs first with the same settings ``build_knn_graph`` would use, then the graph
    is built from the lists (``knn=``), so the graph is the one a direct call gives; the
    backend used and the recall estimate of an approximate search are recorded as
    ``build_knn_graph`` records them.
    """
    from ccgraph._random import derive_seed
    from ccgraph.graph import build_knn_graph, choose_backend, estimate_recall, knn_search
    from ccgraph.graph.build import RECALL_WARNING
    from ccgraph.graph.knn import prepare_vectors

    start = time.perf_counter()
    seed = derive_seed(common.get("rng"))
    backend = common.get("backend", "auto")
    idx, dist = knn_search(
        emb, k=k, metric=metric, backend=backend, rng=seed, n_jobs=common.get("n_jobs")
    )
    used = choose_backend(emb.n_items, metric, backend)
    recall = None
    if used != "exact":
        recall = estimate_recall(prepare_vectors(emb, metric), idx, dist, metric=metric, rng=seed)
        if recall < RECALL_WARNING:
            warnings.warn(
                f"the approximate kNN search found only {recall:.1%} of the true neighbours "
                "(estimated on 200 items); use backend='exact' or raise k",
                DataQualityWarning,
                stacklevel=2,
            )
    t_knn = time.perf_counter() - start
    graph = build_knn_graph(emb, k=k, metric=metric, knn=(idx, dist), **common)
    timings = dict(graph.params.get("timings_s", {}))
    timings = {"knn": t_knn, "total": timings.get("total", 0.0) + t_knn}
    params = {
        **dict(graph.params),
        "backend_used": used,
        "estimated_recall": recall,
        "timings_s": timings,
    }
    store[name] = KnnLists(emb.ids, idx, dist)
    return KnnGraph(graph.adjacency, graph.ids, params)


def run_extras(
    embeddings: Mapping[str, Embeddings], ids: np.ndarray, knn: Mapping[str, KnnLists]
) -> dict[str, np.ndarray]:
    """The arrays a run directory keeps for updates (names in the module docstring)."""
    ids = np.asarray(ids).astype(str)
    out = embedding_extras(embeddings)
    for name, emb in embeddings.items():
        out[f"embeddings_{name}_rows"] = _positions(ids, emb.ids, f"embeddings {name!r}")
    for name, lists in knn.items():
        out[f"knn_{name}_rows"] = _positions(ids, lists.ids, f"kNN lists {name!r}")
        out[f"knn_{name}_indices"] = np.ascontiguousarray(lists.indices, dtype=np.int32)
        out[f"knn_{name}_distances"] = np.ascontiguousarray(lists.distances, dtype=np.float32)
    return out


def embedding_extras(embeddings: Mapping[str, Embeddings]) -> dict[str, np.ndarray]:
    """The ``embeddings_<modality>`` arrays of :func:`run_extras` (the same objects).

    A memory-mapped merge stays one, so :class:`ccgraph.io.run.RunWriter` may adopt its file;
    given these first, the writer takes the same arrays from :func:`run_extras` later.
    """
    return {
        f"embeddings_{name}": emb.vectors
        if emb.vectors.flags.c_contiguous
        else np.ascontiguousarray(emb.vectors)
        for name, emb in embeddings.items()
    }


def _positions(items: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    """Position of each of ``ids`` among ``items`` (all of them: the usual case is in order)."""
    ids = np.asarray(ids).astype(str)
    if len(ids) == len(items) and np.array_equal(ids, items):
        return np.arange(len(ids), dtype=np.int64)
    pos = positions(ids, items)
    if (pos < 0).any():
        raise InputError(f"{what} hold ids that are not items of the run")
    return pos.astype(np.int64)


def read_embeddings(
    extras: Mapping[str, Any], ids: np.ndarray, params: Mapping[str, Any]
) -> dict[str, Embeddings]:
    """The per-modality embeddings a run kept, with their item ids (``ids`` = items order)."""
    out: dict[str, Embeddings] = {}
    for key in extras:
        if not key.startswith("embeddings_") or key.endswith("_rows"):
            continue
        name = key[len("embeddings_") :]
        rows_key = f"{key}_rows"
        if rows_key not in extras:
            raise InputError(f"the run keeps {key!r} but not {rows_key!r}")
        vectors = np.asarray(extras[key])
        rows = np.asarray(extras[rows_key], dtype=np.int64)
        kind = "binary" if vectors.dtype == np.uint8 else "dense"
        out[name] = Embeddings(vectors, _at(ids, rows), kind, dict(params.get(name, {})))
    return out


def _at(ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``ids[rows]``, or ``ids`` itself when ``rows`` lists every row in order.

    The usual case: a checked, read-only id array is then not checked or converted to
    Arrow again.
    """
    if len(rows) == len(ids) and np.array_equal(rows, np.arange(len(ids))):
        return ids
    return ids[rows]


def read_knn_lists(extras: Mapping[str, Any], ids: np.ndarray) -> dict[str, KnnLists]:
    """The kNN lists a run kept, per graph name."""
    out: dict[str, KnnLists] = {}
    for key in extras:
        if not (key.startswith("knn_") and key.endswith("_rows")):
            continue
        name = key[len("knn_") : -len("_rows")]
        need = [f"knn_{name}_indices", f"knn_{name}_distances"]
        if any(n not in extras for n in need):
            raise InputError(f"the run keeps {key!r} but not {need}")
        rows = np.asarray(extras[key], dtype=np.int64)
        out[name] = KnnLists(
            _at(ids, rows), np.asarray(extras[need[0]]), np.asarray(extras[need[1]])
        )
    return out


def update_info(levels: list[Any], base_dir: str | None) -> dict[str, Any]:
    """Manifest entry ``stages.persist``: what an update needs beyond the stored arrays.

    ``base_dir`` (the config file's folder, so relative paths of the recorded config resolve
    as in the run), the Leiden resolution behind every level (a level refined by
    ``recursive_split`` records its base resolution) and the smallest cluster ID each level
    may still mint (``next_id``: IDs of vanished clusters are never reused).
    """
    resolutions = []
    next_ids = []
    for part in levels:
        params = dict(part.params)
        base = (
            params.get("base", params) if params.get("algorithm") == "recursive_split" else params
        )
        resolutions.append(float(base.get("resolution", 1.0)))
        top = int(part.membership.max()) + 1 if len(part.membership) else 0
        next_ids.append(max(int(params.get("next_id", 0) or 0), top))
    return {
        "base_dir": base_dir,
        "level_resolutions": resolutions,
        "next_id": next_ids,
        "recursive_split": [dict(p.params).get("algorithm") == "recursive_split" for p in levels],
    }


def member(values: Any, pool: Any) -> np.ndarray:
    """Boolean mask: which ``values`` (ids) are in ``pool`` (a hash lookup; fast on strings).

    Both sides are compared as Arrow strings by Arrow's hash kernel (an Arrow-backed pandas
    column is used as it is), so no Python string is made per value.

    Examples
    --------
    >>> member(np.array(["a", "b", "c"]), ["c", "a"]).tolist()
    [True, False, True]
    >>> member(pd.Series(["a", "b", None], dtype="string"), {"b"}).tolist()
    [False, True, False]
    """
    import pyarrow.compute as pc

    if isinstance(pool, (set, frozenset, dict)):
        pool = list(pool)
    if len(pool) == 0:
        return np.zeros(len(values), dtype=bool)
    found = pc.is_in(_as_arrow(values), value_set=_as_arrow(pool))
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def positions(values: Any, ids: Any) -> np.ndarray:
    """Position of each of ``values`` in ``ids`` (unique), ``-1`` when absent.

    Both sides are looked up as Arrow strings with Arrow's hash kernel: an Arrow-backed
    pandas column is used as it is, a numpy array is converted once (no Python strings).

    Examples
    --------
    >>> positions(pd.Series(["b", "x", "a"], dtype="string"), np.array(["a", "b"])).tolist()
    [1, -1, 0]
    """
    import pyarrow.compute as pc

    found = pc.index_in(_as_arrow(values), value_set=_as_arrow(ids))
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def leading_positions(values: Any, ids: Any) -> np.ndarray:
    """:func:`positions`, at the cost of one comparison when ``values`` start ``ids``.

    An update keeps the run's items first and in order, so the run's ids are usually the
    first ids of the update (and the merged catalog lists the update's ids in order): then
    each value's position is its row. ``ids`` must be unique, as for :func:`positions`.

    Examples
    --------
    >>> leading_positions(np.array(["a", "b"]), np.array(["a", "b", "c"])).tolist()
    [0, 1]
    >>> leading_positions(np.array(["b", "x"]), np.array(["a", "b", "c"])).tolist()
    [1, -1]
    """
    v, pool = _as_arrow(values), _as_arrow(ids)
    if len(v) <= len(pool) and v.equals(pool.slice(0, len(v))):
        return np.arange(len(v), dtype=np.int64)
    return positions(v, pool)


def _as_arrow(values: Any) -> Any:
    """``values`` as one Arrow ``string`` array (no copy for an Arrow array or column).

    The conversion of a read-only numpy array that owns its data (e.g. a result's ids) is
    kept while the array lives (:func:`ccgraph._array_memo.arrow_strings`).
    """
    import pyarrow as pa

    if isinstance(values, np.ndarray):
        return arrow_strings(values)
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else _arrow_of(values)
    if arr is None:
        arr = arrow_strings(np.asarray(values))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string()) if arr.type != pa.string() else arr


def _arrow_of(values: Any) -> Any:
    """The Arrow string array behind a pandas string column (``None`` if not Arrow-backed)."""
    arr = getattr(values, "array", values)
    if not isinstance(getattr(arr, "dtype", None), pd.StringDtype):
        return None
    return getattr(arr, "_pa_array", None)
