"""Several clusterings of one graph: resolution levels, a sweep table, recursive splits.

Levels are written as ``cluster_l0`` (coarsest) .. ``cluster_lN``; :func:`choose_default_level`
picks the one for the ``cluster`` column.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ccgraph._random import RngLike, derive_seed
from ccgraph._validation import check_float, check_int
from ccgraph.cluster._common import as_knn_graph, relabel_by_size
from ccgraph.cluster.leiden import leiden, shared_igraph
from ccgraph.cluster.metrics import modularity
from ccgraph.containers import KnnGraph, Partition
from ccgraph.exceptions import ParameterError

__all__ = ["choose_default_level", "leiden_levels", "recursive_split", "resolution_sweep"]

logger = logging.getLogger(__name__)


def _check_resolutions(resolutions: Sequence[float]) -> list[float]:
    if isinstance(resolutions, np.ndarray) and resolutions.ndim == 1:
        resolutions = resolutions.tolist()
    if isinstance(resolutions, (str, bytes)) or not isinstance(resolutions, Sequence):
        raise ParameterError(f"`resolutions` must be a sequence of floats; got {resolutions!r}")
    if len(resolutions) == 0:
        raise ParameterError("`resolutions` must hold at least one value; got an empty sequence")
    return [
        check_float(f"resolutions[{i}]", r, low=0.0, low_inclusive=False)
        for i, r in enumerate(resolutions)
    ]


def leiden_levels(
    graph: KnnGraph | Any,
    *,
    resolutions: Sequence[float] = (0.25, 1.0, 4.0),
    objective: str = "modularity",
    backend: str = "igraph",
    n_iterations: int | str = -1,
    rng: RngLike = None,
) -> list[Partition]:
    """Run Leiden once per resolution and return the partitions from coarse to fine.

    Parameters
    ----------
    graph
        ``KnnGraph`` or symmetric sparse adjacency.
    resolutions
        One level per value (> 0).
    objective, backend, n_iterations
        As in :func:`~ccgraph.cluster.leiden.leiden`.
    rng
        Seed; every level uses the same derived integer seed.

    Returns
    -------
    list of Partition
        Sorted by cluster count (ties by resolution); ``params["level"]`` is the position. The
        levels are independent runs, so a fine cluster may straddle two coarse ones; use
        :func:`recursive_split` for a strictly nested refinement.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> a = sp.csr_matrix(np.kron(np.eye(3), np.ones((5, 5)) - np.eye(5)))
    >>> [p.n_clusters for p in leiden_levels(a, resolutions=(1.0, 0.5), rng=0)]
    [3, 3]
    """
    g = as_knn_graph(graph)
    res = _check_resolutions(resolutions)
    seed = derive_seed(rng)
    with shared_igraph(g.adjacency):
        runs = [
            leiden(
                g,
                resolution=r,
                objective=objective,
                backend=backend,
                n_iterations=n_iterations,
                rng=seed,
            )
            for r in res
        ]
    order = sorted(range(len(runs)), key=lambda i: (runs[i].n_clusters, res[i]))
    return [
        Partition(
            runs[i].membership, runs[i].ids, runs[i].quality, {**runs[i].params, "level": level}
        )
        for level, i in enumerate(order)
    ]


def _item_median_size(membership: np.ndarray) -> float:
    sizes = np.bincount(membership)
    return float(np.median(sizes[membership]))


def resolution_sweep(
    graph: KnnGraph | Any,
    resolutions: Sequence[float],
    *,
    objective: str = "modularity",
    backend: str = "igraph",
    n_iterations: int | str = -1,
    rng: RngLike = None,
) -> pd.DataFrame:
    """Tabulate what each resolution gives, to choose the levels.

    Returns
    -------
    pandas.DataFrame
        One row per resolution (in the order given): ``resolution``, ``n_clusters``,
        ``modularity`` (at resolution 1, comparable across rows), ``quality`` (the objective at
        that resolution), ``median_size`` (median over clusters), ``item_median_size`` (size of a
        typical item's cluster), ``largest_share`` (items in the largest cluster) and
        ``singletons`` (clusters of one item).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> a = sp.csr_matrix(np.kron(np.eye(3), np.ones((5, 5)) - np.eye(5)))
    >>> resolution_sweep(a, [1.0], rng=0)["n_clusters"].tolist()
    [3]
    """
    g = as_knn_graph(graph)
    res = _check_resolutions(resolutions)
    seed = derive_seed(rng)
    rows = []
    for r in res:
        p = leiden(
            g,
            resolution=r,
            objective=objective,
            backend=backend,
            n_iterations=n_iterations,
            rng=seed,
        )
        sizes = p.sizes
        rows.append(
            {
                "resolution": r,
                "n_clusters": p.n_clusters,
                "modularity": modularity(g, p.membership),
                "quality": p.quality,
                "median_size": float(np.median(sizes)),
                "item_median_size": _item_median_size(p.membership),
                "largest_share": float(sizes.max() / sizes.sum()),
                "singletons": int(np.sum(sizes == 1)),
            }
        )
    return pd.DataFrame(rows)


def choose_default_level(levels: Sequence[Partition], *, target_size: int = 50) -> int:
    """Index of the level whose typical cluster size is closest to ``target_size``.

    Notes
    -----
    The typical size is the median, over items, of the size of the item's cluster (what a
    person browsing from a random image sees), not the median over clusters: kNN graphs leave
    many singletons and tiny components, which drag the per-cluster median to 1-2 at every
    resolution and would make it useless for choosing. Distance is ``|log(s / target_size)|``
    (a cluster twice too big is as far off as one half too big); a tie goes to the coarser level.

    Examples
    --------
    >>> import numpy as np
    >>> from ccgraph.containers import Partition
    >>> coarse = Partition(np.repeat(np.arange(2), 100), np.arange(200))
    >>> fine = Partition(np.repeat(np.arange(8), 25), np.arange(200))
    >>> choose_default_level([coarse, fine], target_size=30)
    1
    """
    target = check_int("target_size", target_size, low=1)
    if len(levels) == 0:
        raise ParameterError("`levels` must hold at least one Partition; got none")
    typical = np.array([_item_median_size(p.membership) for p in levels])
    distance = np.abs(np.log(typical / target))
    return int(np.argmin(distance))


def recursive_split(
    graph: KnnGraph | Any,
    partition: Partition,
    *,
    max_cluster_size: int,
    resolution: float = 1.0,
    objective: str = "modularity",
    backend: str = "igraph",
    n_iterations: int | str = -1,
    max_depth: int = 8,
    rng: RngLike = None,
) -> Partition:
    """Split every cluster larger than ``max_cluster_size`` by Leiden on its own subgraph.

    Parameters
    ----------
    graph
        The graph ``partition`` was computed on.
    partition
        Clusters to refine.
    max_cluster_size
        Clusters above this size are split, recursively.
    max_depth
        Rounds of splitting at most (each round splits every cluster still too large).
    resolution, objective, backend, n_iterations
        Leiden settings for the sub-runs. A subgraph that Leiden keeps whole is retried at 2x,
        4x and 8x the resolution before being left as it is.
    rng
        Seed; each sub-run uses the same derived integer seed.

    Returns
    -------
    Partition
        A refinement of ``partition`` (every new cluster lies inside one old cluster),
        relabelled by size; ``params`` records ``n_split`` and ``n_oversize`` (clusters still
        above the limit because no split was found).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from ccgraph.containers import Partition
    >>> a = sp.csr_matrix(np.kron(np.eye(4), np.ones((5, 5)) - np.eye(5)))
    >>> whole = Partition(np.zeros(20, dtype=int), np.arange(20))
    >>> recursive_split(a, whole, max_cluster_size=6, rng=0).n_clusters
    4
    """
    g = as_knn_graph(graph, ids=partition.ids, what="recursive_split(graph, partition)")
    limit = check_int("max_cluster_size", max_cluster_size, low=1)
    depth_limit = check_int("max_depth", max_depth, low=1)
    gamma = check_float("resolution", resolution, low=0.0, low_inclusive=False)
    seed = derive_seed(rng)
    mem = partition.membership.copy()
    stuck: set[int] = set()
    n_split = 0
    for _ in range(depth_limit):
        sizes = np.bincount(mem)
        big = [int(c) for c in np.flatnonzero(sizes > limit) if int(c) not in stuck]
        if not big:
            break
        order = np.argsort(mem, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)])
        next_label = len(sizes)
        for c in big:
            idx = order[starts[c] : starts[c + 1]]
            sub_mem = _split_once(g, idx, gamma, objective, backend, n_iterations, seed)
            if sub_mem is None:
                stuck.add(c)
                continue
            n_split += 1
            new = np.where(sub_mem == 0, c, next_label + sub_mem - 1)
            mem[idx] = new
            next_label += int(sub_mem.max())
    n_oversize = int(np.sum(np.bincount(mem) > limit))
    if n_oversize:
        logger.warning(
            "recursive_split: %d clusters remain above max_cluster_size=%d", n_oversize, limit
        )
    params = {
        "algorithm": "recursive_split",
        "base": dict(partition.params),
        "max_cluster_size": limit,
        "resolution": gamma,
        "objective": objective,
        "backend": backend,
        "seed": seed,
        "n_split": n_split,
        "n_oversize": n_oversize,
    }
    out = relabel_by_size(mem)
    return Partition(out, g.ids, modularity(g, out), params)


def _split_once(
    g: KnnGraph,
    idx: np.ndarray,
    gamma: float,
    objective: str,
    backend: str,
    n_iterations: int | str,
    seed: int,
) -> np.ndarray | None:
    """Leiden membership of the subgraph on ``idx`` (>= 2 clusters), or None if it stays whole."""
    sub_adj = g.adjacency[idx][:, idx].tocsr()
    sub = KnnGraph(sub_adj, np.arange(len(idx)))
    for factor in (1.0, 2.0, 4.0, 8.0):
        p = leiden(
            sub,
            resolution=gamma * factor,
            objective=objective,
            backend=backend,
            n_iterations=n_iterations,
            rng=seed,
        )
        if p.n_clusters > 1:
            return p.membership
    return None
