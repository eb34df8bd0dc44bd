"""Spark kNN against the single-machine exact search and brute-force Hamming pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.spark.conftest import PARTITIONS, vectors_frame

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def test_dense_knn_recall_against_exact(spark_knn, clustered):
    from ccgraph.graph import knn_search
    from ccgraph.spark.knn import knn_to_arrays

    x, _ = clustered
    k = 10
    ind, dist = knn_to_arrays(spark_knn, len(x), k)
    exact, _exact_d = knn_search(x, k=k, backend="exact")
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(ind, exact, strict=True)])
    assert recall >= 0.95, recall
    # every listed distance is the true cosine distance, sorted within the row
    found = ind >= 0
    rows = np.nonzero(found)[0]
    true = 1.0 - np.einsum("ij,ij->i", x[rows], x[ind[found]])
    np.testing.assert_allclose(dist[found], true, atol=1e-5)
    assert (np.diff(np.where(found, dist, np.inf), axis=1) >= 0).all()
    assert not (ind == np.arange(len(x))[:, None]).any()


def test_dense_knn_uses_several_partitions(spark_knn):
    from pyspark.sql import functions as F

    parts = spark_knn.select(F.spark_partition_id().alias("p")).distinct().count()
    assert parts > 1


def _codes(n: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    base = g.integers(0, 2**63, size=n // 4, dtype=np.int64)
    codes = base[g.integers(0, len(base), size=n)]
    flips = g.integers(0, 4, size=n)  # 0-3 random bit flips per copy
    for i in range(n):
        for b in g.choice(64, size=flips[i], replace=False):
            codes[i] ^= np.int64(1) << np.int64(b)
    return codes


def _brute_pairs(codes: np.ndarray, radius: int) -> set[tuple[int, int]]:
    u = codes.view(np.uint64)
    x = np.bitwise_count(u[:, None] ^ u[None, :])
    i, j = np.nonzero(np.triu(x <= radius, k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.mark.parametrize("radius", [0, 3, 5])
def test_hamming_pairs_exact(spark, radius):
    from ccgraph.spark.knn import hamming_pairs

    codes = _codes(600, seed=radius)
    df = spark.createDataFrame(
        pd.DataFrame({"idx": np.arange(len(codes)), "code": codes})
    ).repartition(PARTITIONS)
    got = hamming_pairs(df, radius=radius).toPandas()
    assert set(zip(got.u.tolist(), got.v.tolist(), strict=True)) == _brute_pairs(codes, radius)
    u = codes.view(np.uint64)
    expect = np.bitwise_count(u[got.u.to_numpy()] ^ u[got.v.to_numpy()])
    np.testing.assert_array_equal(got.dist.to_numpy(), expect)


def test_duplicate_groups_match_find_duplicates(spark, nodes):
    from ccgraph import Embeddings
    from ccgraph.graph import find_duplicates
    from ccgraph.spark.graph import duplicate_groups
    from ccgraph.spark.knn import hamming_pairs

    codes = _codes(400, seed=7)
    codes[50:60] = codes[3]  # a code shared by many items (collapsed into a star)
    packed = codes.astype(">i8").view(np.uint8).reshape(-1, 8)
    local = find_duplicates(
        Embeddings(packed, np.arange(len(codes)).astype(str), kind="binary"), hamming=4, k=30
    )
    df = spark.createDataFrame(
        pd.DataFrame({"idx": np.arange(len(codes)), "code": codes})
    ).repartition(PARTITIONS)
    pairs = hamming_pairs(df, radius=4, collapse=True)
    node_df = spark.range(len(codes), numPartitions=PARTITIONS).withColumnRenamed("id", "idx")
    got = duplicate_groups(pairs, node_df).toPandas().sort_values("idx")
    np.testing.assert_array_equal(got.duplicate_group.to_numpy(), local.group)
    np.testing.assert_array_equal(got.is_canonical.to_numpy(), local.is_canonical)


def _with_copies(seed: int) -> np.ndarray:
    """400 distinct unit vectors plus 140 copies: one group of 60 (> k + 1), many pairs."""
    g = np.random.default_rng(seed)
    x = g.normal(size=(400, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    src = np.concatenate([np.full(60, 7), g.integers(0, 400, size=80)])
    return np.vstack([x, x[src]])[g.permutation(540)]


def test_duplicates_one_cell_equals_local_exact(spark):
    from ccgraph.graph import knn_search
    from ccgraph.spark.knn import knn_dense, knn_to_arrays

    x = _with_copies(11)
    k = 8
    ind, dist = knn_to_arrays(knn_dense(vectors_frame(spark, x), k=k, n_cells=1), len(x), k)
    ref_i, ref_d = knn_search(x, k=k, backend="exact")
    np.testing.assert_array_equal(ind, ref_i)  # the same lists, ties by the lower idx
    np.testing.assert_allclose(dist, ref_d, rtol=0, atol=1e-6)
    big = np.flatnonzero((x == x[np.argmax((x[:, None] == x[None]).all(-1).sum(1))]).all(1))
    assert len(big) == 61
    for i in big:  # a group larger than k lists its lowest other members, at distance 0
        assert ind[i].tolist() == [j for j in big if j != i][:k]
        assert (dist[i] == 0).all()


def test_duplicates_divide_and_merge(spark):
    from ccgraph.graph import knn_search
    from ccgraph.spark.knn import knn_dense, knn_to_arrays

    x = _with_copies(12)
    k = 8
    knn = knn_dense(vectors_frame(spark, x), k=k, cell_size=200, n_probe=3, rng=0)
    ind, dist = knn_to_arrays(knn, len(x), k)
    ref_i, _ = knn_search(x, k=k, backend="exact")
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(ind, ref_i, strict=True)])
    assert recall >= 0.95, recall
    same = (x[ind] == x[:, None, :]).all(-1)
    copies = (x[:, None] == x[None]).all(-1).sum(1) - 1
    assert (same.sum(1) == np.minimum(copies, k)).all()  # every copy listed (up to k), at 0
    assert (dist[same] == 0).all() and (dist[~same] > 0).all()
    assert not (ind == np.arange(len(x))[:, None]).any()
