"""Checkpoints that cannot be written: the run goes on and the warning names the right key."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from ccgraph._checkpoint import save_graph, save_knn
from ccgraph.containers import KnnGraph


def test_unwritable_cache_dir_names_embed_cache_dir(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # before: "choose a writable output directory (`output.dir` in the config or `--out`)",
    # although the folder comes from `embed.cache_dir`
    cache = tmp_path / "a-file"
    cache.write_text("x")
    graph = KnnGraph.from_adjacency(sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=np.float32)))
    knn = SimpleNamespace(ids=["a", "b"], indices=np.zeros((2, 1)), distances=np.zeros((2, 1)))
    lists = {"g": knn}
    with caplog.at_level(logging.WARNING):
        assert save_graph(cache, "k" * 64, graph, {}) is None
        assert save_knn(cache, "k" * 64, lists) is None
    text = caplog.text
    assert text.count("set `embed.cache_dir` to a writable folder") == 2
    assert "output.dir" not in text
