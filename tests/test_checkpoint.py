"""Checkpoints that cannot be written or read: the run goes on, with a warning naming why."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from ccgraph._checkpoint import load_graph, load_knn, save_graph, save_knn
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


def _graph(cache: Path, key: str) -> None:
    """A graph checkpoint for ``key`` (kNN lists are kept only beside one)."""
    adj = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32))
    assert save_graph(cache, key, KnnGraph.from_adjacency(adj), {}) is not None


def _lists() -> dict[str, SimpleNamespace]:
    ids = np.array(["a", "b", "c"])
    idx = np.array([[1], [0], [1]])
    return {"g": SimpleNamespace(ids=ids, indices=idx, distances=np.full((3, 1), 0.5))}


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: f.write_bytes(f.read_bytes()[:100]),  # truncated: BadZipFile
        lambda f: f.write_bytes(b""),  # empty: EOFError
        lambda f: f.write_bytes(b"\x93NUMPY garbage"),
    ],
    ids=["truncated", "empty", "garbage"],
)
def test_unreadable_knn_checkpoint_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage
) -> None:
    # before: a truncated or empty knn-*.npz raised BadZipFile / EOFError through `ccgraph run`
    key = "a" * 64
    _graph(tmp_path, key)
    path = save_knn(tmp_path, key, _lists())
    assert path is not None
    got = load_knn(tmp_path, key)
    assert got is not None and got["g"].ids.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(got["g"].indices, [[1], [0], [1]])
    damage(path)
    with caplog.at_level(logging.WARNING):
        assert load_knn(tmp_path, key) is None
    assert "ignoring unreadable kNN checkpoint" in caplog.text and path.name in caplog.text


def test_knn_checkpoint_saved_under_another_key_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # before: the kNN lists were trusted by file name alone (a renamed or copied file was used)
    old, new = "a" * 64, "b" * 64
    _graph(tmp_path, old)
    _graph(tmp_path, new)
    path = save_knn(tmp_path, old, _lists())
    path.rename(path.with_name(f"knn-{new[:32]}.npz"))
    with caplog.at_level(logging.WARNING):
        assert load_knn(tmp_path, new) is None
    assert "saved under another key" in caplog.text


def test_unreadable_graph_checkpoint_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = "c" * 64
    adj = sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=np.float32))
    path = save_graph(tmp_path, key, KnnGraph.from_adjacency(adj), {"n": 2})
    restored = load_graph(tmp_path, key)
    assert restored is not None and restored[1] == {"n": 2}
    assert (restored[0].adjacency != adj).nnz == 0
    path.write_bytes(path.read_bytes()[:200])
    with caplog.at_level(logging.WARNING):
        assert load_graph(tmp_path, key, resume=True) is None
    assert "ignoring unreadable graph checkpoint" in caplog.text


def test_resume_into_an_empty_cache_says_where_it_looked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # before: "no graph checkpoint matches this run's embeddings and `graph` settings" also
    # when the cache folder was simply another one (a different `--out`)
    with caplog.at_level(logging.WARNING):
        assert load_graph(tmp_path / "new-cache", "d" * 64, resume=True) is None
    assert "none at all in" in caplog.text and "--out" in caplog.text
    _graph(tmp_path, "e" * 64)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert load_graph(tmp_path, "d" * 64, resume=True) is None
    assert "settings" in caplog.text and "none at all" not in caplog.text
