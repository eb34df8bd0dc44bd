"""Leiden over a Spark-built edge list: on one node with a memory check, or coarsen-then-refine.

Leiden is sequential and needs the whole graph, so :func:`leiden_on_driver` collects the edge
list (the one item-sized collect of the Spark backend) and runs the single-machine
:func:`ccgraph.cluster.leiden` on it, refusing up front when igraph's peak would not fit.
:func:`coarsen_refine` is for graphs beyond one node.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from ccgraph._memory import available_bytes
from ccgraph._random import RngLike, derive_seed
from ccgraph._validation import check_int
from ccgraph.containers import KnnGraph, Partition, as_ids
from ccgraph.exceptions import MemoryBudgetError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "LEIDEN_BYTES_PER_EDGE",
    "coarsen_refine",
    "collect_graph",
    "leiden_memory_bytes",
    "leiden_on_driver",
]

log = logging.getLogger(__name__)

#: Peak bytes per undirected edge of igraph Leiden, measured on this machine kind (DESIGN.md).
LEIDEN_BYTES_PER_EDGE = {"unweighted": 43, "weighted": 104}
#: Per-node bytes (membership arrays, ids) and the fixed interpreter + libraries.
_NODE_BYTES = 120
_BASELINE_BYTES = 350 * 2**20


def leiden_memory_bytes(n_nodes: int, n_edges: int, *, weighted: bool = True) -> int:
    """Estimated driver peak for collecting the edges and running igraph Leiden.

    ``edges * (104 | 43) + edges * 24`` (the collected ``u, v, w`` columns and the CSR) ``+
    nodes * 120 + 350 MB``.

    Examples
    --------
    >>> leiden_memory_bytes(1_000_000, 10_000_000) / 2**30 > 1
    True
    """
    per_edge = LEIDEN_BYTES_PER_EDGE["weighted" if weighted else "unweighted"] + 24
    return int(n_edges * per_edge + n_nodes * _NODE_BYTES + _BASELINE_BYTES)


def collect_graph(
    edges: DataFrame,
    ids: Any,
    *,
    memory_limit_bytes: int | None = None,
    weighted: bool = True,
) -> KnnGraph:
    """Collect an undirected edge list ``u, v, weight`` into a :class:`KnnGraph` on the driver.

    Raises
    ------
    MemoryBudgetError
        When :func:`leiden_memory_bytes` exceeds ``memory_limit_bytes`` (default: the memory
        available now), before anything is collected.
    """
    from ccgraph.spark.graph import edges_to_csr

    ids = as_ids(ids)
    n = len(ids)
    m = edges.count()
    need = leiden_memory_bytes(n, m, weighted=weighted)
    limit = memory_limit_bytes if memory_limit_bytes is not None else available_bytes()
    if need > limit:
        raise MemoryBudgetError(
            f"Leiden on the driver needs about {need / 2**30:.1f} GiB for {m:,} edges and "
            f"{n:,} nodes but {limit / 2**30:.1f} GiB is available; give the driver more "
            "memory (spark.driver.memory / a larger driver node), lower `graph.k`, or use "
            "ccgraph.spark.cluster.coarsen_refine (clusters of communities, refined per cluster)"
        )
    adj = edges_to_csr(edges, n)
    return KnnGraph(adj, ids, {"n_edges": int(m), "source": "spark"})


def leiden_on_driver(
    edges: DataFrame,
    ids: Any,
    *,
    resolution: float = 1.0,
    objective: str = "modularity",
    backend: str = "igraph",
    n_iterations: int = -1,
    rng: RngLike = None,
    memory_limit_bytes: int | None = None,
) -> Partition:
    """Single-node Leiden over a Spark edge list: exactly :func:`ccgraph.cluster.leiden`.

    Parameters
    ----------
    edges
        Undirected ``u, v, weight`` with ``u, v`` row positions in ``ids``.
    ids
        Item ids in row order (``idx`` order).
    resolution, objective, backend, n_iterations, rng
        As in :func:`ccgraph.cluster.leiden`.
    memory_limit_bytes
        Budget for the check in :func:`collect_graph`.

    Returns
    -------
    Partition
        The same partition that :func:`ccgraph.cluster.leiden` gives on the same edges with the
        same ``rng`` (the collected CSR is canonical: rows in ``idx`` order, sorted columns).
    """
    from ccgraph.cluster import leiden

    graph = collect_graph(edges, ids, memory_limit_bytes=memory_limit_bytes)
    return leiden(graph, resolution=resolution, objective=objective, backend=backend,
                  n_iterations=n_iterations, rng=rng)  # fmt: skip


def _label_propagation(edges: DataFrame, nodes: DataFrame, *, rounds: int) -> DataFrame:
    """Weighted label propagation for a fixed number of synchronous rounds.

    Weighted label propagation: each node takes the label of largest total edge weight
    among its neighbours (ties: smallest label), for a fixed number of synchronous rounds.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from ccgraph.spark.graph import directed
    from ccgraph.spark.session import materialize

    d = materialize(directed(edges))
    labels = materialize(nodes.select("idx", F.col("idx").alias("label")))
    for _ in range(rounds):
        votes = (
            d.join(labels.withColumnRenamed("idx", "src"), "src")
            .groupBy(F.col("dst").alias("idx"), "label")
            .agg(F.sum("w").alias("score"))
        )
        w = Window.partitionBy("idx").orderBy(F.desc("score"), F.col("label"))
        best = (
            votes.withColumn("r", F.row_number().over(w))
            .where("r = 1")
            .select("idx", F.col("label").alias("new"))
        )
        labels = materialize(
            labels.join(best, "idx", "left").select(
                "idx", F.coalesce("new", "label").alias("label")
            )
        )
    return labels


def coarsen_refine(
    edges: DataFrame,
    nodes: DataFrame,
    *,
    resolution: float = 1.0,
    lp_rounds: int = 5,
    move_rounds: int = 2,
    rng: RngLike = None,
) -> DataFrame:
    """Clusters of a graph too big for one node: coarsen in Spark, Leiden, refine per cluster.

    Parameters
    ----------
    edges
        Undirected ``u, v, weight``.
    nodes
        ``idx`` of every node.
    resolution
        Modularity resolution of both Leiden runs.
    lp_rounds
        Label-propagation rounds of the coarsening.
    move_rounds
        Rounds of node-level modularity moves after the refinement (0: none).
    rng
        Seed of both Leiden runs.

    Returns
    -------
    pyspark.sql.DataFrame
        ``idx, coarse, cluster``: ``coarse`` is the cluster of the coarse graph (-1 for nodes
        without edges), ``cluster`` the final cluster (densely numbered ``0 ..`` in the order
        of the refined clusters' ``(coarse, label)``).

    Notes
    -----
    1. Label propagation (Raghavan et al.) in Spark gives small dense communities.
    2. The community graph (one node per community, edge weights summed; its self-loops keep
       the internal weight) is small enough for the driver: Leiden (modularity) on it gives
       coarse clusters. Modularity of a partition of the community graph equals the modularity
       of the induced partition of the full graph, so this is Leiden's own aggregation step with
       label propagation as the first local-moving phase.
    3. Each coarse cluster's induced subgraph is re-clustered with Leiden in one
       ``applyInPandas`` group (one node's memory per coarse cluster, not per graph), which may
       split communities that label propagation merged wrongly.
    4. ``move_rounds`` rounds of single-node moves to the neighbouring cluster of largest
       modularity gain (:func:`ccgraph.spark._moves.local_moves`) move the nodes that label
       propagation put in the wrong coarse cluster (measured on 2,000 clustered vectors:
       modularity 0.548 -> 0.59, global Leiden 0.60).

    The result is not the partition of a global Leiden run; the benchmark reports the
    modularity of both on the same graph.

    References
    ----------
    .. [1] U. N. Raghavan, R. Albert, S. Kumara, "Near linear time algorithm to detect community
       structures in large-scale networks", Phys. Rev. E 76, 2007.
    .. [2] V. A. Traag, L. Waltman, N. J. van Eck, "From Louvain to Leiden: guaranteeing
       well-connected communities", Sci. Rep. 9, 2019.
    """
    import pandas as pd
    import scipy.sparse as sp
    from pyspark.sql import functions as F

    from ccgraph.spark._moves import local_moves
    from ccgraph.spark.graph import directed
    from ccgraph.spark.session import add_index, agg_row, materialize

    lp_rounds = check_int("lp_rounds", lp_rounds, low=0)
    move_rounds = check_int("move_rounds", move_rounds, low=0)
    seed = derive_seed(rng)
    labels = _label_propagation(edges, nodes, rounds=lp_rounds)
    a = labels.select(F.col("idx").alias("u"), F.col("label").alias("cu"))
    b = labels.select(F.col("idx").alias("v"), F.col("label").alias("cv"))
    cg: pd.DataFrame = (
        edges.join(a, "u").join(b, "v")
        .select(F.least("cu", "cv").alias("x"), F.greatest("cu", "cv").alias("y"), "weight")
        .groupBy("x", "y").agg(F.sum("weight").alias("w"))
        .toPandas()
    )  # fmt: skip
    cg = cg.sort_values(["x", "y"])
    # Communities are numbered by their label (a node idx), not in the order Spark returns
    # them, so the coarse graph, and Leiden on it, do not depend on the partitioning.
    comm, pos = np.unique(np.r_[cg["x"].to_numpy(), cg["y"].to_numpy()], return_inverse=True)
    n_comm = len(comm)
    x, y = pos[: len(cg)], pos[len(cg) :]
    w = cg["w"].to_numpy(np.float64)
    off = x != y
    adj = sp.csr_matrix(
        (np.concatenate([w[off], w[off], w[~off]]),
         (np.concatenate([x[off], y[off], x[~off]]), np.concatenate([y[off], x[off], y[~off]]))),
        shape=(n_comm, n_comm),
    )  # fmt: skip
    adj.sum_duplicates()
    adj.sort_indices()
    coarse = _leiden_igraph(adj, resolution=resolution, seed=seed)
    spark = edges.sparkSession
    cmap = spark.createDataFrame(
        pd.DataFrame({"label": comm.astype(np.int64), "coarse": coarse.astype(np.int64)})
    )
    # nodes without edges belong to no community of the coarse graph: coarse cluster -1,
    # where the refinement leaves each on its own
    member = materialize(
        labels.join(cmap, "label", "left").select(
            "idx", F.coalesce("coarse", F.lit(-1).cast("long")).alias("coarse")
        )
    )
    strength = materialize(
        directed(edges).groupBy(F.col("src").alias("idx")).agg(F.sum("w").alias("deg"))
    )
    two_m = float(agg_row(strength.agg(F.sum("deg")))[0] or 1.0)
    inside = (
        edges.join(member.select(F.col("idx").alias("u"), "coarse"), "u")
        .join(member.select(F.col("idx").alias("v"), F.col("coarse").alias("cv")), "v")
        .where(F.col("coarse") == F.col("cv"))
        .select("coarse", "u", F.col("v").cast("long"), F.col("weight").cast("double"),
                F.lit(None).cast("double").alias("deg"))
    )  # fmt: skip
    node_rows = member.join(strength, "idx", "left").select(
        "coarse", F.col("idx").alias("u"), F.lit(None).cast("long").alias("v"),
        F.lit(None).cast("double").alias("weight"), F.coalesce("deg", F.lit(0.0)).alias("deg"),
    )  # fmt: skip

    def refine(pdf: pd.DataFrame) -> pd.DataFrame:
        is_node = pdf["v"].isna()
        nodes_ = pdf.loc[is_node, "u"].to_numpy(np.int64)
        deg = pdf.loc[is_node, "deg"].to_numpy(np.float64)
        order = np.argsort(nodes_)
        nodes_, deg = nodes_[order], deg[order]
        e = pdf[~is_node].sort_values(["u", "v"])
        r = np.searchsorted(nodes_, e["u"].to_numpy(np.int64))
        c = np.searchsorted(nodes_, e["v"].to_numpy(np.int64))
        w = e["weight"].to_numpy(np.float64)
        m = sp.csr_matrix((np.r_[w, w], (np.r_[r, c], np.r_[c, r])),
                          shape=(len(nodes_), len(nodes_)))  # fmt: skip
        m.sum_duplicates()
        m.sort_indices()
        sub = _leiden_igraph(m, resolution=resolution / two_m, seed=seed, node_weights=deg)
        return pd.DataFrame({"coarse": pdf["coarse"].iloc[0], "idx": nodes_, "sub": sub})

    refined = (
        inside.unionByName(node_rows)
        .groupBy("coarse")
        .applyInPandas(refine, "coarse long, idx long, sub long")
    )
    keys = add_index(refined.select("coarse", "sub").distinct().orderBy("coarse", "sub"),
                     column="cluster")  # fmt: skip
    out = materialize(refined.join(keys, ["coarse", "sub"]).select("idx", "coarse", "cluster"))
    if move_rounds == 0:
        return out
    moved = local_moves(materialize(directed(edges)), out.select("idx", "cluster"), strength,
                        two_m=two_m, resolution=resolution, rounds=move_rounds)  # fmt: skip
    dense = add_index(moved.select(F.col("cluster").alias("old")).distinct().orderBy("old"),
                      column="cluster")  # fmt: skip
    return (
        out.select("idx", "coarse")
        .join(moved.withColumnRenamed("cluster", "old"), "idx")
        .join(dense, "old")
        .select("idx", "coarse", "cluster")
    )


def _leiden_igraph(
    adj: Any, *, resolution: float, seed: int, node_weights: np.ndarray | None = None
) -> np.ndarray:
    """Igraph Leiden on an aggregated graph (diagonal = a community's internal weight).

    Both cases run CPM with explicit node weights ``n_i`` on the graph without its loops:
    ``sum_ij (A_ij - gamma n_i n_j) delta(c_i, c_j)``. Without ``node_weights``: ``n_i`` is the
    node's strength with its loop counted twice (``sum_j A_ij + A_ii``) and ``gamma =
    resolution / sum_i n_i``, which is modularity at that resolution (the loops add the same
    constant to every partition). With them: ``resolution`` is ``gamma`` itself; with ``n_i``
    the node's strength in the whole graph and ``gamma = gamma_mod / 2m`` this is the whole
    graph's modularity restricted to a subgraph, so refining each coarse cluster on its own
    optimises the global objective.

    The loops are left out because igraph's Leiden mishandles them: on an aggregated graph
    with loops its modularity objective ended with a partition of lower modularity than the
    singletons it started from (0.39 vs 0.55, python-igraph 0.11). :func:`ccgraph.cluster.leiden`
    supports neither loops nor node weights (a kNN graph needs neither).
    """
    import random

    import igraph as ig
    import scipy.sparse as sp

    from ccgraph._hard_stop import stop_at_once
    from ccgraph.graph.convert import to_igraph

    adj = sp.csr_matrix(adj, dtype=np.float64)
    diag = adj.diagonal()
    if node_weights is None:
        node_weights = np.asarray(adj.sum(axis=1)).ravel() + diag
        total = float(node_weights.sum())
        resolution = resolution / total if total > 0 else resolution
    off = (adj - sp.diags(diag)).tocsr()
    off.eliminate_zeros()
    if adj.shape[0] == 1 or off.nnz == 0:
        return np.arange(adj.shape[0], dtype=np.int64)
    g = to_igraph(off)
    ig.set_random_number_generator(random.Random(seed))
    try:
        with stop_at_once(off.nnz):  # the call holds the GIL (Ctrl-C would wait)
            part = g.community_leiden(
                objective_function="cpm",
                weights="weight",
                node_weights=np.asarray(node_weights, np.float64).tolist(),
                resolution=resolution,
                beta=0.01,
                n_iterations=-1,
            )
    finally:
        ig.set_random_number_generator(random)
    return np.asarray(part.membership, dtype=np.int64)
