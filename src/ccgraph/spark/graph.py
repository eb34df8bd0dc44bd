"""Graph stages on Spark: mutual rule with repair, edge weights, connected components.

Edges are undirected rows ``u < v`` with ``dist`` and ``weight``; :func:`directed` doubles
them for the propagation joins. Same rules as :func:`ccgraph.graph.build_knn_graph`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ccgraph._validation import check_choice, check_int
from ccgraph.spark.session import agg_row, iterative, materialize

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "MIN_WEIGHT",
    "connected_components",
    "directed",
    "duplicate_groups",
    "edges_to_csr",
    "isolate_pairs",
    "mutual_graph",
]

log = logging.getLogger(__name__)

#: Smallest weight of a kept edge (as in :mod:`ccgraph.graph.weights`).
MIN_WEIGHT = 1e-6


def mutual_graph(
    knn: DataFrame,
    *,
    mutual: bool = True,
    min_degree: int = 1,
    metric: str = "cosine",
    n_bits: int | None = None,
) -> DataFrame:
    """Undirected edge list from kNN lists: mutual pairs plus each item's strongest links.

    Parameters
    ----------
    knn
        ``idx, nbr, dist, rank`` (from :func:`ccgraph.spark.knn.knn_dense`).
    mutual
        Keep a pair only if both items list each other (plus the repair edges); False keeps
        every listed pair.
    min_degree
        Repair: the pairs in which either item lists the other among its ``min_degree``
        nearest are kept too.
    metric
        ``"cosine"`` (weight ``1 - dist``) or ``"hamming"`` (weight ``1 - dist / n_bits``).
    n_bits
        Code length for ``metric="hamming"``.

    Returns
    -------
    pyspark.sql.DataFrame
        ``u long, v long, dist float, weight float`` with ``u < v``; weights clipped to
        ``[MIN_WEIGHT, 1]``.

    Notes
    -----
    ``E = {(i, j) : j in N_k(i) and i in N_k(j)} union {(i, j) : j in N_m(i) or i in N_m(j)}``
    with ``m = min_degree``, and the pair's distance is the smaller of its two listed
    distances: exactly the rule of :func:`ccgraph.graph.build_knn_graph` with
    ``weighting="cosine"``. One ``groupBy`` over the unordered pairs computes it.
    """
    from pyspark.sql import functions as F

    min_degree = check_int("min_degree", min_degree, low=0)
    check_choice("metric", metric, ("cosine", "hamming"))
    rows = knn.where((F.col("nbr") >= 0) & (F.col("nbr") != F.col("idx")))
    forward = F.col("idx") < F.col("nbr")
    pairs = rows.select(
        F.least("idx", "nbr").alias("u"),
        F.greatest("idx", "nbr").alias("v"),
        forward.alias("fwd"),
        F.col("dist").cast("float").alias("dist"),
        (F.col("rank") < min_degree).alias("top"),
    )
    agg = pairs.groupBy("u", "v").agg(
        F.max(F.col("fwd").cast("int")).alias("in_uv"),
        F.max((~F.col("fwd")).cast("int")).alias("in_vu"),
        F.min("dist").alias("dist"),
        F.max(F.col("top").cast("int")).alias("top"),
    )
    if mutual:
        agg = agg.where(((F.col("in_uv") == 1) & (F.col("in_vu") == 1)) | (F.col("top") == 1))
    if metric == "cosine":
        sim = 1.0 - F.col("dist").cast("double")
    else:
        if n_bits is None:
            raise ValueError("metric='hamming' needs n_bits")
        sim = 1.0 - F.col("dist").cast("double") / float(n_bits)
    weight = F.least(F.greatest(sim, F.lit(MIN_WEIGHT)), F.lit(1.0)).cast("float")
    return agg.select("u", "v", "dist", weight.alias("weight"))


def directed(edges: DataFrame, *, weight: str = "weight") -> DataFrame:
    """Both directions of undirected edges: ``src, dst, w`` (double)."""
    from pyspark.sql import functions as F

    w = F.col(weight).cast("double").alias("w")
    a = edges.select(F.col("u").alias("src"), F.col("v").alias("dst"), w)
    b = edges.select(F.col("v").alias("src"), F.col("u").alias("dst"), w)
    return a.unionByName(b)


def connected_components(
    edges: DataFrame,
    nodes: DataFrame,
    *,
    max_iter: int = 100,
) -> DataFrame:
    """Connected components by min-label propagation with pointer jumping.

    Parameters
    ----------
    edges
        ``u, v`` (undirected; either orientation).
    nodes
        ``idx`` of every node (isolated nodes are their own component).
    max_iter
        Round cap (a :class:`RuntimeError` if still changing).

    Returns
    -------
    pyspark.sql.DataFrame
        ``idx long, component long``: the smallest ``idx`` of the node's component.

    Notes
    -----
    Labels are parent pointers (initially ``L(v) = v``). Each round, for every edge ``a - b``,
    offers ``L(a)`` to ``b`` and to ``b``'s parent ``L(b)`` (hooking, as in Shiloach-Vishkin),
    each node keeps the smallest offer, then two pointer jumps ``L(v) <- L(L(v))`` shorten the
    trees. Labels only decrease and always name a node of the same component, the smallest node
    keeps its own label, and a round without change (equal label sums) means labels are
    constant along every edge, hence the component's minimum. Hooking roots and jumping make
    the number of rounds grow roughly with the log of the diameter, not the diameter.
    """
    from pyspark.sql import functions as F

    max_iter = check_int("max_iter", max_iter, low=1)
    both = (
        edges.select(F.col("u").alias("a"), F.col("v").alias("b"))
        .unionByName(edges.select(F.col("v").alias("a"), F.col("u").alias("b")))
        .where(F.col("a") != F.col("b"))
    )
    with iterative(edges.sparkSession):
        return _components(both, nodes, max_iter)


def _components(both: DataFrame, nodes: DataFrame, max_iter: int) -> DataFrame:
    from pyspark.sql import functions as F

    both = materialize(both.repartition("b"))
    labels = materialize(nodes.select(F.col("idx"), F.col("idx").alias("label")))
    total = agg_row(labels.agg(F.sum("label")))[0]
    for it in range(1, max_iter + 1):
        la = labels.select(F.col("idx").alias("a"), F.col("label").alias("la"))
        lb = labels.select(F.col("idx").alias("b"), F.col("label").alias("lb"))
        pairs = both.join(lb, "b").join(la, "a")
        msgs = pairs.select(F.col("b").alias("idx"), "la").unionByName(
            pairs.select(F.col("lb").alias("idx"), "la")  # hook b's root under a's label
        )
        nl = msgs.groupBy("idx").agg(F.min("la").alias("nl"))
        cur = labels.join(nl, "idx", "left").select(
            "idx", F.least("label", F.coalesce("nl", "label")).alias("label")
        )
        for _ in range(2):  # pointer jumping: L(v) <- L(L(v))
            up = cur.select(F.col("idx").alias("label"), F.col("label").alias("l2"))
            cur = cur.join(up, "label").select("idx", F.least("label", "l2").alias("label"))
        labels = materialize(cur)
        new_total = agg_row(labels.agg(F.sum("label")))[0]
        if new_total == total:  # labels only decrease: equal sums mean no change
            log.info("connected components: converged in %d rounds", it)
            return labels.withColumnRenamed("label", "component")
        total = new_total
    raise RuntimeError(f"connected components did not converge in {max_iter} rounds")


def duplicate_groups(
    pairs: DataFrame,
    nodes: DataFrame,
    *,
    priority: str | None = None,
) -> DataFrame:
    """Near-duplicate groups from close pairs, numbered like :func:`ccgraph.graph.find_duplicates`.

    Parameters
    ----------
    pairs
        ``u, v`` of the pairs within the duplicate threshold.
    nodes
        ``idx`` (and the ``priority`` column if given) of every item.
    priority
        Column naming the canonical member (highest wins, null lowest, ties to the lowest
        ``idx``); None: the lowest ``idx``.

    Returns
    -------
    pyspark.sql.DataFrame
        ``idx, duplicate_group, is_canonical``; groups are numbered ``0..`` in the order of
        their first item, singletons included.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from ccgraph.spark.session import add_index

    comp = connected_components(pairs, nodes.select("idx"))
    firsts = comp.select("component").distinct().orderBy("component")
    numbered = add_index(firsts, column="duplicate_group")
    out = comp.join(numbered, "component")
    if priority is None:
        order = [F.col("idx")]
        out = out.join(nodes.select("idx"), "idx")
    else:
        out = out.join(nodes.select("idx", priority), "idx")
        order = [F.desc_nulls_last(priority), F.col("idx")]
    w = Window.partitionBy("duplicate_group").orderBy(*order)
    return out.select(
        "idx",
        "duplicate_group",
        (F.row_number().over(w) == 1).alias("is_canonical"),
    )


def isolate_pairs(pairs: DataFrame, rows: np.ndarray, keys: Sequence[str]) -> DataFrame:
    """Duplicate pairs with some items kept apart, as ``find_duplicates(isolate=...)`` does.

    Parameters
    ----------
    pairs
        ``u, v, dist`` close pairs (``u < v``).
    rows
        ``idx`` of the items to keep apart (few: collected to the driver).
    keys
        One key per entry of ``rows`` (e.g. a file's sha256).

    Returns
    -------
    pyspark.sql.DataFrame
        ``u long, v long, dist int``: the pairs touching none of ``rows`` (two anti-joins)
        plus, within each key, the chain of its items in ``idx`` order (``u < v``,
        ``dist`` 0), so the groups of ``rows`` are exactly their keys.
    """
    from pyspark.sql import functions as F

    from ccgraph.graph.duplicates import _isolated_pairs

    spark = pairs.sparkSession
    order = np.argsort(rows, kind="stable")
    rows = np.asarray(rows, dtype=np.int64)[order]
    none = np.zeros(0, dtype=np.int64)
    a, b, _ = _isolated_pairs([keys[i] for i in order], len(rows), none, none)
    alone = F.broadcast(spark.createDataFrame(pd.DataFrame({"idx": rows}), "idx long"))
    kept = (
        pairs.join(alone.withColumnRenamed("idx", "u"), "u", "left_anti")
        .join(alone.withColumnRenamed("idx", "v"), "v", "left_anti")
        .select(F.col("u").cast("long"), F.col("v").cast("long"), F.col("dist").cast("int"))
    )
    chain = pd.DataFrame({"u": rows[a], "v": rows[b], "dist": np.zeros(len(a), dtype=np.int32)})
    return kept.unionByName(spark.createDataFrame(chain, "u long, v long, dist int"))


def edges_to_csr(edges: DataFrame, n: int, *, weight: str = "weight"):
    """Collect an undirected edge list into a symmetric float32 CSR (driver memory).

    This is the one item-sized collect of the Spark backend (for Leiden and for tests).
    """
    import scipy.sparse as sp

    pdf: pd.DataFrame = edges.select("u", "v", weight).toPandas()
    u = pdf["u"].to_numpy(np.int64)
    v = pdf["v"].to_numpy(np.int64)
    w = pdf[weight].to_numpy(np.float32)
    m = sp.csr_matrix(
        (np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))),
        shape=(n, n),
        dtype=np.float32,
    )
    m.sort_indices()
    return m
