"""``execution.engine: spark`` end to end against the single-machine run of the same config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.mark.slow
def test_spark_run_gives_the_local_clusters(spark, tmp_path: Path) -> None:
    import ccgraph
    from ccgraph.cluster import adjusted_rand_index
    from ccgraph.config import load_config
    from ccgraph.spark.pipeline import run_spark
    from tests.test_pipeline import write_config

    path = write_config(tmp_path)
    tols = ["propagate.tags.tol=1e-4", "propagate.popularity.tol=1e-8"]
    local = ccgraph.run(load_config(path, tols), write=False)
    cfg = load_config(path, [*tols, "execution.engine=spark", "execution.spark_partitions=4"])
    got = run_spark(cfg, out=tmp_path / "spark_run")
    a = local.items.set_index("id")
    b = got.items.set_index("id").loc[a.index]
    for col in [c for c in a.columns if c.startswith("cluster_l")]:
        assert adjusted_rand_index(a[col].to_numpy(), b[col].to_numpy()) == pytest.approx(1.0)
    # the same edges; weights equal up to float32 rounding (cell-blocked vs whole dot products)
    adj_a, adj_b = local.graph.adjacency, got.graph.adjacency
    assert ((adj_a != 0) != (adj_b != 0)).nnz == 0
    assert abs(adj_a - adj_b).max() <= 1e-6
    np.testing.assert_array_equal(a["duplicate_group"], b["duplicate_group"])
    inf_a = local.tags[local.tags.source == "inferred"].groupby("id")["tag"].apply(set)
    inf_b = got.tags[got.tags.source == "inferred"].groupby("id")["tag"].apply(set)
    assert inf_a.index.equals(inf_b.index)
    assert (inf_a == inf_b).mean() >= 0.95
    np.testing.assert_allclose(
        a["popularity"].to_numpy(np.float64), b["popularity"].to_numpy(np.float64), atol=1e-6
    )
    assert got.manifest["stages"]["engine"]["name"] == "spark"
    edges = pd.read_parquet(got.path / "spark" / "edges")
    assert len(edges) == got.graph.n_edges
