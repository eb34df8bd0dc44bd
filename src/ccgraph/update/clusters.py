"""Clusters after an update: Leiden from the previous partition, IDs kept, new IDs minted.

Every level starts from the run's clusters; a new item starts as its own cluster (or, with
``new_items="majority"``, in the cluster holding most of its edge weight to old items, which
makes a batch less likely to form a new cluster of its own). Two strategies:

``warm``
    igraph's Leiden on the whole graph from that start (about a second per level at 100k
    items); items anywhere may move if that improves the objective.
``local``
    Only items within ``hops`` edges of a change (new items, items whose edges changed) may
    move; every other item is fixed in its old cluster. With ``refine="move"`` (modularity,
    ``rb``, CPM) the free items are moved by Leiden's fast local moving and then as groups
    (:func:`ccgraph.update.local_move.refine_local`), in time proportional to their edges.
    With ``refine="leidenalg"`` (or another objective), leidenalg runs with
    ``is_membership_fixed``; for modularity-type objectives the fixed items of each cluster
    are first collapsed into one node (plus one partner node carrying the cluster's internal
    weight, so every cluster keeps its total strength and the modularity of any partition
    that keeps the fixed items together is unchanged), so it runs on
    ``|free| + 2 |clusters|`` nodes instead of the whole graph.

Then :func:`ccgraph.cluster.stable_ids.stabilize_aligned` gives every cluster the old ID it
overlaps most and mints fresh IDs for the rest (above the run's ``next_id``, so vanished IDs
are never reused).
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
    if sp.isspmatrix_csr(adjacency) and adjacency.shape == (len(mask), len(mask)) and hops >= 0:
        from ccgraph.update._move_kernels import reach

        reach(adjacency.indptr, adjacency.indices, adjacency.data, mask, int(hops))
        return mask
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


def collapse_fixed(
    adjacency: sp.csr_matrix, init: np.ndarray, fixed: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Collapse the fixed items of each ``init`` label into one node (see :func:`local_leiden`).

    Returns the collapsed symmetric adjacency (free items first, then one node per label of
    the fixed items, then the partner nodes), each item's node, and the nodes' initial labels
    and fixed flags.

    Examples
    --------
    >>> a = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 2], [0, 0, 2, 0.]]))
    >>> agg, node, init, fixed = collapse_fixed(a, np.array([0, 0, 0, 1]),
    ...                                         np.array([True, True, False, False]))
    >>> node.tolist(), init.tolist(), fixed.tolist()
    ([2, 2, 0, 1], [0, 1, 0, 0], [False, False, True, True])
    >>> agg.toarray().tolist()
    [[0.0, 2.0, 2.0, 0.0], [2.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]]
    """
    n = adjacency.shape[0]
    free = ~np.asarray(fixed, dtype=bool)
    n_free = int(free.sum())
    labels, code = np.unique(init[~free], return_inverse=True)
    node = np.empty(n, dtype=np.int64)
    node[free] = np.arange(n_free)
    node[~free] = n_free + code.ravel()
    n_agg = n_free + len(labels)
    p = sp.csr_matrix((np.ones(n), (np.arange(n), node)), shape=(n, n_agg))
    agg = sp.csr_matrix(p.T @ sp.csr_matrix(adjacency, dtype=np.float64) @ p)
    inside = agg.diagonal()[n_free:] / 2.0
    agg.setdiag(0)
    agg.eliminate_zeros()
    has = np.flatnonzero(inside > 0)
    size = n_agg + len(has)
    partner = n_agg + np.arange(len(has))
    rows = np.concatenate([n_free + has, partner])
    cols = np.concatenate([partner, n_free + has])
    extra = sp.csr_matrix(
        (np.concatenate([inside[has], inside[has]]), (rows, cols)), shape=(size, size)
    )
    agg.resize((size, size))
    full = sp.csr_matrix(agg + extra)
    full.sort_indices()
    agg_init = np.concatenate([init[free], labels, labels[has]])
    agg_fixed = np.r_[np.zeros(n_free, bool), np.ones(len(labels) + len(has), bool)]
    return full, node, agg_init, agg_fixed


def local_leiden(
    adjacency: sp.csr_matrix,
    init: np.ndarray,
    fixed: np.ndarray,
    *,
    resolution: float,
    objective: str,
    n_iterations: int,
    rng: RngLike,
) -> np.ndarray:
    """Leiden that moves only the free items, on the graph with fixed items collapsed.

    Returns a membership of every item: fixed items keep their ``init`` grouping (labels are
    the backend's; map them to IDs with :func:`ccgraph.cluster.stabilize`).

    Notes
    -----
    Fixed items sharing the label ``c`` become one node ``s_c``; with ``A`` the adjacency and
    ``P`` the item-to-node indicator, the collapsed adjacency is ``P^T A P``. Its diagonal
    ``2 W_c`` (twice the weight inside the collapsed set) moves to an edge of weight ``W_c``
    between ``s_c`` and a fixed partner node, because the graph converter drops self-loops;
    strengths, the total weight and the weight inside every cluster are those of the full
    graph, so modularity (any resolution) is the same function of the free items' labels.
    """
    from ccgraph.cluster import leiden

    if objective not in ("modularity", "rb"):
        part = leiden(
            adjacency,
            resolution=resolution,
            objective=objective,
            backend="leidenalg",
            n_iterations=n_iterations,
            rng=rng,
            initial_membership=init,
            fixed=fixed,
        )
        return part.membership
    full, node, agg_init, agg_fixed = collapse_fixed(adjacency, init, fixed)
    part = leiden(
        full,
        resolution=resolution,
        objective=objective,
        backend="leidenalg",
        n_iterations=n_iterations,
        rng=rng,
        initial_membership=agg_init,
        fixed=agg_fixed,
    )
    return part.membership[node]


def _quality(graph: KnnGraph, membership: np.ndarray, objective: str, res: float) -> float:
    from ccgraph.cluster import cpm_quality, modularity

    if objective in ("modularity", "rb"):
        return modularity(graph, membership, resolution=res)
    if objective == "cpm":
        return cpm_quality(graph, membership, resolution=res)
    return float("nan")


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
    hops: int = 0,
    new_items: str = "singleton",
    refine: str = "move",
    refine_iterations: int = 1,
    old_rows: np.ndarray | None = None,
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
    new_items
        Start of the items new to the run: ``"singleton"`` (each its own cluster, so a batch
        can form clusters of its own) or ``"majority"`` (:func:`initial_membership`).
    refine
        How the ``local`` strategy moves the free items: ``"move"``
        (:func:`~ccgraph.update.local_move.refine_local`, for modularity, ``rb`` and ``cpm``)
        or ``"leidenalg"`` (:func:`local_leiden`, any objective).
    refine_iterations
        Leiden iterations of ``refine="leidenalg"`` (``-1``: until stable).
    old_rows
        Row of each graph item in ``old_items`` (``-1``: new item); looked up by id if omitted.
    rng
        Seed.

    Returns
    -------
    list of Partition
        One per level, with stable IDs (``params``: ``churn``, ``n_fresh``, ``next_id``, ...).
    dict
        Per-level ``churn``, ``n_fixed``, ``strategy`` and ``refine``.
    """
    from ccgraph.cluster import leiden, recursive_split
    from ccgraph.cluster.stable_ids import stabilize_aligned
    from ccgraph.update._ids import locate
    from ccgraph.update.local_move import MOVE_OBJECTIVES, refine_local

    c = cfg.cluster
    if strategy not in ("warm", "local"):
        raise InputError(f"`strategy` must be 'warm' or 'local'; got {strategy!r}")
    if new_items not in ("singleton", "majority"):
        raise InputError(f"`new_items` must be 'singleton' or 'majority'; got {new_items!r}")
    if refine not in ("move", "leidenalg"):
        raise InputError(f"`refine` must be 'move' or 'leidenalg'; got {refine!r}")
    seed = derive_seed(rng)
    ids = graph.ids
    if old_rows is None:
        old_rows = locate(old_items["id"].astype(str).to_numpy(), ids)
    old_rows = np.asarray(old_rows, dtype=np.int64)
    present = old_rows >= 0
    fixed = None
    if strategy == "local":
        fixed = ~neighbourhood(graph.adjacency, touched, hops)
    use_move = strategy == "local" and refine == "move" and c.objective in MOVE_OBJECTIVES
    levels: list[Partition] = []
    info: dict[str, Any] = {
        "strategy": strategy,
        "refine": ("move" if use_move else "leidenalg") if strategy == "local" else None,
        "churn": [],
        "n_fixed": 0,
        "refine_iterations": refine_iterations if strategy == "local" else None,
    }
    for i, (res, next_id) in enumerate(zip(resolutions, next_ids, strict=True)):
        col = f"cluster_l{i}"
        if col not in old_items.columns:
            raise InputError(f"the run's items table has no {col!r} column")
        prior = old_items[col].to_numpy(np.int64)
        known = np.full(len(ids), -1, dtype=np.int64)
        known[present] = prior[old_rows[present]]
        if new_items == "majority":
            init = initial_membership(graph.adjacency, known)
        else:
            init = known.copy()
            fresh = init < 0
            init[fresh] = int(init.max(initial=-1)) + 1 + np.arange(int(fresh.sum()))
        if strategy == "local":
            assert fixed is not None
            fixed_i = fixed & (known >= 0)
            refine_fn = refine_local if use_move else local_leiden
            kwargs = {} if use_move else {"n_iterations": refine_iterations}
            mem = refine_fn(
                graph.adjacency,
                init,
                fixed_i,
                resolution=res,
                objective=c.objective,
                rng=seed,
                **kwargs,
            )
            part = Partition(mem, ids, _quality(graph, mem, c.objective, res), {"resolution": res})
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
        stable = stabilize_aligned(part, known, min_overlap=c.min_overlap, next_id=next_id)
        params = {**dict(stable.params), "resolution": float(res), "level": i}
        levels.append(Partition(stable.membership, stable.ids, stable.quality, params))
        info["churn"].append(float(stable.params.get("churn", float("nan"))))
    return levels, info
