"""Clusters after an update: Leiden from the previous partition, IDs kept, new IDs minted.

Every level starts from the run's clusters; a new item starts in the cluster that holds most of
its edge weight to old items (a singleton when it has no old neighbour). Two strategies:

``warm``
    igraph's Leiden on the whole graph from that start (about a second per level at 100k
    items); items anywhere may move if that improves the objective.
``local``
    leidenalg with every item farther than ``hops`` edges from a changed item fixed
    (``is_membership_fixed``): only the neighbourhood of the change is refined.

Then :func:`ccgraph.cluster.stabilize` gives every cluster the old ID it overlaps most and mints
fresh IDs (above the run's ``next_id``, so vanished IDs are never reused) for the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._random import RngLike, derive_seed
from ccgraph.config import Config
from ccgraph.containers import KnnGraph, Partition
from ccgraph.exceptions import InputError

__all__ = ["initial_membership", "neighbourhood", "update_levels"]

logger = logging.getLogger(__name__)


def initial_membership(adjacency: sp.csr_matrix, known: np.ndarray) -> np.ndarray:
    """Old labels where known (``>= 0``); unknown items take their neighbours' weighted majority.

    Items are labelled in waves (an item whose neighbours are all new waits until some are
    labelled); items never reached get fresh singleton labels above the old maximum. Ties go
    to the smaller label.

    Examples
    --------
    >>> a = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 1, 0.]]))
    >>> initial_membership(a, np.array([-1, 5, 7, -1])).tolist()
    [5, 5, 7, 7]
    """
    labels = np.asarray(known, dtype=np.int64).copy()
    coo = adjacency.tocoo()
    for _ in range(64):
        todo = labels < 0
        if not todo.any():
            break
        use = todo[coo.row] & (labels[coo.col] >= 0)
        if not use.any():
            break
        frame = pd.DataFrame(
            {"r": coo.row[use], "c": labels[coo.col[use]], "w": coo.data[use].astype(np.float64)}
        )
        votes = frame.groupby(["r", "c"], sort=True, as_index=False)["w"].sum()
        votes = votes.sort_values(["r", "w", "c"], ascending=[True, False, True], kind="stable")
        best = votes.drop_duplicates("r")
        labels[best["r"].to_numpy()] = best["c"].to_numpy()
    todo = labels < 0
    start = int(labels.max(initial=-1)) + 1
    labels[todo] = start + np.arange(int(todo.sum()))
    return labels


def neighbourhood(adjacency: sp.csr_matrix, seeds: np.ndarray, hops: int) -> np.ndarray:
    """Boolean mask of the nodes within ``hops`` edges of a ``seeds`` node (seeds included)."""
    mask = np.asarray(seeds, dtype=bool).copy()
    pattern = adjacency.astype(bool)
    frontier = mask.copy()
    for _ in range(hops):
        reached = pattern.T @ frontier if frontier.any() else frontier
        reached = np.asarray(reached, dtype=bool).ravel() & ~mask
        if not reached.any():
            break
        mask |= reached
        frontier = reached
    return mask


def update_levels(
    graph: KnnGraph,
    old_items: pd.DataFrame,
    cfg: Config,
    *,
    touched: np.ndarray,
    resolutions: Sequence[float],
    next_ids: Sequence[int],
    split_levels: Sequence[bool],
    strategy: str = "warm",
    hops: int = 2,
    rng: RngLike = None,
) -> tuple[list[Partition], dict[str, Any]]:
    """Every level of the run, refined from its previous clusters on the updated graph.

    Parameters
    ----------
    graph
        The graph after the update.
    old_items
        The run's ``items`` table (``id`` and ``cluster_l0`` .. ``cluster_lN``).
    cfg
        The run's config (``cluster`` section).
    touched
        Boolean mask over ``graph`` rows: new items and items whose edges changed.
    resolutions, next_ids, split_levels
        Per level: the Leiden resolution, the smallest ID it may mint, whether the run split
        it with ``recursive_split``.
    strategy, hops
        ``"warm"`` or ``"local"`` (see the module docstring).
    rng
        Seed.

    Returns
    -------
    list of Partition
        One per level, with stable IDs (``params``: ``churn``, ``n_fresh``, ``next_id``, ...).
    dict
        Per-level ``churn``, ``n_fixed`` and ``strategy``.
    """
    from ccgraph.cluster import leiden, recursive_split, stabilize

    c = cfg.cluster
    if strategy not in ("warm", "local"):
        raise InputError(f"`strategy` must be 'warm' or 'local'; got {strategy!r}")
    seed = derive_seed(rng)
    ids = graph.ids
    old = old_items.set_index(old_items["id"].astype(str))
    fixed = None
    if strategy == "local":
        fixed = ~neighbourhood(graph.adjacency, touched, hops)
    levels: list[Partition] = []
    info: dict[str, Any] = {"strategy": strategy, "churn": [], "n_fixed": 0}
    for i, (res, next_id) in enumerate(zip(resolutions, next_ids, strict=True)):
        col = f"cluster_l{i}"
        if col not in old.columns:
            raise InputError(f"the run's items table has no {col!r} column")
        prior = old[col].astype(np.int64)
        known = prior.reindex(pd.Index(ids)).fillna(-1).to_numpy(np.int64)
        init = initial_membership(graph.adjacency, known)
        if strategy == "local":
            assert fixed is not None
            fixed_i = fixed & (known >= 0)
            part = leiden(
                graph,
                resolution=res,
                objective=c.objective,
                backend="leidenalg",
                n_iterations=c.n_iterations,
                rng=seed,
                initial_membership=init,
                fixed=fixed_i,
            )
            info["n_fixed"] = int(fixed_i.sum())
        else:
            part = leiden(
                graph,
                resolution=res,
                objective=c.objective,
                backend=c.backend,
                n_iterations=c.n_iterations,
                rng=seed,
                initial_membership=init,
            )
        if split_levels[i] and c.max_cluster_size:
            part = recursive_split(graph, part, max_cluster_size=c.max_cluster_size, rng=seed)
        stable = stabilize(
            part, prior[prior.index.isin(ids)], min_overlap=c.min_overlap, next_id=next_id
        )
        params = {**dict(stable.params), "resolution": float(res), "level": i}
        levels.append(Partition(stable.membership, stable.ids, stable.quality, params))
        info["churn"].append(float(stable.params.get("churn", float("nan"))))
    return levels, info
