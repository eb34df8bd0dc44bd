from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ccgraph.exceptions import ParameterError
from ccgraph.report import thumbnails
from ccgraph.report.thumbnails import ThumbnailStore, content_key, make_thumbnail


def photo(path: Path, size=(800, 600), mode="RGB", seed=0, **save) -> Path:
    g = np.random.default_rng(seed)
    arr = g.integers(0, 255, (size[1], size[0], len(mode)), dtype=np.uint8)
    Image.fromarray(arr.squeeze(), mode=mode).save(path, **save)
    return path


def test_thumbnail_size_aspect_and_format(tmp_path):
    src = photo(tmp_path / "a.jpg", (800, 600))
    thumb = make_thumbnail(src, tmp_path / "cache")
    with Image.open(thumb) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert im.size == (160, 120)
    small = photo(tmp_path / "s.png", (40, 90))
    with Image.open(make_thumbnail(small, tmp_path / "cache", max_side=128)) as im:
        assert im.size == (40, 90)  # never enlarged


def test_cache_is_keyed_by_content(tmp_path, monkeypatch):
    src = photo(tmp_path / "a.jpg")
    copy = tmp_path / "elsewhere.jpg"
    copy.write_bytes(src.read_bytes())
    calls = []
    real = thumbnails._render
    monkeypatch.setattr(thumbnails, "_render", lambda *a: calls.append(a) or real(*a))
    t1 = make_thumbnail(src, tmp_path / "cache")
    t2 = make_thumbnail(copy, tmp_path / "cache")
    assert t1 == t2 and len(calls) == 1  # same bytes: rendered once
    other = photo(tmp_path / "b.jpg", seed=1)
    assert make_thumbnail(other, tmp_path / "cache") != t1
    assert make_thumbnail(src, tmp_path / "cache", max_side=80) != t1  # settings in the key
    assert content_key(src) == content_key(copy) != content_key(other)


def test_missing_and_corrupt_files_fall_back(tmp_path):
    cache = tmp_path / "cache"
    assert make_thumbnail(tmp_path / "nope.jpg", cache) is None
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff not really a jpeg" * 10)
    assert make_thumbnail(junk, cache) is None
    assert make_thumbnail(junk, cache) is None  # the failure is cached too
    full = photo(tmp_path / "full.jpg", (400, 300)).read_bytes()
    cut = tmp_path / "truncated.jpg"
    cut.write_bytes(full[: len(full) // 3])
    assert make_thumbnail(cut, cache) is None
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert make_thumbnail(empty, cache) is None
    assert make_thumbnail(tmp_path, cache) is None  # a directory


def test_transparency_flattened_on_white_and_exif_rotation(tmp_path):
    rgba = Image.new("RGBA", (50, 20), (255, 0, 0, 0))
    rgba.save(tmp_path / "t.png")
    with Image.open(make_thumbnail(tmp_path / "t.png", tmp_path / "c")) as im:
        assert np.asarray(im).min() > 240  # fully transparent red -> white
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise for display
    Image.new("RGB", (200, 100), "blue").save(tmp_path / "r.jpg", exif=exif)
    with Image.open(make_thumbnail(tmp_path / "r.jpg", tmp_path / "c")) as im:
        assert im.size == (80, 160)


def test_parameters_validated(tmp_path):
    with pytest.raises(ParameterError, match="max_side"):
        make_thumbnail(tmp_path / "a.jpg", tmp_path, max_side=0)
    with pytest.raises(ParameterError, match="quality"):
        make_thumbnail(tmp_path / "a.jpg", tmp_path, quality=100)


def test_store_copies_once_and_reports_size(tmp_path):
    src = photo(tmp_path / "a.jpg", (300, 150))
    store = ThumbnailStore(tmp_path / "assets", tmp_path / "cache")
    t = store.get(src)
    assert t.url.startswith("assets/thumbs/") and (t.width, t.height) == (160, 80)
    assert (tmp_path / t.url).exists()
    assert store.get(str(src)) == t and store.get(None) is None and store.get("") is None
    assert store.get(tmp_path / "missing.jpg") is None
    assert store.count == 1


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_devices_fifos_and_folders_are_not_read(tmp_path):
    # before: an image_path of /dev/zero (or a FIFO) was hashed forever: `ccgraph report` hung
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for source in ("/dev/zero", fifo, tmp_path, "a\0b.jpg"):
        assert content_key(source) is None
        assert make_thumbnail(source, tmp_path / "cache") is None
