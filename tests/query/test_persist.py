"""The pipeline keeps each modality's vectors in the run directory for later queries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ccgraph
from ccgraph.containers import Embeddings
from ccgraph.exceptions import InputError
from ccgraph.query import embedding_extras, stored_embeddings
from tests.query._hand import hand_run


def test_run_directory_holds_the_vectors(run_dir: Path) -> None:
    man = json.loads((run_dir / "manifest.json").read_text())
    stored = {k: v for k, v in man["extras"].items() if k.startswith("embeddings_")}
    assert stored == {
        "embeddings_precomputed": "embeddings_precomputed.npy",
        "embeddings_precomputed_rows": "embeddings_precomputed_rows.npy",
    }
    # the kNN lists behind the graph are kept too (for incremental updates)
    assert {"knn_precomputed_rows", "knn_precomputed_indices"} <= set(man["extras"])
    assert man["stages"]["embed"]["precomputed"]["normalize"] is True
    vecs = np.load(run_dir / "embeddings_precomputed.npy")
    rows = np.load(run_dir / "embeddings_precomputed_rows.npy")
    assert vecs.dtype == np.float32 and rows.dtype == np.int64
    items = pd.read_parquet(run_dir / "items.parquet")
    src = pd.read_parquet(run_dir.parent / "vectors.parquet").set_index("id")
    want = np.stack(src.loc[items["id"].to_numpy()[rows], "vector"].to_numpy())
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(vecs, want, atol=1e-6)
    loaded = stored_embeddings(ccgraph.load_run(run_dir))["precomputed"]
    assert isinstance(loaded.vectors, np.memmap)
    assert loaded.kind == "dense" and loaded.dim == 16 and "d=16" in repr(loaded)


def test_extras_cover_a_subset_of_items() -> None:
    emb = Embeddings.from_array(np.eye(2), ["c", "a"])
    out = embedding_extras({"image": emb}, np.array(["a", "b", "c"]))
    assert out["embeddings_image_rows"].tolist() == [2, 0]
    with pytest.raises(InputError, match="not items"):
        embedding_extras({"image": emb}, np.array(["a", "b"]))


def test_inconsistent_stored_embeddings_are_refused() -> None:
    run = hand_run()
    extras = dict(run.extras)
    for change, match in (
        ({"embeddings_precomputed_rows": np.arange(3)}, "rows array has 3"),
        ({"embeddings_precomputed_rows": np.arange(7) + 5}, "outside the 7 items"),
    ):
        bad = type(run)(
            run.items,
            run.tags,
            run.clusters,
            run.rejects,
            run.graph,
            run.manifest,
            extras={**extras, **change},
        )
        with pytest.raises(InputError, match=match):
            stored_embeddings(bad)
    lone = type(run)(
        run.items,
        run.tags,
        run.clusters,
        run.rejects,
        run.graph,
        run.manifest,
        extras={"embeddings_precomputed": extras["embeddings_precomputed"]},
    )
    with pytest.raises(InputError, match="without embeddings_precomputed_rows"):
        stored_embeddings(lone)
