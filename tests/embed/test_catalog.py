from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ccgraph.config import EmbedConfig
from ccgraph.containers import Catalog
from ccgraph.embed import embed_catalog, make_image_embedder
from ccgraph.embed.cnn import CnnEmbedder
from ccgraph.embed.images import HashEmbedder, PixelEmbedder
from ccgraph.exceptions import ConfigError, InputError


@pytest.fixture
def catalog(tmp_path, scene_files, bad_files):
    rel = scene_files[1].relative_to(tmp_path)
    items = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "title": ["Red fox", "Blue sea", "", "Night", "Cat"],
            "description": ["", "Waves", "", "", ""],
            "image_path": [str(scene_files[0]), str(rel), None, str(bad_files["corrupt"]), np.nan],
            "url": [None, None, "https://example.org/c.jpg", None, None],
        }
    )
    tags = pd.DataFrame({"id": ["a", "e"], "tag": ["fox", "cat"]})
    return Catalog(items, tags)


def test_images_and_precomputed(tmp_path, catalog):
    np.save(tmp_path / "v.npy", np.arange(10, dtype=float).reshape(5, 2) + 1)
    cfg = EmbedConfig.model_validate(
        {"text": {"enabled": False}, "image": {"kind": "phash"}, "precomputed": {"path": "v.npy"}}
    )
    out, rejects = embed_catalog(catalog, cfg, base_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert set(out) == {"image", "precomputed"}
    assert out["image"].ids.tolist() == ["a", "b"] and out["image"].kind == "binary"
    assert out["precomputed"].ids.tolist() == ["a", "b", "c", "d", "e"]
    assert rejects["row"].tolist() == [3, 4, 5]
    assert rejects["id"].tolist() == ["c", "d", "e"]
    assert rejects["reason"].iloc[0] == "no local image (URL only)"
    assert rejects["reason"].iloc[2] == "no image path or URL"
    again, _ = embed_catalog(catalog, cfg, base_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert np.array_equal(again["image"].vectors, out["image"].vectors)


@pytest.mark.parametrize("cached", [True, False])
def test_progress_bars_work_with_and_without_cache(tmp_path, catalog, cached):
    cfg = EmbedConfig.model_validate({"text": {"enabled": False}, "image": {"kind": "pixels"}})
    cache_dir = tmp_path / "cache" if cached else None
    out, _ = embed_catalog(catalog, cfg, base_dir=tmp_path, cache_dir=cache_dir, show_progress=True)
    assert out["image"].ids.tolist() == ["a", "b"]


def test_nothing_enabled_is_a_config_error(catalog):
    cfg = EmbedConfig.model_validate({"text": {"enabled": False}})
    with pytest.raises(ConfigError, match="no embedding is enabled"):
        embed_catalog(catalog, cfg)


def test_make_image_embedder_follows_the_config():
    def make(**image):
        return make_image_embedder(EmbedConfig.model_validate({"image": image}).image, n_jobs=1)

    assert isinstance(make(kind="dhash"), HashEmbedder) and make(kind="dhash").hash_kind == "dhash"
    px = make(kind="pixels", pixels_size=16, pixels_grey=True)
    assert isinstance(px, PixelEmbedder) and px.dim == 256
    cnn = make(kind="cnn", batch_size=7, max_pixels=1000)
    assert isinstance(cnn, CnnEmbedder) and cnn.batch_size == 7 and cnn.max_pixels == 1000
    with pytest.raises(ConfigError):
        make(kind="none")


@pytest.mark.slow  # loads MiniLM
def test_text_covers_every_item_and_counts_empty_captions(tmp_path, catalog):
    cfg = EmbedConfig.model_validate({"text": {"enabled": True}})
    out, rejects = embed_catalog(catalog, cfg, cache_dir=tmp_path / "cache")
    assert set(out) == {"text"} and len(rejects) == 0
    assert out["text"].ids.tolist() == ["a", "b", "c", "d", "e"]
    assert out["text"].params["n_empty_captions"] == 1
    warm, _ = embed_catalog(catalog, cfg, cache_dir=tmp_path / "cache")
    assert np.array_equal(warm["text"].vectors, out["text"].vectors)
    assert warm["text"].params["n_empty_captions"] == 1


def test_all_images_under_a_missing_folder_names_the_folder(tmp_path):
    # Used to say only "file not found" for every item, not which folder was wrong.
    items = pd.DataFrame({"id": ["a", "b"], "image_path": ["x.jpg", "y.jpg"]})
    cfg = EmbedConfig.model_validate({"text": {"enabled": False}, "image": {"kind": "phash"}})
    with pytest.raises(InputError, match=r"image folder '.*nowhere' is not an existing folder"):
        embed_catalog(
            Catalog(items, pd.DataFrame({"id": [], "tag": []})), cfg, base_dir=tmp_path / "nowhere"
        )


def test_every_caption_empty_is_an_input_error(catalog):
    # Used to embed every item as the empty string: identical vectors, a meaningless graph.
    items = catalog.items.assign(title="", description=None)
    cfg = EmbedConfig.model_validate({"text": {"fields": ["title", "description"]}})
    with pytest.raises(InputError, match=r"every caption is empty.*\['title', 'description'\]"):
        embed_catalog(Catalog(items, catalog.tags.iloc[:0]), cfg)
