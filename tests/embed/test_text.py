from __future__ import annotations

import os
import sys
import types

import numpy as np
import pandas as pd
import pytest

from ccgraph.embed import TextEmbedder, caption_texts, embed_text
from ccgraph.embed import text as text_mod
from ccgraph.exceptions import InputError, MissingDependencyError, ParameterError


def test_caption_joins_title_description_and_tags_in_item_order():
    items = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "title": ["Red  fox ", None, "", "Sunset"],
            "description": ["<p>Seen in <b>snow</b></p>", "Only text &amp; more", None, ""],
        }
    )
    tags = pd.DataFrame(
        {"id": ["b", "a", "a", "a", "x"], "tag": ["cat", "fox", "winter", "fox", "unknown item"]}
    )
    assert caption_texts(items, tags) == [
        "Red fox. Seen in snow. fox, winter",
        "Only text & more. cat",
        "",
        "Sunset",
    ]


def test_caption_fields_order_subset_and_cut():
    items = pd.DataFrame({"id": ["a"], "title": ["T"], "description": ["D" * 50]})
    tags = pd.DataFrame({"id": ["a"], "tag": ["t1"]})
    assert caption_texts(items, tags, fields=("tags", "title")) == ["t1. T"]
    assert caption_texts(items, None, fields=("title", "description"), max_chars=5) == ["T. DD"]
    assert caption_texts(items.drop(columns="description"), None) == ["T"]
    assert caption_texts(items.iloc[:0], tags) == []


def test_caption_keeps_the_items_index_alignment():
    items = pd.DataFrame({"id": ["b", "a"], "title": ["B", "A"]}, index=[10, 3])
    tags = pd.DataFrame({"id": ["a", "b"], "tag": ["ta", "tb"]})
    assert caption_texts(items, tags) == ["B. tb", "A. ta"]


def test_caption_rejects_bad_arguments():
    items = pd.DataFrame({"id": ["a"], "title": ["x"]})
    with pytest.raises(ParameterError, match="fields"):
        caption_texts(items, None, fields=("body",))
    with pytest.raises(ParameterError, match="max_chars"):
        caption_texts(items, None, max_chars=0)
    with pytest.raises(InputError, match="tag"):
        caption_texts(items, pd.DataFrame({"id": ["a"]}))


class _FakeST:
    """Stands in for SentenceTransformer: records the environment at load time."""

    loads: list[dict[str, str | None]] = []
    encoded: list[list[str]] = []

    def __init__(self, path: str, device: str) -> None:
        assert device == "cpu"
        _FakeST.loads.append(
            {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        )

    def encode(self, texts, batch_size, normalize_embeddings, convert_to_numpy, show_progress_bar):
        assert normalize_embeddings and convert_to_numpy
        _FakeST.encoded.append(list(texts))
        v = np.array([[len(t) + 1.0, 1.0, 0.0] for t in texts], dtype=np.float64)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = _FakeST
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setattr(text_mod, "_MODELS", {})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    _FakeST.loads = []
    _FakeST.encoded = []
    return tmp_path / "model"


def test_model_loads_offline_once_and_environment_is_restored(fake_model):
    emb = embed_text(["a", "bb", ""], ["x", "y", "z"], model=fake_model)
    embed_text(["ccc"], model=fake_model)
    assert _FakeST.loads == [{"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}]
    assert "HF_HUB_OFFLINE" not in os.environ
    assert os.environ["TRANSFORMERS_OFFLINE"] == "0"
    assert emb.shape == (3, 3) and emb.vectors.dtype == np.float32
    assert emb.ids.tolist() == ["x", "y", "z"]
    assert emb.params["n_empty_captions"] == 1


def test_text_embedder_reads_text_or_builds_captions(fake_model):
    e = TextEmbedder(fake_model, max_chars=3)
    assert e.texts(pd.DataFrame({"id": ["a"], "text": ["abcdef"]})) == ["abc"]
    assert e.texts(pd.DataFrame({"id": ["a"], "title": ["T"], "description": ["D"]})) == ["T. "]
    assert (
        e.content_keys(pd.DataFrame({"id": ["a", "b"], "text": ["abcX", "abcY"]}))[0]
        == (e.content_keys(pd.DataFrame({"id": ["q"], "text": ["abc"]}))[0])
    )


def test_each_distinct_text_is_encoded_once(fake_model):
    texts = ["a cat", "", "dog", "a cat", "", "a cat", "bird"]
    emb = embed_text(texts, model=fake_model)
    assert sorted(_FakeST.encoded[0]) == ["", "a cat", "bird", "dog"]
    ref = {t: embed_text([t], model=fake_model).vectors[0] for t in set(texts)}
    for row, t in zip(emb.vectors, texts, strict=True):
        np.testing.assert_array_equal(row, ref[t])
    assert emb.params["n_empty_captions"] == 2


def test_model_identity_changes_with_the_model_folder(fake_model):
    before = TextEmbedder(fake_model).key()
    (fake_model / "config.json").write_text('{"hidden": 1}')
    assert TextEmbedder(fake_model).key() != before


def test_embed_text_checks_lengths_and_model_path(fake_model, tmp_path):
    with pytest.raises(InputError, match="ids"):
        embed_text(["a", "b"], ["x"], model=fake_model)
    with pytest.raises(InputError, match="not a local directory"):
        TextEmbedder(tmp_path / "nowhere")


def test_embed_text_rejects_one_string_and_no_texts(fake_model):
    # A bare string used to be embedded character by character (5 items for "hello"); an
    # empty list failed in a numpy reshape.
    with pytest.raises(ParameterError, match="one str"):
        embed_text("hello", model=fake_model)
    with pytest.raises(InputError, match="`texts` is empty"):
        embed_text([], model=fake_model)


def test_undecodable_bytes_and_lone_surrogates_are_embedded_with_replacements(fake_model):
    # Used to raise UnicodeDecodeError / UnicodeEncodeError from pandas / pyarrow / hashlib.
    emb = embed_text([b"caf\xe9", "caf\udce9", "ok"], model=fake_model)
    assert emb.shape == (3, 3)
    assert _FakeST.encoded[0] == sorted(["caf\ufffd", "ok"])  # both bad texts read "caf\ufffd"
    items = pd.DataFrame({"id": ["a"], "title": pd.Series([b"caf\xe9"], dtype=object)})
    assert caption_texts(items) == ["caf\ufffd"]


def test_a_folder_without_a_model_is_an_input_error(tmp_path, monkeypatch):
    class Broken:
        def __init__(self, path: str, device: str) -> None:
            raise ValueError("Unrecognized model")

    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = Broken
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setattr(text_mod, "_MODELS", {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="does not hold a usable sentence-transformers model"):
        embed_text(["x"], model=tmp_path / "empty")


def test_missing_package_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    monkeypatch.setattr(text_mod, "_MODELS", {})
    with pytest.raises(MissingDependencyError, match=r"ccgraph\[text\]"):
        embed_text(["x"], model=tmp_path / "m")


@pytest.mark.slow  # imports sentence-transformers and loads MiniLM: ~10 s here
def test_minilm_puts_paraphrases_closer_than_unrelated_sentences():
    texts = [
        "A dog runs across the grass.",
        "A puppy is playing in a field.",
        "Two children swim in the sea.",
        "Kids are swimming in the ocean.",
        "The stock market fell sharply today.",
        "",
    ]
    emb = embed_text(texts)
    v = emb.vectors
    assert emb.shape == (6, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    s = v @ v.T
    assert s[0, 1] > max(s[0, 2], s[0, 3], s[0, 4]) + 0.2
    assert s[2, 3] > max(s[2, 0], s[2, 1], s[2, 4]) + 0.2
    assert emb.params["n_empty_captions"] == 1
    # batches pad differently, so equal up to float noise
    assert np.allclose(embed_text(texts[:2]).vectors, v[:2], atol=1e-5)
