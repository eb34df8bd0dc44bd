"""k-nearest neighbours on Spark: divide-and-merge for vectors, chunked self-join for hashes.

Vectors live in a DataFrame ``idx long, vec array<float>``; results are long tables
``idx, nbr, dist, rank``. Only the k-means centroids (``n_cells x d``) and their training
sample pass through the driver.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_choice, check_int
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

__all__ = ["KNN_SCHEMA", "fit_cells", "hamming_pairs", "knn_dense", "knn_to_arrays"]

log = logging.getLogger(__name__)

KNN_SCHEMA = "idx long, nbr long, dist float"


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _scores(x: np.ndarray, c: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of rows of ``x`` to rows of ``c`` (higher is closer)."""
    dots = x @ c.T
    if metric == "cosine":
        return dots
    return 2.0 * dots - (c * c).sum(axis=1)[None, :]


def fit_cells(
    sample: np.ndarray, n_cells: int, *, metric: str = "cosine", n_iter: int = 15, rng: RngLike = 0
) -> np.ndarray:
    """k-means centroids of a driver-side sample (spherical k-means for cosine).

    Parameters
    ----------
    sample
        ``[s, d]`` float vectors (unit rows for cosine).
    n_cells
        Number of centroids (at most ``s``).
    metric
        ``"cosine"`` (centroids re-normalised each step) or ``"euclidean"``.
    n_iter
        Lloyd iterations after k-means++ seeding.
    rng
        Seed or Generator.

    Returns
    -------
    numpy.ndarray
        ``float32 [n_cells, d]`` centroids.

    Examples
    --------
    >>> x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    >>> c = fit_cells(x, 2, rng=0)
    >>> sorted(np.argmax(c, axis=1).tolist())
    [0, 1]
    """
    g = as_generator(rng)
    x = np.asarray(sample, dtype=np.float32)
    s = x.shape[0]
    n_cells = min(n_cells, s)
    first = int(g.integers(s))
    centers = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(axis=1)
    for _ in range(1, n_cells):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(s, 1.0 / s)
        nxt = int(g.choice(s, p=p))
        centers.append(x[nxt])
        d2 = np.minimum(d2, ((x - x[nxt]) ** 2).sum(axis=1))
    c = np.stack(centers).astype(np.float32)
    for _ in range(n_iter):
        lab = np.argmax(_scores(x, c, metric), axis=1)
        sums = np.zeros_like(c)
        np.add.at(sums, lab, x)
        cnt = np.bincount(lab, minlength=len(c))
        empty = cnt == 0
        c = np.where(empty[:, None], c, sums / np.maximum(cnt, 1)[:, None]).astype(np.float32)
        if metric == "cosine":
            c = _normalize(c).astype(np.float32)
    return c


def _cell_knn(
    idx: np.ndarray, x: np.ndarray, k: int, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact kNN among the members of one cell: ``(query, neighbour, distance)`` rows.

    The single-machine exact backend (:func:`ccgraph.graph._exact.exact_dense`) on the
    members in ``idx`` order, so ties go to the lower ``idx`` and a one-cell search does the
    same arithmetic as the local exact search of the same rows.
    """
    from ccgraph.graph._exact import exact_dense

    n = len(idx)
    kk = min(k, n - 1)
    if kk <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    order = np.argsort(idx, kind="stable")
    idx = idx[order]
    ind, dist = exact_dense(np.ascontiguousarray(x[order]), kk, metric=metric, n_jobs=1)
    return np.repeat(idx, kk), idx[ind.ravel()], dist.ravel().astype(np.float32)


def knn_dense(
    vectors: DataFrame,
    *,
    k: int = 15,
    metric: str = "cosine",
    cell_size: int = 2000,
    n_cells: int | None = None,
    n_probe: int = 3,
    sample_size: int = 20_000,
    kmeans_iter: int = 15,
    rng: RngLike = 0,
) -> DataFrame:
    """Approximate kNN of every vector by divide-and-merge (k-means cells, exact inside).

    Parameters
    ----------
    vectors
        DataFrame ``idx long, vec array<float>`` (any further columns are ignored).
    k
        Neighbours per item.
    metric
        ``"cosine"`` (distance ``1 - cos``) or ``"euclidean"``.
    cell_size
        Target members per cell (sets ``n_cells = ceil(n * n_probe / cell_size)``); the exact
        search inside a cell costs ``cell_size^2 d`` flops, its memory a ``2048 x cell_size``
        block.
    n_cells
        Number of cells (overrides ``cell_size``).
    n_probe
        Cells each vector joins (its nearest centroids); recall rises with it, work linearly.
    sample_size
        Vectors sampled to the driver to fit the centroids.
    kmeans_iter
        Lloyd iterations for the centroids.
    rng
        Seed for the sample and the k-means++ seeding.

    Returns
    -------
    pyspark.sql.DataFrame
        ``idx long, nbr long, dist float, rank int``: each item's (up to) ``k`` nearest other
        items found, ``rank`` 0-based by ``(dist, nbr)``; cached and computed (the unit vectors,
        read by every step of the search, are cached only while it runs).

    Notes
    -----
    Cells are the Voronoi regions of k-means centroids fitted on a sample. Each vector is
    copied to its ``n_probe`` nearest cells; inside each cell (``groupBy(cell)`` +
    ``applyInPandas``) an exact blocked BLAS search lists every member's ``k`` nearest
    co-members; the lists of an item's cells are merged (minimum distance per pair, then the
    ``k`` best by ``(dist, nbr)``, a window in the JVM). A true neighbour is missed only when no
    cell holds both items, which multi-probing makes rare (the "multi-probe" idea of IVF
    indexes; recall is measured in the tests and ``benchmarks/spark.py``).

    Identical vectors are searched once and the lists expanded as in the single-machine
    :func:`ccgraph.graph.knn_search` (:mod:`ccgraph.spark._collapse`): copies are listed at
    distance 0, ties go to the lower ``idx``. Cosine rows are scaled to unit length by the
    local rule (:func:`ccgraph.graph.knn.unit_rows`) and each cell is searched by the local
    exact backend, so with ``n_cells=1`` the lists equal the local exact search's.

    References
    ----------
    .. [1] H. Jegou, M. Douze, C. Schmid, "Product quantization for nearest neighbor search",
       IEEE TPAMI 33(1), 2011 (inverted-file cells with multiple probes).
    """
    from pyspark.sql import functions as F

    from ccgraph.spark._collapse import expand_lists, identical_groups
    from ccgraph.spark.session import persist

    k = check_int("k", k, low=1)
    check_choice("metric", metric, ("cosine", "euclidean"))
    n_probe = check_int("n_probe", n_probe, low=1)
    cell_size = check_int("cell_size", cell_size, low=2)
    sample_size = check_int("sample_size", sample_size, low=1)
    if n_cells is not None:
        n_cells = check_int("n_cells", n_cells, low=1)
    g = as_generator(rng)
    base = vectors.select(F.col("idx").cast("long"), F.col("vec").cast("array<float>"))
    n = base.count()
    if k >= n:
        raise InputError(f"`k` must be smaller than the number of items (n={n}); got k={k}")
    if metric == "cosine":  # the local rule (ccgraph.graph.knn.unit_rows), batch by batch
        base = base.mapInPandas(_unit_batches, "idx long, vec array<float>")
    # read by the duplicate check, the centroid sample and the cell assignment: computed once
    base = persist(base)
    opts: dict[str, Any] = {"n_cells": n_cells, "cell_size": cell_size, "n_probe": n_probe,
                            "sample_size": sample_size, "kmeans_iter": kmeans_iter}  # fmt: skip
    groups = identical_groups(base)
    if groups is None:
        out = persist(_divide_and_merge(base, n, k, metric=metric, rng=g, **opts))
        base.unpersist()
        return out
    copies = groups.select(F.explode("members").alias("idx"), "rep").where(
        F.col("idx") != F.col("rep")
    )
    distinct = base.join(copies.select("idx"), "idx", "left_anti")
    u = n - copies.count()
    k_u = min(k, u - 1)
    log.info("knn_dense: %d of %d vectors are exact duplicates; searching %d", n - u, n, u)
    if k_u == 0:
        found = base.sparkSession.createDataFrame([], f"{KNN_SCHEMA}, rank int")
    else:
        if k_u == u - 1:  # every other distinct vector is listed: search exactly
            opts["n_cells"] = 1
        found = _divide_and_merge(distinct, u, k_u, metric=metric, rng=g, **opts)
    out = persist(expand_lists(found, groups, base.select("idx"), k))
    groups.unpersist()
    base.unpersist()
    return out


def _unit_batches(batches: Any) -> Any:
    import pandas as pd

    from ccgraph.graph.knn import unit_rows

    for b in batches:
        if len(b):
            x = unit_rows(np.stack(b["vec"].to_numpy()).astype(np.float32))
            yield pd.DataFrame({"idx": b["idx"].to_numpy(np.int64), "vec": list(x)})


def _divide_and_merge(
    base: DataFrame,
    n: int,
    k: int,
    *,
    metric: str,
    n_cells: int | None,
    cell_size: int,
    n_probe: int,
    sample_size: int,
    kmeans_iter: int,
    rng: np.random.Generator,
) -> DataFrame:
    """The search of :func:`knn_dense` on ``n`` rows ``idx, vec`` (unit rows for cosine)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cells = n_cells or max(1, -(-n * n_probe // cell_size))
    n_probe = min(n_probe, cells)
    frac = min(1.0, 1.2 * sample_size / n)
    seed = int(rng.integers(2**31 - 1))
    rows = base.sample(fraction=frac, seed=seed).limit(sample_size).select("vec").collect()
    sample = np.asarray([r["vec"] for r in rows], dtype=np.float32)
    centroids = fit_cells(sample, min(cells, len(sample)), metric=metric, n_iter=kmeans_iter,
                          rng=rng)  # fmt: skip
    log.info("knn_dense: n=%d, %d cells, n_probe=%d", n, len(centroids), n_probe)

    def assign(batches: Any) -> Any:
        import pandas as pd

        for b in batches:
            if not len(b):
                continue
            x = np.stack(b["vec"].to_numpy()).astype(np.float32)
            sc = _scores(x, centroids, metric)
            top = np.argpartition(-sc, n_probe - 1, axis=1)[:, :n_probe]
            rep = np.repeat(np.arange(len(b)), n_probe)
            yield pd.DataFrame(
                {
                    "cell": top.ravel().astype(np.int32),
                    "idx": b["idx"].to_numpy()[rep],
                    "vec": list(x[rep]),
                }
            )

    def search(pdf: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        x = np.stack(pdf["vec"].to_numpy()).astype(np.float32)
        q, nb, d = _cell_knn(pdf["idx"].to_numpy(np.int64), x, k, metric)
        return pd.DataFrame({"idx": q, "nbr": nb, "dist": d})

    assigned = base.mapInPandas(assign, "cell int, idx long, vec array<float>")
    found = assigned.groupBy("cell").applyInPandas(search, KNN_SCHEMA)
    merged = found.groupBy("idx", "nbr").agg(F.min("dist").alias("dist"))
    w = Window.partitionBy("idx").orderBy("dist", "nbr")
    ranked = merged.withColumn("rank", F.row_number().over(w) - 1)
    return ranked.where(F.col("rank") < k).withColumn("rank", F.col("rank").cast("int"))


def hamming_pairs(
    codes: DataFrame, *, radius: int, n_bits: int = 64, collapse: bool = False
) -> DataFrame:
    """Pairs of items whose bit codes differ in at most ``radius`` bits (exact).

    Parameters
    ----------
    codes
        DataFrame ``idx long, code long`` (a 64-bit code as a signed int64).
    radius
        Largest Hamming distance kept, ``0 <= radius < n_bits``.
    n_bits
        Bits used of each code (the low ``n_bits``).
    collapse
        False: every pair ``u < v`` within the radius. True: a sparse edge set with the same
        connected components (items with equal codes form a star on their lowest ``idx``; two
        close distinct codes are linked through those lowest items), which stays small when a
        code is shared by many items (blank or placeholder images).

    Returns
    -------
    pyspark.sql.DataFrame
        ``u long, v long, dist int`` with ``u < v``.

    Notes
    -----
    Split the code into ``radius + 1`` disjoint chunks. Two codes at distance ``<= radius``
    differ in at most ``radius`` chunks, so by the pigeonhole principle they agree exactly on at
    least one: self-joining on ``(chunk position, chunk value)`` finds every such pair (and
    some farther ones, removed by the exact ``bit_count(a XOR b)`` check). This is the
    multi-index hashing idea of Norouzi et al. (exact for ``radius``).

    References
    ----------
    .. [1] M. Norouzi, A. Punjani, D. J. Fleet, "Fast exact search in Hamming space with
       multi-index hashing", IEEE TPAMI 36(6), 2014.
    """
    from pyspark.sql import functions as F

    n_bits = check_int("n_bits", n_bits, low=1, high=64)
    radius = check_int("radius", radius, low=0, high=n_bits - 1)
    m = radius + 1
    bounds = np.linspace(0, n_bits, m + 1).round().astype(int)
    chunks = []
    for j in range(m):
        lo, hi = int(bounds[j]), int(bounds[j + 1])
        val = F.shiftrightunsigned(F.col("code"), lo)
        if hi - lo < 64:
            val = val.bitwiseAND(F.lit((1 << (hi - lo)) - 1).cast("long"))
        chunks.append(F.struct(F.lit(j).alias("j"), val.alias("val")))
    if n_bits < 64:
        code_col = F.col("code").bitwiseAND(F.lit((1 << n_bits) - 1).cast("long"))
    else:
        code_col = F.col("code")
    items = codes.select(F.col("idx").cast("long"), code_col.alias("code"))
    if collapse:
        reps = items.groupBy("code").agg(F.min("idx").alias("idx"))
        star = (
            items.join(reps.withColumnRenamed("idx", "rep"), "code")
            .where(F.col("idx") != F.col("rep"))
            .select(F.col("rep").alias("u"), F.col("idx").alias("v"), F.lit(0).alias("dist"))
        )
        base = reps
    else:
        base = items
    keyed = base.select("idx", "code", F.explode(F.array(*chunks)).alias("c")).select(
        "idx", "code", F.col("c.j").alias("j"), F.col("c.val").alias("val")
    )
    a = keyed.alias("a")
    b = keyed.alias("b")
    cand = a.join(b, (F.col("a.j") == F.col("b.j")) & (F.col("a.val") == F.col("b.val")))
    cand = cand.where(F.col("a.idx") < F.col("b.idx")).select(
        F.col("a.idx").alias("u"),
        F.col("b.idx").alias("v"),
        F.bit_count(F.col("a.code").bitwiseXOR(F.col("b.code"))).cast("int").alias("dist"),
    )
    pairs = cand.where(F.col("dist") <= radius).dropDuplicates(["u", "v"])
    if collapse:
        pairs = pairs.unionByName(star)
    return pairs


def knn_to_arrays(knn: DataFrame, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Collect a kNN table into ``(indices int32 [n, k], distances float32 [n, k])``.

    Empty slots hold ``-1`` / ``inf``. This collects ``n k`` rows to the driver: for tests and
    small graphs only.
    """
    pdf: pd.DataFrame = knn.select("idx", "nbr", "dist", "rank").toPandas()
    ind = np.full((n, k), -1, dtype=np.int32)
    dist = np.full((n, k), np.inf, dtype=np.float32)
    r = pdf["idx"].to_numpy(np.int64)
    c = pdf["rank"].to_numpy(np.int64)
    ind[r, c] = pdf["nbr"].to_numpy(np.int64)
    dist[r, c] = pdf["dist"].to_numpy(np.float32)
    return ind, dist
