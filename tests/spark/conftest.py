"""One shared local Spark session for the Spark tests (skipped without pyspark or Java)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import blobs

PARTITIONS = 4


@pytest.fixture(scope="session")
def spark():
    """A ``local[2]`` session with 4 shuffle partitions, shared by every Spark test."""
    from ccgraph.spark.session import get_session, spark_available

    reason = spark_available()
    if reason:
        pytest.skip(reason)
    session = get_session("local[2]", partitions=PARTITIONS)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def clustered():
    """2,000 clustered unit vectors in 24 dimensions (20 centres) and their labels."""
    return blobs(2000, 24, centers=20, spread=0.35, seed=3)


def vectors_frame(spark, x: np.ndarray):
    """``idx, vec`` DataFrame over ``PARTITIONS`` partitions."""
    pdf = pd.DataFrame({"idx": np.arange(len(x), dtype=np.int64), "vec": list(x)})
    return spark.createDataFrame(pdf, "idx long, vec array<float>").repartition(PARTITIONS)


@pytest.fixture(scope="session")
def spark_knn(spark, clustered):
    """Spark kNN table (k=10) of ``clustered``, materialized once."""
    from ccgraph.spark.knn import knn_dense
    from ccgraph.spark.session import persist

    x, _ = clustered
    return persist(knn_dense(vectors_frame(spark, x), k=10, cell_size=800, n_probe=3, rng=0))


@pytest.fixture(scope="session")
def spark_edges(spark_knn):
    """Mutual + repair edges (min_degree=1) built in Spark from ``spark_knn``."""
    from ccgraph.spark.graph import mutual_graph
    from ccgraph.spark.session import persist

    return persist(mutual_graph(spark_knn, min_degree=1).repartition(PARTITIONS))


@pytest.fixture(scope="session")
def nodes(spark, clustered):
    """``idx`` of every item."""
    return spark.range(len(clustered[0]), numPartitions=PARTITIONS).withColumnRenamed("id", "idx")


@pytest.fixture(scope="session")
def local_graph(spark_edges, clustered):
    """The Spark-built edge list as a local KnnGraph (ids ``"0"..``)."""
    from ccgraph import KnnGraph
    from ccgraph.spark.graph import edges_to_csr

    x, _ = clustered
    return KnnGraph(edges_to_csr(spark_edges, len(x)), np.arange(len(x)).astype(str))


def seed_tags(n: int, labels: np.ndarray, seed: int) -> pd.DataFrame:
    """About 15 % of items carry 1-3 tags; the first tag follows the item's blob."""
    g = np.random.default_rng(seed)
    rows = []
    for i in np.flatnonzero(g.random(n) < 0.15):
        tags = {int(labels[i]) % 12} | set(g.integers(0, 40, size=g.integers(0, 3)).tolist())
        rows += [(i, t, 1.0) for t in sorted(tags)]
    return pd.DataFrame(rows, columns=["idx", "tag", "weight"])
