"""What a run keeps for updates: embeddings, kNN lists and the persist stage of the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import ccgraph
from ccgraph.graph import knn_search
from ccgraph.update._persist import read_embeddings, read_knn_lists


def test_run_keeps_embeddings_and_knn_lists(base_run: Path) -> None:
    run = ccgraph.load_run(base_run)
    assert {
        "embeddings_precomputed",
        "embeddings_precomputed_rows",
        "knn_precomputed_rows",
        "knn_precomputed_indices",
        "knn_precomputed_distances",
    } <= set(run.extras)
    emb = read_embeddings(run.extras, run.ids, run.manifest["stages"]["embed"])["precomputed"]
    vectors = pd.read_parquet(base_run.parent / "vectors.parquet")
    want = np.stack(vectors["vector"].to_numpy()).astype(np.float32)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    pos = pd.Index(vectors["id"]).get_indexer(emb.ids)
    np.testing.assert_allclose(np.asarray(emb.vectors), want[pos], atol=1e-6)
    lists = read_knn_lists(run.extras, run.ids)["precomputed"]
    idx, dist = knn_search(emb, k=8, backend="exact")
    np.testing.assert_array_equal(lists.indices, idx)
    np.testing.assert_allclose(lists.distances, dist, atol=1e-6)
    # the stored lists give back the stored graph
    g = ccgraph.graph.build_knn_graph(emb, k=8, min_degree=2, knn=(idx, dist))
    assert abs(g.adjacency - run.graph.adjacency).max() < 1e-6


def test_manifest_records_what_an_update_needs(base_run: Path) -> None:
    run = ccgraph.load_run(base_run)
    persist = run.manifest["stages"]["persist"]
    n_levels = len([c for c in run.items.columns if c.startswith("cluster_l")])
    assert persist["level_resolutions"] == sorted(persist["level_resolutions"])
    assert len(persist["next_id"]) == n_levels
    for i, nid in enumerate(persist["next_id"]):
        assert nid == run.items[f"cluster_l{i}"].max() + 1
    assert persist["base_dir"] == str(base_run.parent)
    # the graph stage still records the backend and recall as a direct build does
    assert run.manifest["stages"]["graph"]["backend_used"] == "exact"
