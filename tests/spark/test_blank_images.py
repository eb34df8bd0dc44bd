"""Spark runs keep blank images out of duplicate groups as the single-machine run does."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccgraph.exceptions import DataQualityWarning
from tests._blank_images import picture_files, run_config
from tests.spark.conftest import PARTITIONS
from tests.spark.test_knn import _codes

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("imagehash")


def _catalog(folder: Path) -> Path:
    """The pictures of :func:`picture_files`, blank ones among the noise, in one catalog."""
    paths = picture_files(folder)
    noise = [f"n{i:02d}" for i in range(16)]
    names = ["black", *noise[:8], "blue", *noise[8:], "red", "blue_copy"]
    return run_config(folder, names, paths)


def _quality(seen: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in seen if issubclass(w.category, DataQualityWarning)]


@pytest.mark.slow  # ~35 s: a whole Spark run (embed, kNN, graph, duplicates, Leiden)
def test_spark_run_groups_blank_images_as_the_local_run(spark, tmp_path: Path) -> None:
    import ccgraph
    from ccgraph.config import load_config
    from ccgraph.spark.pipeline import run_spark

    path = _catalog(tmp_path)
    with warnings.catch_warnings(record=True) as seen_local:
        warnings.simplefilter("always", DataQualityWarning)
        local = ccgraph.run(load_config(path), write=False)
    cfg = load_config(path, ["execution.engine=spark", f"execution.spark_partitions={PARTITIONS}"])
    with warnings.catch_warnings(record=True) as seen_spark:
        warnings.simplefilter("always", DataQualityWarning)
        got = run_spark(cfg, write=False)
    want = dict(zip(local.items["id"], local.items["duplicate_group"], strict=True))
    have = dict(zip(got.items["id"], got.items["duplicate_group"], strict=True))
    # the oracle: the local run groups blue with its byte copy, and no other blank image
    assert want["blue"] == want["blue_copy"]
    assert len({want["black"], want["blue"], want["red"]}) == 3
    assert have["blue"] == have["blue_copy"]
    assert len({have["black"], have["blue"], have["red"]}) == 3
    ids = sorted(want)
    a, b = (pd.factorize(np.array([g[i] for i in ids]))[0] for g in (want, have))
    np.testing.assert_array_equal(a, b)
    # the same warning text as the local run (count, hash kind, example ids)
    blank = [t for t in _quality(seen_spark) if "blank" in t]
    assert len(blank) == 1
    assert blank[0] in _quality(seen_local)


def test_blank_codes_are_grouped_by_file_as_find_duplicates(spark, tmp_path: Path) -> None:
    from ccgraph import Embeddings
    from ccgraph.embed.blank import blank_hash_codes, blank_hash_keys
    from ccgraph.graph import find_duplicates
    from ccgraph.spark.embed import blank_keys, pack_codes
    from ccgraph.spark.graph import duplicate_groups, isolate_pairs
    from ccgraph.spark.knn import hamming_pairs

    g = np.random.default_rng(11)
    n = 240
    codes = _codes(n, seed=11)
    blank = pack_codes(blank_hash_codes("phash"))  # black, and any other uniform colour
    rows = g.choice(n, size=30, replace=False)
    codes[rows] = blank[g.integers(0, len(blank), size=len(rows))]
    rest = np.setdiff1d(np.arange(n), rows)
    near = g.choice(rest, size=6, replace=False)  # 1-2 bits from a blank code: not blank
    codes[near] = blank[-1] ^ (np.int64(1) << g.choice([3, 9], size=len(near)))
    paths: list[str | None] = [None] * n
    for i, r in enumerate(rows[:-1]):  # three distinct files; the last blank row has none
        paths[r] = str(tmp_path / f"{r}.png")
        Path(paths[r]).write_bytes(b"content %d" % (i % 3))
    ids = np.array([f"i{i}" for i in range(n)])
    packed = codes.astype(">i8").view(np.uint8).reshape(-1, 8)
    emb = Embeddings(packed, ids, kind="binary", params={"kind": "phash", "hash_size": 8})
    with pytest.warns(DataQualityWarning) as seen_local:
        keys = blank_hash_keys(emb, paths)
    local = find_duplicates(emb, hamming=4, k=n - 1, backend="exact", isolate=keys)

    df = spark.createDataFrame(pd.DataFrame({"idx": np.arange(n), "code": codes}))
    with pytest.warns(DataQualityWarning) as seen_spark:
        found = blank_keys(df.repartition(PARTITIONS), kind="phash", ids=ids, image_paths=paths)
    assert found is not None
    np.testing.assert_array_equal(found[0], np.sort(rows))
    assert _quality(seen_spark) == _quality(seen_local)
    pairs = isolate_pairs(hamming_pairs(df, radius=4, collapse=True), *found)
    nodes = spark.range(n, numPartitions=PARTITIONS).withColumnRenamed("id", "idx")
    got = duplicate_groups(pairs, nodes).toPandas().sort_values("idx")
    np.testing.assert_array_equal(got.duplicate_group.to_numpy(), local.group)
    np.testing.assert_array_equal(got.is_canonical.to_numpy(), local.is_canonical)
    # the blank rows form one group per file content (3) plus the row without a file
    assert len(set(local.group[rows])) == 4
    assert not set(local.group[rows]) & set(local.group[rest])
