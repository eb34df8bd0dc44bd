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
    from ccgraph.spark.session import materialize, persist

    d = persist(directed(edges))
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
    rng
        Seed of both Leiden runs.

    Returns
    -------
    pyspark.sql.DataFrame
        ``idx, coarse, cluster``: ``coarse`` is the cluster of the coarse graph, ``cluster`` a
        global id of the refined cluster (``coarse`` and the refined label, densely numbered).

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

    from ccgraph.spark.graph import directed
    from ccgraph.spark.session import add_index, materialize

    lp_rounds = check_int("lp_rounds", lp_rounds, low=0)
    seed = derive_seed(rng)
    labels = _label_propagation(edges, nodes, rounds=lp_rounds)
    comm = add_index(labels.select("label").distinct(), column="c")
    lab = materialize(labels.join(comm, "label").select("idx", "c"))
    n_comm = comm.count()
    a = lab.select(F.col("idx").alias("u"), F.col("c").alias("cu"))
    b = lab.select(F.col("idx").alias("v"), F.col("c").alias("cv"))
    cg = (
        edges.join(a, "u").join(b, "v")
        .select(F.least("cu", "cv").alias("x"), F.greatest("cu", "cv").alias("y"), "weight")
        .groupBy("x", "y").agg(F.sum("weight").alias("w"))
        .toPandas()
    )  # fmt: skip
    x, y, w = cg["x"].to_numpy(), cg["y"].to_numpy(), cg["w"].to_numpy(np.float64)
    off = x != y
    adj = sp.csr_matrix(
        (np.concatenate([w[off], w[off], w[~off]]),
         (np.concatenate([x[off], y[off], x[~off]]), np.concatenate([y[off], x[off], y[~off]]))),
        shape=(n_comm, n_comm),
    )  # fmt: skip
    coarse = _leiden_igraph(adj, resolution=resolution, seed=seed)
    spark = edges.sparkSession
    cmap = spark.createDataFrame(
        pd.DataFrame({"c": np.arange(n_comm, dtype=np.int64), "coarse": coarse.astype(np.int64)})
    )
    member = materialize(lab.join(cmap, "c").select("idx", "coarse"))
    strength = directed(edges).groupBy(F.col("src").alias("idx")).agg(F.sum("w").alias("deg"))
    two_m = float(strength.agg(F.sum("deg")).first()[0] or 1.0)
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
        e = pdf[~is_node]
        r = np.searchsorted(nodes_, e["u"].to_numpy(np.int64))
        c = np.searchsorted(nodes_, e["v"].to_numpy(np.int64))
        w = e["weight"].to_numpy(np.float64)
        m = sp.csr_matrix((np.r_[w, w], (np.r_[r, c], np.r_[c, r])),
                          shape=(len(nodes_), len(nodes_)))  # fmt: skip
        sub = _leiden_igraph(m, resolution=resolution / two_m, seed=seed, node_weights=deg)
        return pd.DataFrame({"coarse": pdf["coarse"].iloc[0], "idx": nodes_, "sub": sub})

    refined = (
        inside.unionByName(node_rows)
        .groupBy("coarse")
        .applyInPandas(refine, "coarse long, idx long, sub long")
    )
    keys = add_index(refined.select("coarse", "sub").distinct().orderBy("coarse", "sub"),
                     column="cluster")  # fmt: skip
    return refined.join(keys, ["coarse", "sub"]).select("idx", "coarse", "cluster")


def _leiden_igraph(
    adj: Any, *, resolution: float, seed: int, node_weights: np.ndarray | None = None
) -> np.ndarray:
    """Igraph Leiden on an aggregated graph (diagonal = internal weight, kept as loops).

    Without ``node_weights``: modularity. With them: CPM with node weights ``n_i`` and
    resolution ``gamma``, ``sum_ij (A_ij - gamma n_i n_j) delta(c_i, c_j)``; with ``n_i`` the
    node's strength in the whole graph and ``gamma = gamma_mod / 2m`` this is the whole graph's
    modularity restricted to a subgraph, so refining each coarse cluster on its own optimises
    the global objective. :func:`ccgraph.cluster.leiden` supports neither loops nor node
    weights (a kNN graph needs neither).
    """
    import random

    import igraph as ig

    from ccgraph.graph.convert import to_igraph

    if adj.shape[0] == 1 or adj.nnz == 0:
        return np.arange(adj.shape[0], dtype=np.int64)
    g = to_igraph(adj, loops=True)
    kwargs: dict[str, Any] = {"objective_function": "modularity"}
    if node_weights is not None:
        kwargs = {"objective_function": "cpm", "node_weights": node_weights.tolist()}
    ig.set_random_number_generator(random.Random(seed))
    try:
        part = g.community_leiden(weights="weight", resolution=resolution, beta=0.01,
                                  n_iterations=-1, **kwargs)  # fmt: skip
    finally:
        ig.set_random_number_generator(random)
    return np.asarray(part.membership, dtype=np.int64)
