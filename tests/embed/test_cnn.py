from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ccgraph.embed import CnnEmbedder
from ccgraph.embed.cnn import CROP_FRACTION, INPUT_SIZE, normalize, preprocess
from tests.conftest import require_data
from tests.embed._images import jpeg_bytes
from tests.embed.conftest import items_for


def test_preprocess_takes_the_centred_square_crop():
    w, h = 400, 300
    side = round(CROP_FRACTION * min(w, h))
    left, top = (w - side) // 2, (h - side) // 2
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[:] = (255, 0, 0)  # red outside the crop
    arr[top : top + side, left : left + side] = (0, 0, 255)  # blue inside
    out = preprocess(Image.fromarray(arr))
    assert out.shape == (INPUT_SIZE, INPUT_SIZE, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 0).all() and (out[..., 2] == 255).all()


def test_preprocess_handles_tall_and_tiny_images():
    assert preprocess(Image.new("RGB", (30, 500), (9, 9, 9))).shape == (224, 224, 3)
    assert preprocess(Image.new("RGB", (1, 1), (9, 9, 9))).shape == (224, 224, 3)


def test_normalize_maps_to_minus_one_one_channels_first():
    batch = np.zeros((2, 224, 224, 3), dtype=np.uint8)
    batch[0, ..., 0] = 255
    batch[0, ..., 1] = 0
    batch[0, ..., 2] = 127
    x = normalize(batch)
    assert x.shape == (2, 3, 224, 224) and x.dtype == np.float32
    assert np.allclose(x[0, 0], 1.0) and np.allclose(x[0, 1], -127 / 128)
    assert np.allclose(x[0, 2], 0.0)
    assert x.flags["C_CONTIGUOUS"]


@pytest.mark.slow  # loads torch and the network: ~8-25 s on this machine
def test_features_are_1280_d_unit_deterministic_and_batch_independent(tmp_path):
    folder = require_data("flickr8k-1000", "images")
    photos = sorted(Path(folder).glob("*.jpg"))[:3]
    copy = tmp_path / "copy.jpg"
    im = Image.open(photos[0]).convert("RGB")
    copy.write_bytes(jpeg_bytes(im.resize((im.width * 2 // 3, im.height * 2 // 3)), 50))
    items = items_for([*photos, copy])
    a = CnnEmbedder(batch_size=4).embed(items).embeddings
    b = CnnEmbedder(batch_size=1, n_jobs=1).embed(items).embeddings
    assert a.shape == (4, 1280) and a.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(a.vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(a.vectors, b.vectors, atol=1e-5)
    again = CnnEmbedder(batch_size=4).embed(items).embeddings
    assert np.array_equal(a.vectors, again.vectors)
    sims = a.vectors @ a.vectors.T
    assert sims[0, 3] > max(sims[0, 1], sims[0, 2])  # a re-encoded copy is the nearest
    assert (a.vectors >= 0).all()  # pooled ReLU6 activations


@pytest.mark.slow
def test_pooled_features_match_the_network_head(tmp_path):
    # The classifier applied to our pooled features reproduces the network's own logits.
    import torch

    from ccgraph.embed.cnn import load_cnn

    folder = require_data("flickr8k-1000", "images")
    photo = sorted(Path(folder).glob("*.jpg"))[5]
    model = load_cnn()
    x = torch.from_numpy(normalize(preprocess(Image.open(photo).convert("RGB"))[None]))
    with torch.inference_mode():
        logits = model(x)
        pooled = model.extract_features(x).mean(dim=(2, 3))
        again = model._fc(pooled)
    assert pooled.shape == (1, 1280)
    assert torch.allclose(logits, again, atol=1e-4)


def test_missing_torch_names_the_image_extra(monkeypatch):
    import importlib.util
    import sys

    from ccgraph.exceptions import MissingDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"ccgraph\[image\]"):
        CnnEmbedder()


def test_cnn_embedder_is_an_embedder_with_a_stable_key():
    from ccgraph.embed import Embedder

    e = CnnEmbedder(batch_size=8, n_jobs=1)
    assert isinstance(e, Embedder)
    assert e.key() == CnnEmbedder(batch_size=64).key()
    assert e.params["preprocess"] == "crop0.875-bicubic224-mean127-std128"
