"""``execution.engine: spark``: the pipeline's item-sized stages on Spark.

The same stage sequence as :func:`ccgraph.pipeline.run`; embeddings, kNN, the mutual graph,
near-duplicate groups, tag spreading and popularity run as Spark jobs, Leiden and the cluster
descriptions on the driver over the collected edge list. The config mapping and the output
assembly are the single-machine code (:mod:`ccgraph._stages`, :mod:`ccgraph._assemble`).
Besides the standard run directory, the Spark tables are written as Parquet under
``<run>/spark/`` (``edges``, ``tags`` partitioned by ``rank``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph import _assemble, _late_stages, _stages
from ccgraph._logging import StageTimer
from ccgraph.containers import KnnGraph, RunResult, TagScores
from ccgraph.exceptions import ConfigError, DataQualityWarning, InputError
from ccgraph.spark.config_checks import check_spark_config, modalities

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ccgraph.config import Config

__all__ = ["check_spark_config", "run_spark"]

log = logging.getLogger(__name__)


def run_spark(
    cfg: Config, *, out: str | Path | None = None, write: bool = True, **_: Any
) -> RunResult:
    """Run the pipeline of ``cfg`` with the heavy stages on Spark.

    Parameters
    ----------
    cfg
        A validated config with ``execution.engine: spark`` (``spark_master``,
        ``spark_partitions``, ``spark_conf`` configure the session).
    out
        Run directory; wins over ``output.dir``.
    write
        Write the run directory and the Spark Parquet tables.

    Returns
    -------
    RunResult
        As :func:`ccgraph.run`; the manifest records ``engine: spark`` and the Spark version.

    Notes
    -----
    Supported: one modality (text, image or precomputed; fusing several raises
    :class:`ConfigError`), ``graph.weighting: cosine``, dense or 64-bit-hash embeddings. The
    catalog is read on the driver with :func:`ccgraph.io.read_catalog_from_config` (its
    hygiene and reject rules), then distributed.
    """
    from ccgraph.cluster import describe_clusters
    from ccgraph.io import read_catalog_from_config, write_run
    from ccgraph.spark.session import get_session

    ex = cfg.execution
    check_spark_config(cfg)
    spark = get_session(ex.spark_master, partitions=ex.spark_partitions, conf=ex.spark_conf)
    out_dir = _stages.resolve_out_dir(cfg, out)
    timer = StageTimer()
    stages: dict[str, Any] = {"engine": {"name": "spark", "version": spark.version,
                                         "master": ex.spark_master}}  # fmt: skip
    with timer.stage("read"):
        catalog = read_catalog_from_config(cfg.data, cfg.base_dir)
    ids = catalog.ids
    n = len(ids)
    if n < 3:
        raise ConfigError(f"the catalog has {n} usable items; a similarity graph needs 3")
    with timer.stage("embed"):
        emb, modality, rejects_embed, metric = _embed(spark, catalog, cfg)
    with timer.stage("graph"):
        edges, nn, stages["graph"] = _graph(emb, cfg, metric=metric, n=n)
    nodes = spark.range(n, numPartitions=ex.spark_partitions).withColumnRenamed("id", "idx")
    with timer.stage("duplicates"):
        group, canonical, stages["duplicates"] = _duplicates(emb, nn, nodes, catalog, cfg,
                                                             metric=metric,
                                                             modality=modality)  # fmt: skip
        nn.unpersist()
    with timer.stage("cluster"):
        from ccgraph.spark.cluster import collect_graph

        limit = int(ex.memory_limit_gb * 2**30) if ex.memory_limit_gb else None
        graph = collect_graph(edges, ids, memory_limit_bytes=limit)
        graph = KnnGraph(graph.adjacency, ids, {**stages["graph"], "modality": modality})
        levels, default_level, stages["cluster"] = _stages.cluster_levels(graph, cfg)
    seeds = _stages.build_seed_tags(catalog, cfg)
    with timer.stage("describe"):
        clusters = pd.concat(
            [describe_clusters(graph, part, tags=seeds,
                               texts=_late_stages.label_texts(catalog.items),
                               uploaders=catalog.items.get("creator"),
                               top_tags=cfg.cluster.top_tags,
                               n_representatives=cfg.cluster.n_representatives).assign(level=i)
             for i, part in enumerate(levels)],
            ignore_index=True,
        )  # fmt: skip
    inferred, tags_sdf = None, None
    if cfg.propagate.tags.enabled and seeds.n_tags > 0:
        with timer.stage("tags"):
            inferred, tags_sdf, stages["tags"] = _tags(spark, edges, nodes, seeds, cfg)
    popularity = None
    if cfg.propagate.popularity.enabled:
        with timer.stage("popularity"):
            popularity = _popularity(spark, edges, nodes, catalog, cfg)
            stages["popularity"] = dict(popularity.params)
    with timer.stage("assemble"):
        from ccgraph.pipeline import _counts

        items_df = _assemble.items_table(catalog, graph, levels, default_level, group,
                                         canonical, popularity)  # fmt: skip
        tags_df = _assemble.tags_table(catalog, ids, inferred)
        rejects = pd.concat([catalog.rejects, rejects_embed], ignore_index=True)
        counts = _counts(items_df, tags_df, rejects, graph, levels, default_level, seeds)
        manifest = _assemble.manifest(cfg.model_dump(mode="json", exclude={"base_dir"}),
                                      seed=cfg.seed, timings=timer.timings, counts=counts,
                                      stages=stages)  # fmt: skip
    result = RunResult(items_df, tags_df, clusters, rejects, graph, manifest)
    if write:
        with timer.stage("write"):
            path = write_run(result, out_dir, overwrite=cfg.output.overwrite)
            edges.write.mode("overwrite").parquet(str(Path(path) / "spark" / "edges"))
            if tags_sdf is not None:
                tags_sdf.write.mode("overwrite").partitionBy("rank").parquet(
                    str(Path(path) / "spark" / "tags")
                )
        result = RunResult(items_df, tags_df, clusters, rejects, graph, manifest, path=path)
    for df in (edges, emb):  # cached tables would stay in the (shared) session
        df.unpersist()
    return result


def _embed(
    spark: SparkSession, catalog: Any, cfg: Config
) -> tuple[DataFrame, str, pd.DataFrame, str]:
    """One modality's vectors (``idx, vec`` or ``idx, code``) and the embed rejects."""
    from pyspark.sql import functions as F

    from ccgraph.embed import caption_texts, load_precomputed, make_rejects
    from ccgraph.spark.embed import embed_items
    from ccgraph.spark.session import persist

    e = cfg.embed
    modality = modalities(cfg)[0]  # exactly one: check_spark_config
    items = catalog.items.reset_index(drop=True)
    parts = cfg.execution.spark_partitions
    if modality == "precomputed":
        path = cfg.resolve(e.precomputed.path)
        if path is None:  # modalities() counts precomputed only when its path is set
            raise ConfigError("embed.precomputed.path is not set")
        vecs = load_precomputed(path, ids=catalog.ids, id_column=e.precomputed.id_column,
                                vector_column=e.precomputed.vector_column,
                                catalog_ids=catalog.ids)  # fmt: skip
        pos = pd.Index(catalog.ids).get_indexer(vecs.ids)
        pdf = pd.DataFrame({"idx": pos.astype(np.int64), "vec": list(vecs.vectors)})
        emb = spark.createDataFrame(pdf, "idx long, vec array<float>").repartition(parts)
        return persist(emb), modality, make_rejects([]), "cosine"
    frame = pd.DataFrame({"idx": np.arange(len(items), dtype=np.int64),
                          "id": items["id"].astype(str).to_numpy()})  # fmt: skip
    if modality == "text":
        frame["text"] = caption_texts(items, catalog.tags, fields=e.text.fields,
                                      max_chars=e.text.max_chars)  # fmt: skip
    else:
        for c in ("image_path", "url"):
            if c in items.columns:
                frame[c] = items[c].astype(object).where(items[c].notna(), None).to_numpy()
    sdf = spark.createDataFrame(frame).repartition(parts)
    out = persist(embed_items(sdf, e, modality=modality, base_dir=cfg.base_dir))
    bad: pd.DataFrame = out.where(F.col("reason").isNotNull()).select("idx", "reason").toPandas()
    rej = pd.DataFrame({"file": "", "row": bad["idx"].to_numpy() + 1,
                        "id": items["id"].astype(str).to_numpy()[bad["idx"].to_numpy()],
                        "stage": "embed", "reason": bad["reason"]})  # fmt: skip
    good = out.where(F.col("reason").isNull())
    binary = good.where(F.col("code").isNotNull()).limit(1).count() > 0
    cols = ["idx", "code"] if binary else ["idx", "vec"]
    return persist(good.select(*cols)), modality, rej, "hamming" if binary else "cosine"


def _as_dense_bits(codes: DataFrame) -> DataFrame:
    """64-bit codes as +-1 vectors: cosine = 1 - 2 Hamming / 64, so the kNN order is equal."""
    from pyspark.sql import functions as F

    bits = [F.when(F.col("code").bitwiseAND(F.lit(1 << b).cast("long")) != 0, 1.0).otherwise(-1.0)
            for b in range(63)]  # fmt: skip
    bits.append(F.when(F.col("code") < 0, 1.0).otherwise(-1.0))
    return codes.select("idx", F.array(*bits).cast("array<float>").alias("vec"))


def _graph(
    emb: DataFrame, cfg: Config, *, metric: str, n: int
) -> tuple[DataFrame, DataFrame, dict]:
    """Edges (persisted) and the kNN lists they came from (persisted; the duplicates use them)."""
    from pyspark.sql import functions as F

    from ccgraph.spark.graph import mutual_graph
    from ccgraph.spark.knn import knn_dense
    from ccgraph.spark.session import persist

    g = cfg.graph
    if g.k >= n:
        raise ConfigError(f"`graph.k` is {g.k} but only {n} items; set graph.k below {n}")
    vec = _as_dense_bits(emb) if metric == "hamming" else emb
    # Catalogs the local pipeline searches exactly (graph.backend auto/exact) are searched
    # exactly here too (one cell), so a small catalog gets the local run's graph and clusters.
    from ccgraph.graph.knn import choose_backend

    exact = choose_backend(n, metric, g.backend) == "exact"
    nn = knn_dense(vec, k=g.k, metric="cosine", rng=cfg.seed, n_cells=1 if exact else None)
    if metric == "hamming":  # back to bit counts: d_cos = 2 h / 64
        nn = nn.withColumn("dist", F.round(F.col("dist") * 32.0).cast("float"))
    nn = persist(nn)
    edges = mutual_graph(nn, mutual=g.mutual, min_degree=g.min_degree, metric=metric, n_bits=64)
    edges = persist(edges.repartition(cfg.execution.spark_partitions))
    info = {"k": g.k, "metric": metric, "mutual": g.mutual, "min_degree": g.min_degree,
            "weighting": "cosine",
            "backend_used": "spark-exact" if exact else "spark-divide-and-merge",
            "n_edges": edges.count()}  # fmt: skip
    return edges, nn, info


def _duplicates(emb: DataFrame, nn: DataFrame, nodes: DataFrame, catalog: Any, cfg: Config,
                *, metric: str, modality: str) -> tuple[np.ndarray, np.ndarray, dict]:  # fmt: skip
    from ccgraph.spark.embed import blank_keys
    from ccgraph.spark.graph import duplicate_groups, isolate_pairs
    from ccgraph.spark.knn import hamming_pairs

    d = cfg.graph.duplicates
    n = catalog.n_items
    skipped = _stages.no_duplicate_search(d, modality)
    if skipped is not None:
        return np.arange(n, dtype=np.int64), np.ones(n, dtype=bool), skipped
    blank = None
    if metric == "hamming":
        pairs = hamming_pairs(emb, radius=d.hamming, collapse=True)
        # blank images share one hash: as locally, grouped only with byte-identical files
        items = catalog.items
        paths = items["image_path"].tolist() if "image_path" in items.columns else [None] * n
        blank = blank_keys(emb, kind=cfg.embed.image.kind, ids=catalog.ids, image_paths=paths,
                           n_jobs=cfg.n_jobs or 1)  # fmt: skip
        if blank is not None:
            pairs = isolate_pairs(pairs, *blank)
    else:
        pairs = _close_pairs(emb, nn, 1.0 - d.cosine)
    prio = _stages._priority(catalog, d.canonical)
    node_df = nodes
    if prio is not None:
        pdf = pd.DataFrame({"idx": np.arange(n, dtype=np.int64), "prio": prio.astype(float)})
        node_df = nodes.sparkSession.createDataFrame(pdf)
    groups = duplicate_groups(pairs, node_df, priority=None if prio is None else "prio")
    got: pd.DataFrame = groups.toPandas()
    got = got.sort_values("idx")
    group = got["duplicate_group"].to_numpy(np.int64)
    canonical = got["is_canonical"].to_numpy(bool)
    return group, canonical, {"modality": modality, "metric": metric, "cosine": d.cosine,
                              "hamming": d.hamming,
                              "n_duplicates": int((~canonical).sum()),
                              "n_isolated": 0 if blank is None else len(blank[0])}  # fmt: skip


def _close_pairs(emb: DataFrame, nn: DataFrame, threshold: float) -> DataFrame:
    """Listed pairs within a cosine distance, by the rule of :func:`find_duplicates`.

    Candidates are the kNN pairs listed within ``threshold + 1e-3``; each is measured again
    in float64 by :func:`ccgraph.graph.bridge.pair_distances` and kept within
    ``threshold + 1e-6``, as on one machine.
    """
    from pyspark.sql import functions as F

    cand = (
        nn.where(F.col("dist") <= threshold + 1e-3)
        .select(F.least("idx", "nbr").alias("u"), F.greatest("idx", "nbr").alias("v"))
        .distinct()
    )
    vec = emb.select("idx", "vec")
    both = cand.join(vec.select(F.col("idx").alias("u"), F.col("vec").alias("a")), "u").join(
        vec.select(F.col("idx").alias("v"), F.col("vec").alias("b")), "v"
    )

    def measure(batches: Any) -> Any:
        from ccgraph.graph.bridge import pair_distances
        from ccgraph.graph.knn import unit_rows

        for b in batches:
            m = len(b)
            if not m:
                continue
            x = np.vstack([unit_rows(np.stack(b[c].to_numpy()).astype(np.float32))
                           for c in ("a", "b")])  # fmt: skip
            dist = pair_distances(x, np.arange(m), np.arange(m, 2 * m), "cosine")
            yield pd.DataFrame({"u": b["u"].to_numpy(np.int64), "v": b["v"].to_numpy(np.int64),
                                "dist": dist.astype(np.float64)})  # fmt: skip

    measured = both.select("u", "v", "a", "b").mapInPandas(measure, "u long, v long, dist double")
    return measured.where(F.col("dist") <= threshold + 1e-6).select("u", "v")


def _tags(spark: SparkSession, edges: DataFrame, nodes: DataFrame, seeds: Any,
          cfg: Config) -> tuple[TagScores, DataFrame, dict]:  # fmt: skip
    """Spread the seeds; with ``calibrator: auto`` fit and apply the calibrator as locally."""
    from ccgraph.spark.calibration import calibrate, fit_calibrator, seed_frame
    from ccgraph.spark.propagate import operator, spread_tags

    t = cfg.propagate.tags
    prune = max(32, 2 * t.top_k)
    op = operator(edges, nodes, alpha=t.alpha)
    cal = None
    if t.calibrator == "auto":
        try:
            cal = fit_calibrator(op, seeds, rng=cfg.seed, tol=t.tol, max_iter=t.max_iter,
                                 top_k=t.top_k, prune=prune,
                                 tag_fraction=t.calibration_tag_fraction)  # fmt: skip
        except InputError as exc:  # too few seeded items to hold some out, as locally
            warnings.warn(
                f"spark tags: calibration skipped ({exc}); confidences are uncalibrated "
                "(each tag's share of the item's propagated mass): tag more items",
                DataQualityWarning,
                stacklevel=2,
            )
    seed_df = seed_frame(spark, seeds.matrix)
    out, n_iter, ok = spread_tags(op, seed_df, tol=t.tol, max_iter=t.max_iter, top_k=t.top_k,
                                  prune=prune, relative_mass=cal is not None)  # fmt: skip
    if cal is not None:
        out = calibrate(out, cal, seed_df)
    from pyspark.sql import functions as F

    from ccgraph.spark.session import materialize

    out = materialize(out)  # collected below and written with the run: computed once
    # only the rows and columns the run keeps cross to the driver
    pdf: pd.DataFrame = (
        out.where(F.col("confidence") >= F.lit(float(t.min_confidence)))
        .select("idx", "tag", "score", "confidence")
        .toPandas()
    )
    shape = seeds.matrix.shape
    r, c = pdf["idx"].to_numpy(np.int64), pdf["tag"].to_numpy(np.int64)
    scores = sp.csr_matrix((pdf["score"].to_numpy(np.float32), (r, c)), shape)
    conf = sp.csr_matrix((pdf["confidence"].to_numpy(np.float32), (r, c)), shape)
    params = {"alpha": t.alpha, "tol": t.tol, "max_iter": t.max_iter, "top_k": t.top_k,
              "min_confidence": t.min_confidence, "prune": prune,
              "calibrator": None if cal is None else cal.describe(),
              "engine": "spark"}  # fmt: skip
    scores_ = TagScores(scores, conf, seeds.ids, seeds.tags, params, converged=ok, n_iter=n_iter)
    return scores_, out, {**params, "converged": ok, "n_iter": n_iter}


def _popularity(spark: SparkSession, edges: DataFrame, nodes: DataFrame, catalog: Any,
                cfg: Config) -> Any:  # fmt: skip
    from ccgraph.containers import Popularity
    from ccgraph.propagate import standardize_popularity
    from ccgraph.spark.propagate import infer_popularity

    p = cfg.propagate.popularity
    items = catalog.items
    raw = pd.to_numeric(items["popularity_raw"], errors="coerce").to_numpy(np.float64)
    std = standardize_popularity(raw, items["provider"].fillna("").astype(str).to_numpy(),
                                 percentile=p.percentile, r=p.r)  # fmt: skip
    obs = np.isfinite(std)
    n = len(std)
    value = np.where(obs, std, np.nan)
    confidence = np.where(obs, 1.0, 0.0)
    source = np.where(obs, "observed", "none").astype(object)
    if obs.any():
        o_df = spark.createDataFrame(pd.DataFrame({"idx": np.flatnonzero(obs).astype(np.int64),
                                                   "value": std[obs]}))  # fmt: skip
        res: pd.DataFrame = infer_popularity(
            edges, o_df, nodes=nodes, alpha=p.alpha, tol=p.tol
        ).toPandas()
        res = res.sort_values("idx")
        num, den = res["num"].to_numpy(), res["den"].to_numpy()
        reach = den > 1e-12 * max(1.0, float(den.max(initial=0.0)))
        inf = ~obs & reach
        value[inf] = np.clip(num[inf] / den[inf], 0.0, 1.0)
        confidence[inf] = np.clip(den[inf] / p.alpha, 0.0, 1.0)
        source[inf] = "inferred"
    params = {"alpha": p.alpha, "tol": p.tol, "percentile": p.percentile, "r": p.r,
              "engine": "spark"}  # fmt: skip
    return Popularity(value, np.where(np.isfinite(raw), raw, np.nan), source, confidence,
                      catalog.ids, params) if n else None  # fmt: skip
