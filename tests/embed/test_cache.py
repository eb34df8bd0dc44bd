from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ccgraph.embed import EmbeddingCache, HashEmbedder, PixelEmbedder, embed_with_cache
from ccgraph.embed.base import EmbedOutput, dense_embeddings, embedder_key, make_rejects
from tests.embed.conftest import items_for


class CountingEmbedder:
    """A deterministic fake text embedder that counts the items it embeds."""

    name = "fake"
    kind = "dense"
    dim = 4

    def __init__(self, salt: str = "", fail_on_call: int | None = None) -> None:
        self.salt = salt
        self.calls = 0
        self.embedded: list[str] = []
        self.fail_on_call = fail_on_call

    @property
    def params(self) -> dict[str, Any]:
        return {"salt": self.salt}

    def key(self) -> str:
        return embedder_key(self.name, "1", self.params)

    def content_keys(self, items: pd.DataFrame) -> list[str | None]:
        return [None if t == "?" else hashlib.sha256(t.encode()).hexdigest() for t in items["text"]]

    @staticmethod
    def vector(text: str) -> np.ndarray:
        v = np.array([len(text), text.count("a"), text.count("b"), 1.0], dtype=np.float32)
        return v / np.linalg.norm(v)

    def embed(self, items: pd.DataFrame) -> EmbedOutput:
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        texts = items["text"].tolist()
        self.embedded += texts
        bad = [t.startswith("bad") for t in texts]
        ok = [i for i, b in enumerate(bad) if not b]
        rej = [(None, i + 1, items["id"].iloc[i], "bad text") for i, b in enumerate(bad) if b]
        vecs = np.stack([self.vector(texts[i]) for i in ok]) if ok else np.zeros((0, 4), np.float32)
        emb = dense_embeddings(
            vecs, items["id"].iloc[ok].to_numpy(), {"embedder": "fake", **self.params}
        )
        return EmbedOutput(emb, make_rejects(rej))


def frame(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"t{k}" for k in range(len(texts))], "text": texts})


def test_cold_then_warm_rerun_does_not_call_the_model(tmp_path):
    items = frame(["aa", "ab", "bbb", "bad one", "c"])
    cold_e = CountingEmbedder()
    cold = embed_with_cache(cold_e, items, tmp_path, chunk_size=2)
    assert cold.stats["cache_hits"] == 0 and cold.stats["cache_misses"] == 5
    warm_e = CountingEmbedder()
    warm = embed_with_cache(warm_e, items, tmp_path, chunk_size=2)
    assert warm_e.calls == 1  # only the reject is tried again
    assert warm_e.embedded == ["bad one"]
    assert warm.stats["cache_hits"] == 4
    assert np.array_equal(warm.embeddings.vectors, cold.embeddings.vectors)
    assert warm.embeddings.ids.tolist() == ["t0", "t1", "t2", "t4"]
    pd.testing.assert_frame_equal(warm.rejects, cold.rejects)
    assert cold.rejects["row"].tolist() == [4] and cold.rejects["id"].tolist() == ["t3"]


def test_cached_result_equals_direct_embedding(tmp_path):
    items = frame(["x", "bad", "abab", "ba", "zz"])
    direct = CountingEmbedder().embed(items)
    cached = embed_with_cache(CountingEmbedder(), items, tmp_path, chunk_size=2)
    assert np.array_equal(direct.embeddings.vectors, cached.embeddings.vectors)
    assert np.array_equal(direct.embeddings.ids, cached.embeddings.ids)
    pd.testing.assert_frame_equal(direct.rejects, cached.rejects)


def test_only_new_or_changed_items_are_embedded(tmp_path):
    embed_with_cache(CountingEmbedder(), frame(["a", "b"]), tmp_path)
    e = CountingEmbedder()
    out = embed_with_cache(e, frame(["a", "b changed", "new"]), tmp_path)
    assert sorted(e.embedded) == ["b changed", "new"]
    assert out.embeddings.ids.tolist() == ["t0", "t1", "t2"]
    assert np.allclose(out.embeddings.vectors[1], CountingEmbedder.vector("b changed"))


def test_other_parameters_are_a_miss(tmp_path):
    embed_with_cache(CountingEmbedder("one"), frame(["a"]), tmp_path)
    e = CountingEmbedder("two")
    embed_with_cache(e, frame(["a"]), tmp_path)
    assert e.embedded == ["a"]


def test_identical_content_is_embedded_once(tmp_path):
    e = CountingEmbedder()
    out = embed_with_cache(e, frame(["same", "same", "other", "bad", "bad"]), tmp_path)
    assert sorted(e.embedded) == ["bad", "other", "same"]
    assert out.embeddings.ids.tolist() == ["t0", "t1", "t2"]
    assert out.rejects["id"].tolist() == ["t3", "t4"] and out.rejects["row"].tolist() == [4, 5]


def test_items_without_content_key_are_embedded_but_not_cached(tmp_path):
    e = CountingEmbedder()
    out = embed_with_cache(e, frame(["?", "a"]), tmp_path)
    assert out.embeddings.ids.tolist() == ["t0", "t1"]
    e2 = CountingEmbedder()
    embed_with_cache(e2, frame(["?", "a"]), tmp_path)
    assert e2.embedded == ["?"]


def test_interrupted_run_keeps_finished_shards(tmp_path):
    items = frame([f"item{k}" for k in range(7)])
    with pytest.raises(KeyboardInterrupt):
        embed_with_cache(CountingEmbedder(fail_on_call=3), items, tmp_path, chunk_size=2)
    cache = EmbeddingCache(tmp_path, CountingEmbedder())
    assert len(cache) == 4
    assert not list(tmp_path.rglob("*.tmp"))
    e = CountingEmbedder()
    out = embed_with_cache(e, items, tmp_path, chunk_size=2)
    assert e.embedded == ["item4", "item5", "item6"]
    assert out.embeddings.n_items == 7


def test_broken_shards_are_ignored(tmp_path):
    embed_with_cache(CountingEmbedder(), frame(["a", "b"]), tmp_path)
    shard_dir = next(tmp_path.glob("fake-*")) / "shards"
    keys = next(shard_dir.glob("*.keys.npy"))
    (shard_dir / "zzz.keys.npy").write_bytes(b"not numpy")  # a stray, unreadable index file
    (shard_dir / "orphan.vecs.npy").write_bytes(b"")  # vectors whose keys never got written
    e = CountingEmbedder()
    out = embed_with_cache(e, frame(["a", "b"]), tmp_path)
    assert e.calls == 0 and out.embeddings.n_items == 2
    keys.unlink()
    e = CountingEmbedder()
    embed_with_cache(e, frame(["a", "b"]), tmp_path)
    assert sorted(e.embedded) == ["a", "b"]


def test_image_cache_is_content_addressed(tmp_path, scene_files):
    cache_dir = tmp_path / "cache"
    items = items_for(scene_files)
    cold = embed_with_cache(HashEmbedder("phash"), items, cache_dir)
    moved = tmp_path / "moved.jpg"
    moved.write_bytes(scene_files[0].read_bytes())
    warm = embed_with_cache(HashEmbedder("phash"), items_for([moved, *scene_files[1:]]), cache_dir)
    assert warm.stats["cache_hits"] == 4 and warm.stats["cache_misses"] == 0
    assert warm.embeddings.vectors.dtype == np.uint8
    assert np.array_equal(warm.embeddings.vectors, cold.embeddings.vectors)
    assert warm.embeddings.params == HashEmbedder("phash").embed(items).embeddings.params
    scene_files[1].write_bytes(scene_files[2].read_bytes())  # file content changed
    again = embed_with_cache(HashEmbedder("phash"), items, cache_dir)
    assert again.stats["cache_hits"] == 4  # its new content is scene 2's, already cached
    assert np.array_equal(again.embeddings.vectors[1], cold.embeddings.vectors[2])


def test_image_rejects_survive_the_cache(tmp_path, bad_files, scene_files):
    items = items_for([scene_files[0], *bad_files.values()])
    direct = PixelEmbedder(size=8).embed(items)
    cached = embed_with_cache(PixelEmbedder(size=8), items, tmp_path / "c")
    warm = embed_with_cache(PixelEmbedder(size=8), items, tmp_path / "c")
    for out in (cached, warm):
        pd.testing.assert_frame_equal(out.rejects, direct.rejects)
        assert np.array_equal(out.embeddings.vectors, direct.embeddings.vectors)


def test_cache_refuses_vectors_of_another_width(tmp_path):
    cache = EmbeddingCache(tmp_path, CountingEmbedder())
    cache.put(["k1"], np.ones((1, 4), np.float32))
    with pytest.raises(Exception, match="width"):
        cache.put(["k2"], np.ones((1, 5), np.float32))


def test_a_cache_dir_that_is_a_file_names_the_key(tmp_path) -> None:
    # before: the message named only the folder, not the setting to change
    from ccgraph.exceptions import OutputError

    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"set `embed\.cache_dir` to a writable folder"):
        EmbeddingCache(tmp_path / "f", CountingEmbedder())


@pytest.mark.parametrize("which", ["keys", "vecs"])
def test_an_empty_shard_file_is_skipped(tmp_path, which, caplog):
    # before: a 0-byte shard file (disk full, killed copy) raised EOFError from np.load
    embed_with_cache(CountingEmbedder(), frame(["a", "b"]), tmp_path)
    shard_dir = next(tmp_path.glob("fake-*")) / "shards"
    next(shard_dir.glob(f"*.{which}.npy")).write_bytes(b"")
    e = CountingEmbedder()
    with caplog.at_level("WARNING"):
        out = embed_with_cache(e, frame(["a", "b"]), tmp_path)
    assert "skipping unreadable cache shard" in caplog.text
    assert sorted(e.embedded) == ["a", "b"] and out.embeddings.n_items == 2
    np.testing.assert_allclose(out.embeddings.vectors[0], CountingEmbedder.vector("a"))
