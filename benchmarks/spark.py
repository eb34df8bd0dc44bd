"""Spark backend in local mode: per-stage wall times at 10k and 100k synthetic items.

python benchmarks/spark.py [--sizes 10000 100000] [--sweeps 10]

Stages: kNN by divide-and-merge (recall@15 against exact on 1,000 sampled queries), mutual
graph + repair, near-duplicate components, Leiden on the driver (collect + igraph), PPR and
tag spreading sweeps (time per sweep; PPR to convergence at the smallest size). Writes the
``spark`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import Timer, markdown_table, peak_rss_mb, write_section


def clustered(n: int, d: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    centers = g.normal(size=(max(10, n // 200), d))
    lab = g.integers(0, len(centers), size=n)
    x = centers[lab] + 0.6 * g.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_sample(x: np.ndarray, ind: np.ndarray, k: int, n_query: int = 1000) -> float:
    g = np.random.default_rng(0)
    q = g.choice(len(x), size=min(n_query, len(x)), replace=False)
    sims = x[q] @ x.T
    sims[np.arange(len(q)), q] = -np.inf
    exact = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return float(np.mean([len(set(ind[i]) & set(e)) / k for i, e in zip(q, exact, strict=True)]))


class _Rows(list):
    """A list of table rows that prints each row as it is added (progress of long runs)."""

    def append(self, row: list[object]) -> None:
        print(" | ".join(str(c) for c in row), flush=True)
        super().append(row)


def run_size(spark, n: int, *, k: int, sweeps: int, converge_ppr: bool) -> list[list[object]]:
    from pyspark.sql import functions as F

    from ccgraph.spark import cluster, graph, knn, propagate
    from ccgraph.spark._iterate import solve
    from ccgraph.spark.session import persist

    rows: list[list[object]] = _Rows()
    x = clustered(n, 64, seed=n)
    parts = int(spark.conf.get("spark.sql.shuffle.partitions"))
    with Timer() as t:
        vec = persist(
            spark.createDataFrame(
                pd.DataFrame({"idx": np.arange(n, dtype=np.int64), "vec": list(x)}),
                "idx long, vec array<float>",
            ).repartition(parts)
        )
    rows.append([n, "load vectors (driver -> Spark)", t.seconds, ""])
    with Timer() as t:
        nn = persist(knn.knn_dense(vec, k=k, cell_size=2000, n_probe=3, rng=0))
    ind, _ = knn.knn_to_arrays(nn, n, k)
    rows.append([n, f"kNN divide-and-merge (k={k}, n_probe=3)", t.seconds,
                 f"recall@{k} {recall_sample(x, ind, k):.3f}"])  # fmt: skip
    with Timer() as t:
        edges = persist(graph.mutual_graph(nn, min_degree=1).repartition(parts))
        m = edges.count()
    rows.append([n, "mutual rule + repair", t.seconds, f"{m:,} edges ({m / n:.1f}/item)"])
    nodes = spark.range(n, numPartitions=parts).withColumnRenamed("id", "idx")
    with Timer() as t:
        close = edges.where(F.col("dist") <= 0.1).select("u", "v")
        groups = graph.duplicate_groups(close, nodes)
        n_groups = groups.select("duplicate_group").distinct().count()
    rows.append([n, "duplicate groups (components, cos >= 0.9)", t.seconds, f"{n_groups:,} groups"])
    tmp = Path(tempfile.mkdtemp(prefix="ccgraph-bench-"))
    edges.write.parquet(str(tmp / "edges"))
    size = sum(f.stat().st_size for f in (tmp / "edges").rglob("*.parquet"))
    rss0 = peak_rss_mb()
    with Timer() as t:
        part = cluster.leiden_on_driver(edges, np.arange(n).astype(str), rng=0)
    rows.append([n, "Leiden on the driver (collect + igraph)", t.seconds,
                 f"{part.n_clusters} clusters; Parquet {size / m:.1f} B/edge; "
                 f"driver peak +{max(0.0, peak_rss_mb() - rss0):.0f} MB"])  # fmt: skip
    op = propagate.operator(edges, nodes, alpha=0.85)
    pers = spark.createDataFrame(pd.DataFrame({"idx": [0, 1, 2], "value": [1.0, 1.0, 1.0]}))
    if converge_ppr:
        with Timer() as t:
            propagate.personalized_pagerank(op, pers, tol=1e-10).agg(F.sum("ppr")).first()
        rows.append([n, "PPR to tol 1e-10 (Chebyshev)", t.seconds, ""])
    b = pers.select("idx", F.lit(0).alias("col"), F.col("value").alias("b"))
    with Timer() as t:
        solve(op, b, tol=1e-300, max_iter=sweeps, method="chebyshev")
    rows.append([n, f"PPR sweep (mean of {sweeps})", t.seconds / sweeps, ""])
    g = np.random.default_rng(1)
    tagged = g.choice(n, size=n // 10, replace=False)
    seeds = spark.createDataFrame(pd.DataFrame({
        "idx": tagged, "tag": g.integers(0, 200, size=len(tagged)), "weight": 1.0}))  # fmt: skip
    op8 = propagate.operator(edges, nodes, alpha=0.8)
    with Timer() as t:
        out, _, _ = propagate.spread_tags(op8, seeds, tol=1e-300, max_iter=sweeps, top_k=10,
                                          prune=32)  # fmt: skip
        out.count()
    rows.append([n, f"spreading sweep, 200 tags, prune 32 (mean of {sweeps})", t.seconds / sweeps,
                 ""])  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--sweeps", type=int, default=10)
    args = ap.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    from ccgraph.spark.session import get_session

    with Timer() as t:
        spark = get_session("local[2]", partitions=8)
    rows: list[list[object]] = [["-", "session start", t.seconds, spark.version]]
    for i, n in enumerate(args.sizes):
        rows += run_size(spark, n, k=15, sweeps=args.sweeps, converge_ppr=i == 0)
        print(markdown_table(["items", "stage", "wall s", "notes"], rows), flush=True)
    table = markdown_table(["items", "stage", "wall s", "notes"], rows)
    load = os.getloadavg()[0]
    body = (
        f"Spark {spark.version}, `local[2]`, 8 shuffle partitions, 64-d clustered unit vectors. "
        f"Load average at the end: {load:.1f} on 2 cores (other jobs were running), so read the "
        "times as upper bounds.\n\n" + table
    )
    write_section("spark", "Spark backend (local mode)", body, "python benchmarks/spark.py")


if __name__ == "__main__":
    main()
