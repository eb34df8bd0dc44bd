from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from ccgraph.embed import HashEmbedder, PixelEmbedder
from ccgraph.embed.base import Embedder
from ccgraph.exceptions import DataQualityWarning, InputError, ParameterError
from tests.conftest import require_data
from tests.embed._images import edits, jpeg_bytes, scene
from tests.embed.conftest import items_for

IMAGEHASH = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "whash": imagehash.whash,
    "ahash": imagehash.average_hash,
}


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


def test_embedders_follow_the_protocol():
    assert isinstance(HashEmbedder(), Embedder)
    assert isinstance(PixelEmbedder(), Embedder)


@pytest.mark.parametrize("kind", sorted(IMAGEHASH))
@pytest.mark.parametrize("hash_size", [8, 16])
def test_packed_bits_equal_imagehash_bits(tmp_path, kind, hash_size):
    paths = []
    for s in range(3):
        p = tmp_path / f"s{s}.png"
        scene(s).save(p)
        paths.append(p)
    out = HashEmbedder(kind, hash_size, n_jobs=1).embed(items_for(paths))
    codes = out.embeddings.vectors
    assert out.embeddings.kind == "binary"
    assert codes.dtype == np.uint8 and codes.shape == (3, hash_size * hash_size // 8)
    refs = [IMAGEHASH[kind](Image.open(p).convert("RGB"), hash_size=hash_size) for p in paths]
    for code, ref in zip(codes, refs, strict=True):
        assert np.array_equal(np.unpackbits(code).astype(bool), ref.hash.ravel())
        assert code.tobytes().hex() == str(ref)
    assert hamming(codes[0], codes[1]) == refs[0] - refs[1]


@pytest.mark.parametrize("kind", sorted(IMAGEHASH))
def test_near_duplicates_are_close_and_unrelated_far(tmp_path, kind):
    paths, group = [], []
    for s in range(5):
        im = scene(s)
        for name, e in {"orig": im, **edits(im)}.items():
            p = tmp_path / f"{s}_{name}.jpg"
            p.write_bytes(jpeg_bytes(e, 92))
            paths.append(p)
            group.append(s)
    codes = HashEmbedder(kind).embed(items_for(paths)).embeddings.vectors
    group = np.array(group)
    near, far = [], []
    for i in range(len(paths)):
        for j in range(i + 1, len(paths)):
            (near if group[i] == group[j] else far).append(hamming(codes[i], codes[j]))
    assert max(near) < min(far)
    assert np.mean(near) <= 8 and np.mean(far) >= 20


def test_bad_files_become_rejects_not_errors(bad_files, scene_files):
    paths = [scene_files[0], *bad_files.values(), scene_files[1], None, None]
    urls = [None] * (len(paths) - 2) + ["https://example.org/x.jpg", None]
    items = items_for(paths, urls)
    out = HashEmbedder("phash").embed(items)
    assert out.embeddings.ids.tolist() == ["i0", f"i{len(bad_files) + 1}"]
    rej = out.rejects
    assert list(rej.columns) == ["file", "row", "id", "stage", "reason"]
    assert (rej["stage"] == "embed").all()
    assert rej["row"].tolist() == [*range(2, len(bad_files) + 2), len(paths) - 1, len(paths)]
    assert rej["id"].tolist() == [f"i{r - 1}" for r in rej["row"]]
    reasons = rej["reason"].tolist()
    assert "no local image (URL only)" in reasons and "no image path or URL" in reasons
    assert rej["file"].iloc[-2] == "https://example.org/x.jpg"
    assert out.stats["n_rejected"] == len(bad_files) + 2


def test_all_rejected_gives_empty_embeddings(bad_files):
    out = PixelEmbedder(size=8).embed(items_for(list(bad_files.values())))
    assert out.embeddings.shape == (0, 8 * 8 * 3)
    assert len(out.rejects) == len(bad_files)


def test_parallel_decoding_matches_serial(scene_files):
    items = items_for(scene_files * 3)
    items["id"] = [f"x{k}" for k in range(len(items))]
    a = PixelEmbedder(n_jobs=1).embed(items).embeddings
    b = PixelEmbedder(n_jobs=2).embed(items).embeddings
    assert np.array_equal(a.vectors, b.vectors) and np.array_equal(a.ids, b.ids)


def test_pixel_vectors_are_centred_box_thumbnails(tmp_path):
    # A 64x64 image box-resized to 32x32 is the mean of each 2x2 block (oracle).
    rng = np.random.default_rng(1)
    arrs = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    paths = []
    for k, a in enumerate(arrs):
        p = tmp_path / f"r{k}.png"
        Image.fromarray(a).save(p)
        paths.append(p)
    emb = PixelEmbedder(size=32).embed(items_for(paths)).embeddings
    for a, v in zip(arrs, emb.vectors, strict=True):
        x = a.reshape(32, 2, 32, 2, 3).astype(float).mean(axis=(1, 3)).ravel() / 255
        x -= x.mean()
        x /= np.linalg.norm(x)
        assert np.abs(v - x).max() < 0.01
        assert np.dot(v, x) > 0.9999
    assert abs(np.linalg.norm(emb.vectors, axis=1) - 1).max() < 1e-5


def test_pixel_cosine_is_pearson_correlation_and_brightness_invariant(tmp_path):
    base = np.asarray(scene(5, (64, 64)), dtype=np.int16)
    dim = np.clip(base * 0.5 + 40, 0, 255).astype(np.uint8)  # affine change: correlation 1
    paths = []
    for name, a in {
        "base": base.astype(np.uint8),
        "dim": dim,
        "other": np.asarray(scene(6, (64, 64))),
    }.items():
        p = tmp_path / f"{name}.png"
        Image.fromarray(a).save(p)
        paths.append(p)
    v = PixelEmbedder(size=16, grey=True).embed(items_for(paths)).embeddings.vectors
    assert v.shape == (3, 256)
    assert v[0] @ v[1] > 0.995
    grey = [
        np.asarray(Image.open(p).convert("L").resize((16, 16), Image.Resampling.BOX), float).ravel()
        for p in paths
    ]
    assert abs(v[0] @ v[2] - np.corrcoef(grey[0], grey[2])[0, 1]) < 1e-5


def test_uniform_image_is_rejected_by_pixels(saved_scene, scene_files):
    flat = saved_scene(Image.new("RGB", (40, 40), (90, 90, 90)), "flat.png")
    out = PixelEmbedder().embed(items_for([flat, scene_files[0]]))
    assert out.embeddings.ids.tolist() == ["i1"]
    assert out.rejects["reason"].iloc[0].startswith("uniform image")
    assert HashEmbedder().embed(items_for([flat])).embeddings.n_items == 1


def test_parameter_validation():
    with pytest.raises(ParameterError, match="kind"):
        HashEmbedder("md5")
    with pytest.raises(ParameterError, match="power of 2"):
        HashEmbedder("whash", 12)
    with pytest.raises(ParameterError, match="size"):
        PixelEmbedder(size=1)
    with pytest.raises(InputError, match="id"):
        HashEmbedder().embed(items_for([]).drop(columns="id"))


def test_key_depends_on_output_params_only():
    assert HashEmbedder("phash", n_jobs=1).key() == HashEmbedder("phash", n_jobs=2).key()
    assert HashEmbedder("phash").key() != HashEmbedder("dhash").key()
    assert PixelEmbedder(grey=True).key() != PixelEmbedder(grey=False).key()


def test_real_flickr_photos_hash_like_imagehash_and_find_their_copies(tmp_path):
    folder = require_data("flickr8k-1000", "images")
    photos = sorted(Path(folder).glob("*.jpg"))[:4]
    copies = []
    for p in photos:
        im = Image.open(p).convert("RGB")
        q = tmp_path / f"copy_{p.name}"
        q.write_bytes(jpeg_bytes(im.resize((im.width * 3 // 4, im.height * 3 // 4)), 60))
        copies.append(q)
    out = HashEmbedder("phash").embed(items_for(photos + copies))
    codes = out.embeddings.vectors
    assert len(out.rejects) == 0
    for k, p in enumerate(photos):
        assert codes[k].tobytes().hex() == str(imagehash.phash(Image.open(p).convert("RGB")))
        d_copy = hamming(codes[k], codes[k + 4])
        d_others = [hamming(codes[k], codes[j]) for j in range(4) if j != k]
        assert d_copy < min(d_others)


def test_n_jobs_is_validated():
    with pytest.raises(ParameterError, match="n_jobs"):
        HashEmbedder(n_jobs=0)


@pytest.mark.parametrize(
    ("ids", "match"),
    [(["a", "a", "b"], "unique"), (["a", "", "b"], "empty"), (["a", None, "b"], "missing")],
)
def test_bad_ids_fail_before_any_image_is_decoded(scene_files, monkeypatch, ids, match):
    import ccgraph.embed.images as images

    calls = []
    monkeypatch.setattr(images, "load_image", lambda *a, **k: calls.append(a) or 1 / 0)
    # The second item has no local file, so before the fix its repeated id went unnoticed.
    items = items_for([scene_files[0], None, scene_files[1]])
    items["id"] = ids
    with pytest.raises(InputError, match=match):
        HashEmbedder(n_jobs=1).embed(items)
    assert calls == []


@pytest.mark.parametrize("kind", sorted(IMAGEHASH))
def test_blank_images_are_flagged_and_kept_out_of_duplicate_groups(tmp_path, kind):
    import pandas as pd

    from ccgraph._stages import duplicate_groups
    from ccgraph.config import config_from_mapping
    from ccgraph.containers import Catalog
    from ccgraph.embed.blank import blank_hash_rows
    from ccgraph.graph import find_duplicates

    rng = np.random.default_rng(3)
    ims = {
        "black": Image.new("RGB", (60, 40), (0, 0, 0)),
        "blue": Image.new("RGB", (50, 50), (30, 60, 200)),
        "noise1": Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)),
        "noise2": Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)),
        "blue_copy": None,  # byte-identical file of "blue"
        "white": Image.new("RGB", (30, 70), (255, 255, 255)),
    }
    paths = []
    for name, im in ims.items():
        p = tmp_path / f"{name}.png"
        if im is None:
            p.write_bytes((tmp_path / "blue.png").read_bytes())
        else:
            im.save(p)
        paths.append(p)
    emb = HashEmbedder(kind, n_jobs=1).embed(items_for(paths)).embeddings
    # Oracle: imagehash gives the four uniform files one hash (pHash: 1 bit for black) ...
    refs = [IMAGEHASH[kind](Image.open(p).convert("RGB")) for p in paths]
    uniform = [0, 1, 4, 5]
    assert all(refs[i] - refs[j] <= 1 for i in uniform for j in uniform)
    assert min(refs[i] - refs[j] for i in uniform for j in (2, 3)) > 10
    # ... and exactly those rows are flagged.
    assert blank_hash_rows(emb).tolist() == [True, True, False, False, True, True]
    items = items_for(paths).drop(columns="url")
    catalog = Catalog(items, pd.DataFrame(columns=["id", "tag"]), pd.DataFrame())
    cfg = config_from_mapping({"data": {"path": "x.csv"}, "graph": {"backend": "exact"}})
    with pytest.warns(DataQualityWarning, match=r"4 of 6 images .* blank .*'i0', 'i1', 'i4'"):
        group, canonical, params = duplicate_groups({"image": emb}, catalog, cfg)
    # before: black, blue, blue_copy and white were one duplicate group
    plain = find_duplicates(emb, hamming=cfg.graph.duplicates.hamming, k=5)
    assert plain.group.tolist() == [0, 0, 1, 2, 0, 0]
    assert group.tolist() == [0, 1, 2, 3, 1, 4]
    assert canonical.tolist() == [True, True, True, True, False, True]
    assert params["n_isolated"] == 4
