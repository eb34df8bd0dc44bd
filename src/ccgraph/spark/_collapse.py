"""Exact-duplicate vectors on Spark: search each distinct vector once, expand the lists.

The DataFrame form of :mod:`ccgraph.graph._collapse` (same rule, so both engines list the
same neighbours): identical vectors form a group named by its lowest ``idx``; the search runs
on one row per group; every item then gets its group-mates at distance 0 and the members of
each listed group at that group's distance, ordered by ``(dist, nbr)``, first ``k``. Only the
``k + 1`` lowest members of a group can appear in anyone's list, so a group of thousands of
blank captions adds ``k + 1`` rows per listing, never ``size^2``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["expand_lists", "identical_groups"]

log = logging.getLogger(__name__)


def identical_groups(vectors: DataFrame) -> DataFrame | None:
    """Groups of identical vectors with two or more members; None if every vector is distinct.

    Parameters
    ----------
    vectors
        ``idx long, vec array<float>``.

    Returns
    -------
    pyspark.sql.DataFrame or None
        ``rep long, members array<long>`` (cached): the group's lowest ``idx`` and all its
        ``idx`` ascending (the representative included).

    Notes
    -----
    A 64-bit hash of each vector (``xxhash64``) finds the candidates with one small shuffle
    of ``idx, hash``; only vectors sharing a hash are then grouped on the vector itself, so a
    hash collision never merges different vectors.
    """
    from pyspark.sql import functions as F

    from ccgraph.spark.session import persist

    hashed = vectors.select("idx", "vec", F.xxhash64("vec").alias("h"))
    shared = hashed.groupBy("h").count().where(F.col("count") > 1).select("h")
    groups = (
        hashed.join(shared, "h")
        .groupBy("vec")
        .agg(F.min("idx").alias("rep"), F.sort_array(F.collect_list("idx")).alias("members"))
        .where(F.size("members") > 1)
        .select("rep", "members")
    )
    groups = persist(groups)
    if groups.limit(1).count() == 0:
        groups.unpersist()
        return None
    return groups


def expand_lists(knn: DataFrame, groups: DataFrame, items: DataFrame, k: int) -> DataFrame:
    """Lists over all items from lists over the group representatives.

    Parameters
    ----------
    knn
        ``idx, nbr, dist`` over representatives (items in no group represent themselves).
    groups
        From :func:`identical_groups`.
    items
        ``idx`` of every item.
    k
        Neighbours per item.

    Returns
    -------
    pyspark.sql.DataFrame
        ``idx long, nbr long, dist float, rank int``: each item's ``k`` nearest other items by
        ``(dist, nbr)``, ``rank`` 0-based.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    heads = groups.select(F.col("rep").alias("nbr"), F.slice("members", 1, k + 1).alias("head"))
    mates = heads.select(
        F.col("nbr").alias("g"),
        F.explode("head").alias("nbr"),
        F.lit(0.0).cast("float").alias("dist"),
    )
    listed = (
        knn.select(F.col("idx").alias("g"), "nbr", F.col("dist").cast("float").alias("dist"))
        .join(heads, "nbr", "left")
        .select("g", F.explode(F.coalesce("head", F.array("nbr"))).alias("nbr"), "dist")
    )
    by_group = Window.partitionBy("g").orderBy("dist", "nbr")
    lists = (
        mates.unionByName(listed)
        .withColumn("r", F.row_number().over(by_group))
        .where(F.col("r") <= k + 1)  # k + 1: a member drops itself from its group's list
        .drop("r")
    )
    member_of = groups.select(F.explode("members").alias("idx"), F.col("rep").alias("g"))
    owner = (
        items.select("idx")
        .join(member_of, "idx", "left")
        .select("idx", F.coalesce("g", "idx").alias("g"))
    )
    by_item = Window.partitionBy("idx").orderBy("dist", "nbr")
    out = (
        owner.join(lists, "g")
        .where(F.col("nbr") != F.col("idx"))
        .withColumn("rank", F.row_number().over(by_item) - 1)
        .where(F.col("rank") < k)
    )
    return out.select("idx", "nbr", "dist", F.col("rank").cast("int").alias("rank"))
