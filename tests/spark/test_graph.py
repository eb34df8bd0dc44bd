"""Spark mutual graph and components against the single-machine builders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def test_mutual_graph_equals_build_knn_graph(spark_knn, spark_edges, clustered):
    from ccgraph.graph import build_knn_graph
    from ccgraph.spark.graph import edges_to_csr
    from ccgraph.spark.knn import knn_to_arrays

    x, _ = clustered
    n, k = len(x), 10
    ind, dist = knn_to_arrays(spark_knn, n, k)
    local = build_knn_graph(x, k=k, min_degree=1, knn=(ind, dist)).adjacency
    got = edges_to_csr(spark_edges, n)
    assert (got != 0).sum() == (local != 0).sum()
    assert abs(got - local).max() < 1e-6
    assert np.diff(got.indptr).min() >= 1  # repair leaves no item isolated


def test_plain_mutual_graph_drops_one_sided_pairs(spark_knn, clustered):
    from ccgraph.graph import build_knn_graph
    from ccgraph.spark.graph import edges_to_csr, mutual_graph
    from ccgraph.spark.knn import knn_to_arrays

    x, _ = clustered
    ind, dist = knn_to_arrays(spark_knn, len(x), 10)
    local = build_knn_graph(x, k=10, min_degree=0, knn=(ind, dist)).adjacency
    got = edges_to_csr(mutual_graph(spark_knn, min_degree=0), len(x))
    assert got.nnz == local.nnz
    assert ((got != 0) != (local != 0)).nnz == 0
    assert abs(got - local).max() < 1e-6


def test_connected_components_match_scipy(spark, spark_edges, clustered, nodes):
    from pyspark.sql import functions as F
    from scipy.sparse.csgraph import connected_components as cc

    from ccgraph.spark.graph import connected_components, edges_to_csr

    x, _ = clustered
    cut = float(np.quantile(spark_edges.select("dist").toPandas()["dist"], 0.3))
    edges = spark_edges.where(F.col("dist") <= cut)  # many components and isolated nodes
    adj = edges_to_csr(edges, len(x))
    n_comp, labels = cc(adj, directed=False)
    got = connected_components(edges, nodes).toPandas().sort_values("idx")
    first = np.full(n_comp, len(x))
    np.minimum.at(first, labels, np.arange(len(x)))
    np.testing.assert_array_equal(got.component.to_numpy(), first[labels])  # smallest member
    assert 1 < n_comp < len(x)
    assert np.bincount(labels).max() >= 3


def test_connected_components_long_path(spark):
    from ccgraph.spark.graph import connected_components

    n = 200
    perm = np.random.default_rng(0).permutation(n)  # a path visiting nodes in random order

    edges = spark.createDataFrame(pd.DataFrame({"u": perm[:-1], "v": perm[1:]}))
    nodes = spark.range(n + 5).withColumnRenamed("id", "idx")  # 5 isolated nodes
    got = connected_components(edges, nodes).toPandas().sort_values("idx")
    expect = np.r_[np.zeros(n, dtype=np.int64), np.arange(n, n + 5)]
    np.testing.assert_array_equal(got.component.to_numpy(), expect)
