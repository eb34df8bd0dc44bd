"""Personalized PageRank, popularity inference and tag spreading as DataFrame iterations.

Same operator, fixed points and dangling-node rules as :mod:`ccgraph.propagate`; ``alpha`` is
the probability of following an edge. Inputs: undirected edges ``u, v, weight`` and a node
table ``idx`` (every item, so isolated items are kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccgraph._validation import check_float, check_int
from ccgraph.propagate._graph import check_alpha_tol
from ccgraph.spark._iterate import SparkOperator, build_operator, solve
from ccgraph.spark.graph import directed
from ccgraph.spark.session import agg_row

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["infer_popularity", "operator", "personalized_pagerank", "spread_tags"]


def _alpha(alpha: float) -> float:
    return check_float("alpha", alpha, low=0.0, high=1.0, low_inclusive=False,
                       high_inclusive=False)  # fmt: skip


def operator(
    edges: DataFrame, nodes: DataFrame, *, alpha: float, partitions: int | None = None
) -> SparkOperator:
    """The operator ``alpha D^-1/2 W D^-1/2`` of an undirected edge list (reusable)."""
    p = partitions or int(edges.sparkSession.conf.get("spark.sql.shuffle.partitions") or 8)
    return build_operator(directed(edges), nodes, alpha=_alpha(alpha), partitions=p)


def personalized_pagerank(
    edges: DataFrame | SparkOperator,
    personalization: DataFrame,
    *,
    nodes: DataFrame | None = None,
    alpha: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 1000,
    method: str = "chebyshev",
) -> DataFrame:
    r"""Personalized PageRank of every node for one restart distribution.

    Parameters
    ----------
    edges
        Undirected ``u, v, weight`` (or an :func:`operator` built with the same ``alpha``).
    personalization
        ``idx, value``: non-negative restart weights (missing nodes: 0), normalised to sum 1.
    nodes
        ``idx`` of every node (needed with an edge list).
    alpha
        Probability of following an edge.
    tol
        Stop when a plain power step would change the result by less than ``tol`` in L1.
    max_iter
        Sweep cap.
    method
        ``"chebyshev"`` (default; rate ``(1 - sqrt(1 - alpha^2)) / alpha`` per sweep) or
        ``"jacobi"`` (the power iteration, rate ``alpha``).

    Returns
    -------
    pyspark.sql.DataFrame
        ``idx, ppr`` for every node (float64, summing to 1).

    Notes
    -----
    As :func:`ccgraph.propagate.personalized_pagerank`: with ``S = D^{-1/2} W D^{-1/2}``,
    ``y = D^{1/2} (I - \alpha S)^{-1} D^{-1/2} v`` (isolated nodes: ``y_u = v_u``, a walk there
    jumps back to ``v``) and ``x = y / \sum y``.
    """
    from pyspark.sql import functions as F

    op = edges if isinstance(edges, SparkOperator) else operator(edges, _need(nodes), alpha=alpha)
    tol = check_float("tol", tol, low=0.0, low_inclusive=False)
    max_iter = check_int("max_iter", max_iter, low=1)
    check_alpha_tol(op.alpha, tol)
    total = agg_row(personalization.agg(F.sum("value")))[0] or 0.0
    if not total > 0:
        raise ValueError("`personalization` is all zero")
    v = personalization.select("idx", (F.col("value") / F.lit(total)).alias("v")).join(
        op.nodes, "idx"
    )
    live = F.col("sqrt_d") > 0
    b = v.where(live).select(
        "idx", F.lit(0).alias("col"), (F.col("v") / F.col("sqrt_d")).alias("b")
    )
    weights = op.nodes.select("idx", (F.lit(1.0 - op.alpha) * F.col("sqrt_d")).alias("weight"))
    z, _, _ = solve(op, b, tol=tol, max_iter=max_iter, method=method, criterion="l1",
                    weights=weights)  # fmt: skip
    y = (
        op.nodes.join(z.select("idx", "x"), "idx", "left")
        .join(v.select("idx", "v"), "idx", "left")
        .select(
            "idx",
            F.when(live, F.coalesce(F.col("x"), F.lit(0.0)) * F.col("sqrt_d"))
            .otherwise(F.coalesce(F.col("v"), F.lit(0.0)))
            .alias("y"),
        )
    )
    s = agg_row(y.agg(F.sum("y")))[0]
    return y.select("idx", (F.col("y") / F.lit(s)).alias("ppr"))


def _need(nodes: DataFrame | None) -> DataFrame:
    if nodes is None:
        raise ValueError("`nodes` (a DataFrame with every idx) is needed with an edge list")
    return nodes


def spread_tags(
    edges: DataFrame | SparkOperator,
    seeds: DataFrame,
    *,
    nodes: DataFrame | None = None,
    alpha: float = 0.8,
    tol: float = 1e-6,
    max_iter: int = 100,
    top_k: int = 10,
    prune: int | None = 32,
    freeze: int | None = 12,
    relative_mass: bool = False,
) -> tuple[DataFrame, int, bool]:
    r"""Label spreading of seed tags, keeping each item's top-k non-seed tags.

    Parameters
    ----------
    edges
        Undirected ``u, v, weight`` (or an :func:`operator` with the same ``alpha``).
    seeds
        ``idx, tag, weight``: observed tags (``tag`` a non-negative int code).
    nodes
        ``idx`` of every node (needed with an edge list).
    alpha
        Probability of following an edge; ``1 - alpha`` weighs the item's own seeds.
    tol
        Stop when a sweep changes no kept entry by ``tol`` or more (max abs).
    max_iter
        Sweep cap.
    top_k
        Inferred tags kept per item (its own seed tags excluded).
    prune
        Keep only each item's ``prune`` largest tag scores after every sweep (None: keep all,
        memory ``O(n * tags)``).
    freeze
        With ``prune``: after this many sweeps each item's kept tags are fixed, and the rest of
        the sweeps converge on that support (pruning alone can cycle at the boundary).
    relative_mass
        Add a column ``relative_mass``: ``m_i / m_ref`` with ``m_ref`` the mean mass of the
        non-isolated items (1 if none), the calibrator's feature (``RawSpread.mass /
        RawSpread.mass_ref`` on one machine); costs one aggregate over the mass column.

    Returns
    -------
    scores, n_iter, converged
        ``idx, tag, score, confidence, rank`` (and ``relative_mass``): ``score`` is ``F`` at the
        tag, ``confidence`` its share of the item's propagated mass ``m_i = sum_t F_it``
        (uncalibrated, as ``calibrator=None`` locally; see
        :func:`ccgraph.spark.calibration.calibrate`), ``rank`` 1-based.

    Notes
    -----
    Plain sweeps ``F <- alpha S F + (1 - alpha) Y`` from ``F_0 = (1 - alpha) Y`` toward the fixed
    point ``(1 - alpha)(I - alpha S)^{-1} Y`` of :func:`ccgraph.propagate.spread_tags`, in a long
    table ``idx, tag, F``. With ``prune = L`` each item keeps only its ``L`` largest entries
    after each sweep, so the state is ``<= n L`` rows whatever the vocabulary: an approximation
    (a dropped entry no longer feeds the neighbours); after ``freeze`` sweeps the kept
    entries are fixed, so the remaining sweeps are a linear iteration on that support and
    converge. The effect on the top ``k << L`` tags is
    measured against the exact single-machine result in the tests and the benchmark. The mass
    ``m_i`` is spread as an extra, never-pruned column (``col = -1``).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    op = edges if isinstance(edges, SparkOperator) else operator(edges, _need(nodes), alpha=alpha)
    tol = check_float("tol", tol, low=0.0, low_inclusive=False)
    max_iter = check_int("max_iter", max_iter, low=1)
    check_alpha_tol(op.alpha, tol)
    top_k = check_int("top_k", top_k, low=1)
    if prune is not None:
        prune = check_int("prune", prune, low=top_k)
    scale = F.lit(1.0 - op.alpha)
    y = seeds.select("idx", F.col("tag").cast("long").alias("col"),
                     (F.col("weight").cast("double") * scale).alias("b"))  # fmt: skip
    mass_b = y.groupBy("idx").agg(F.sum("b").alias("b")).select("idx", F.lit(-1).cast("long")
                                                                .alias("col"), "b")  # fmt: skip
    f, n_iter, ok = solve(op, y.unionByName(mass_b), tol=tol, max_iter=max_iter,
                          method="jacobi", prune=prune, freeze=freeze)  # fmt: skip
    mass = f.where(F.col("col") < 0).select("idx", F.col("x").alias("mass"))
    tags = f.where(F.col("col") >= 0).join(
        seeds.select("idx", F.col("tag").cast("long").alias("col")), ["idx", "col"], "left_anti"
    )
    w = Window.partitionBy("idx").orderBy(F.desc("x"), F.col("col"))
    top = (
        tags.where(F.col("x") > 0)
        .withColumn("rank", F.row_number().over(w))
        .where(F.col("rank") <= top_k)
    )
    conf = F.when(F.col("mass") > 0, F.col("x") / F.col("mass")).otherwise(F.lit(0.0))
    extra = []
    if relative_mass:
        ref = _mass_reference(op, mass)
        m = F.greatest(F.coalesce(F.col("mass"), F.lit(0.0)), F.lit(0.0))
        extra = [(m / F.lit(ref)).alias("relative_mass")]
    out = top.join(mass, "idx", "left").select(
        "idx",
        F.col("col").alias("tag"),
        F.col("x").alias("score"),
        F.least(F.greatest(conf, F.lit(0.0)), F.lit(1.0)).alias("confidence"),
        F.col("rank").cast("int"),
        *extra,
    )
    return out, n_iter, ok


def _mass_reference(op: SparkOperator, mass: DataFrame) -> float:
    """Mean mass of the non-isolated nodes (missing rows: 0), 1 if none or not positive.

    As ``_mass_and_reference`` of :mod:`ccgraph.propagate.spreading`: isolated seeded items
    keep their own mass and are left out of the mean.
    """
    from pyspark.sql import functions as F

    live = op.nodes.where(F.col("sqrt_d") > 0).select("idx")
    row = agg_row(
        live.join(mass, "idx", "left").agg(
            F.count(F.lit(1)).alias("n"), F.sum(F.greatest(F.col("mass"), F.lit(0.0))).alias("s")
        )
    )
    n, total = int(row["n"] or 0), float(row["s"] or 0.0)
    return total / n if n and total > 0 else 1.0


def infer_popularity(
    edges: DataFrame | SparkOperator,
    observed: DataFrame,
    *,
    nodes: DataFrame | None = None,
    alpha: float = 0.85,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> DataFrame:
    r"""Infer standardised popularity of unobserved items from observed ones over the graph.

    Parameters
    ----------
    edges
        Undirected ``u, v, weight`` (or an :func:`operator` with the same ``alpha``).
    observed
        ``idx, value``: standardised popularity (0..1) of the observed items only.
    nodes
        ``idx`` of every node (needed with an edge list).
    alpha, tol, max_iter
        As in :func:`ccgraph.propagate.infer_popularity` (``tol``: max abs change).

    Returns
    -------
    pyspark.sql.DataFrame
        ``idx, num, den`` for every node: ``F = alpha P F + (1 - alpha) X`` for
        ``X = [1_O p, 1_O]``; the inferred value is ``num / den`` where ``den > 0`` and the
        confidence ``den / alpha`` (see :func:`ccgraph.propagate.infer_popularity`).
    """
    from pyspark.sql import functions as F

    op = edges if isinstance(edges, SparkOperator) else operator(edges, _need(nodes), alpha=alpha)
    tol = check_float("tol", tol, low=0.0, low_inclusive=False)
    max_iter = check_int("max_iter", max_iter, low=1)
    check_alpha_tol(op.alpha, tol)
    a = F.lit(1.0 - op.alpha)
    obs = observed.select("idx", F.col("value").cast("double")).join(op.nodes, "idx")
    b = obs.select("idx", F.lit(0).alias("col"), (a * F.col("value") * F.col("sqrt_d"))
                   .alias("b")).unionByName(
        obs.select("idx", F.lit(1).alias("col"), (a * F.col("sqrt_d")).alias("b")))  # fmt: skip
    g, _, _ = solve(op, b, tol=tol, max_iter=max_iter, method="chebyshev")
    wide = g.groupBy("idx").pivot("col", [0, 1]).agg(F.first("x"))
    joined = op.nodes.join(wide, "idx", "left").join(obs.select("idx", "value"), "idx", "left")
    live = F.col("sqrt_d") > 0
    obs_flag = F.col("value").isNotNull()

    def col(c: str, x_iso: Column) -> Column:
        inner = F.coalesce(F.col(c), F.lit(0.0)) / F.col("sqrt_d")
        return F.greatest(F.when(live, inner).otherwise(x_iso), F.lit(0.0))

    return joined.select(
        "idx",
        col("0", F.when(obs_flag, a * F.col("value")).otherwise(0.0)).alias("num"),
        col("1", F.when(obs_flag, a).otherwise(0.0)).alias("den"),
    )
