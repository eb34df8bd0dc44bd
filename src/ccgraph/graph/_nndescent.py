"""Approximate kNN with pynndescent (NN-descent on a random-projection-forest start).

Private backend of :func:`ccgraph.graph.knn_search`; inputs are trusted (validated there).

pynndescent is numba code: the first call in a fresh process compiles its kernels, once per
metric: 42-52 cpu-s on one core in ``benchmarks/graph.py`` (100-440 s of wall time on the loaded
shared machine; numba's on-disk cache did not remove it). That cost is why
:func:`ccgraph.graph.knn_search` uses the exact backend up to ``AUTO_EXACT_MAX_N`` items.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

__all__ = [
    "EXTRA_NEIGHBORS",
    "EXTRA_NEIGHBORS_BITS",
    "NNDESCENT_DEFAULTS",
    "NNDESCENT_DEFAULTS_BITS",
    "nndescent_knn",
]

logger = logging.getLogger(__name__)

#: Options passed to :class:`pynndescent.NNDescent` for dense metrics unless overridden.
#: Tuned with ``benchmarks/graph.py`` (d=384, k=15; recall@15 against exact search, cpu-s):
#: pynndescent's defaults (16 neighbours and candidates) gave 0.932 at 100k; 40 candidates
#: and 4 extra neighbours 0.960 at 300k (66 cpu-s) but 0.946 at 1M; 48 candidates, 9 extra
#: neighbours and 8 trees 0.971 at 300k (73 cpu-s). ``low_memory=False`` is about 7 % faster.
NNDESCENT_DEFAULTS: dict[str, Any] = {
    "low_memory": False,
    "max_candidates": 48,
    "n_trees": 8,
}

#: The same for packed bit codes (``bit_hamming``): lighter settings already reach recall
#: 0.9999 at 100k 64-bit codes.
NNDESCENT_DEFAULTS_BITS: dict[str, Any] = {"low_memory": False, "max_candidates": 40}

#: Neighbours searched beyond ``k`` (the best ``k`` are kept): a wider heap raises recall.
EXTRA_NEIGHBORS = 9
EXTRA_NEIGHBORS_BITS = 4


def nndescent_knn(
    data: np.ndarray,
    k: int,
    *,
    metric: str,
    seed: int,
    n_jobs: int | None,
    extra_neighbors: int | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate kNN of every row, self excluded, sorted by (distance, index).

    Parameters
    ----------
    data
        ``float32 [n, d]`` (metric ``cosine`` / ``euclidean``) or packed ``uint8 [n, b]``
        (metric ``bit_hamming``).
    k
        Neighbours per row.
    metric
        pynndescent metric name.
    seed
        Integer ``random_state``.
    n_jobs
        numba threads (None = all cores).
    extra_neighbors
        Build the graph with ``k + extra_neighbors`` neighbours and keep the best ``k``: a
        wider search raises recall at a roughly proportional cost (None: 9, or 4 for codes).
    options
        Further :class:`pynndescent.NNDescent` keywords (override ``NNDESCENT_DEFAULTS`` or,
        for ``bit_hamming``, ``NNDESCENT_DEFAULTS_BITS``).
    """
    import pynndescent  # heavy (numba); a core dependency, imported only when used

    bits = metric == "bit_hamming"
    defaults = NNDESCENT_DEFAULTS_BITS if bits else NNDESCENT_DEFAULTS
    if extra_neighbors is None:
        extra_neighbors = EXTRA_NEIGHBORS_BITS if bits else EXTRA_NEIGHBORS
    kwargs = {"compressed": False, "verbose": False, **defaults, **(options or {})}
    n_neighbors = min(data.shape[0], k + 1 + extra_neighbors)
    start = time.perf_counter()
    index = pynndescent.NNDescent(
        data,
        metric=metric,
        n_neighbors=n_neighbors,
        random_state=seed,
        n_jobs=n_jobs,
        **kwargs,
    )
    ind, dist = index.neighbor_graph
    logger.debug(
        "pynndescent %s n=%d took %.1f s", metric, data.shape[0], time.perf_counter() - start
    )
    return _drop_self_and_sort(np.asarray(ind), np.asarray(dist, dtype=np.float32), k)


def _drop_self_and_sort(ind: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop each row's own index, repeats and unfilled (-1) slots; keep ``k`` by distance, index.

    Rows left with fewer than ``k`` valid neighbours are padded with index -1, distance inf.
    """
    n = ind.shape[0]
    rows = np.arange(n)[:, None]
    valid = (ind >= 0) & (ind != rows)
    dist = np.where(valid, np.maximum(dist, 0.0), np.inf).astype(np.float32)
    ind = np.where(valid, ind, np.iinfo(np.int32).max).astype(np.int64)
    by_index = np.lexsort((dist, ind), axis=1)
    ind = np.take_along_axis(ind, by_index, axis=1)
    dist = np.take_along_axis(dist, by_index, axis=1)
    repeat = np.zeros(ind.shape, dtype=bool)
    repeat[:, 1:] = ind[:, 1:] == ind[:, :-1]
    dist[repeat] = np.inf
    order = np.lexsort((ind, dist), axis=1)[:, :k]
    out_i = np.take_along_axis(ind, order, axis=1)
    out_d = np.take_along_axis(dist, order, axis=1)
    out_i[~np.isfinite(out_d)] = -1
    return out_i.astype(np.int32), out_d
