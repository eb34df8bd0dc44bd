from __future__ import annotations

import hashlib
import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from ccgraph.embed import HashEmbedder
from ccgraph.embed._loading import (
    ImageLoadError,
    file_digest,
    image_sources,
    load_image,
    map_ordered,
    pixel_limit,
)
from tests.embed._images import jpeg_bytes, scene
from tests.embed.conftest import items_for


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("corrupt", "not a readable image"),
        ("truncated", "truncated"),
        ("zero", "empty file (0 bytes)"),
        ("missing", "file not found"),
        ("bomb", "too many pixels"),
        ("directory", "not a regular file"),
    ],
)
def test_bad_files_raise_a_reason(bad_files, kind, reason):
    with pytest.raises(ImageLoadError) as err:
        load_image(bad_files[kind])
    assert reason in err.value.reason


def test_truncated_png_is_rejected(tmp_path):
    buf = io.BytesIO()
    scene(3).save(buf, "PNG")
    p = tmp_path / "t.png"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageLoadError) as err:
        load_image(p)
    assert "truncated" in err.value.reason or "corrupt" in err.value.reason


def test_max_pixels_guard_is_exact(saved_scene):
    p = saved_scene(Image.new("RGB", (100, 50), (1, 2, 3)), "small.png")
    assert load_image(p, max_pixels=5000).size == (100, 50)
    with pytest.raises(ImageLoadError, match="5,000 > max_pixels 4,999"):
        load_image(p, max_pixels=4999)


def test_pixel_limit_restores_pillow_state():
    before = Image.MAX_IMAGE_PIXELS
    filters_before = list(warnings.filters)
    with pixel_limit(123):
        assert Image.MAX_IMAGE_PIXELS == 123
    assert Image.MAX_IMAGE_PIXELS == before
    assert warnings.filters == filters_before


def test_pillow_bomb_error_inside_limit_is_a_reason(saved_scene):
    # Pillow's own check (at open) fires first when its limit is below ours.
    p = saved_scene(Image.new("L", (300, 300)), "mid.png")
    with pixel_limit(1000), pytest.raises(ImageLoadError, match="too many pixels"):
        load_image(p, max_pixels=10**9)


def test_cmyk_becomes_rgb(saved_scene):
    p = saved_scene(Image.new("CMYK", (20, 10), (0, 255, 255, 0)), "cmyk.jpg", quality=95)
    im = load_image(p)
    assert im.mode == "RGB"
    r, g, b = np.asarray(im).reshape(-1, 3).mean(axis=0)
    assert r > 240 and g < 15 and b < 15  # CMYK (0, 1, 1, 0) is red


def test_palette_with_transparency_is_composited_on_white(saved_scene):
    pal = Image.new("P", (4, 2), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 0 black, 1 red
    pal.putpixel((0, 0), 1)
    pal.info["transparency"] = 0  # black is transparent
    p = saved_scene(pal, "pal.png", transparency=0)
    arr = np.asarray(load_image(p))
    assert arr[0, 0].tolist() == [255, 0, 0]
    assert (arr.reshape(-1, 3)[1:] == 255).all()


def test_rgba_and_la_alpha_blend_over_white(saved_scene):
    rgba = Image.new("RGBA", (3, 3), (0, 0, 0, 0))
    rgba.putpixel((1, 1), (0, 0, 0, 255))
    rgba.putpixel((2, 2), (0, 0, 200, 128))
    arr = np.asarray(load_image(saved_scene(rgba, "a.png")))
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[1, 1].tolist() == [0, 0, 0]
    # alpha 128/255 over white: 255 * (1 - a) + c * a
    a = 128 / 255
    expect = [round(255 * (1 - a)), round(255 * (1 - a)), round(255 * (1 - a) + 200 * a)]
    assert np.abs(arr[2, 2].astype(int) - expect).max() <= 1
    la = Image.new("LA", (2, 1), (0, 0))
    arr = np.asarray(load_image(saved_scene(la, "la.png")))
    assert (arr == 255).all()


def test_sixteen_bit_greyscale_is_scaled_not_clipped(saved_scene):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    im16 = Image.fromarray(values)  # mode I;16
    p = saved_scene(im16, "g16.png")
    with Image.open(p) as raw:
        assert raw.mode.startswith("I")
    arr = np.asarray(load_image(p))
    assert arr[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


def test_one_bit_and_grey_modes(saved_scene):
    one = Image.new("1", (4, 4), 1)
    assert np.asarray(load_image(saved_scene(one, "b.png"))).min() == 255
    grey = Image.new("L", (4, 4), 77)
    arr = np.asarray(load_image(saved_scene(grey, "g.png")))
    assert arr.shape == (4, 4, 3) and (arr == 77).all()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_orientation_is_applied(tmp_path, fmt):
    base = np.zeros((40, 60, 3), dtype=np.uint8)
    base[:, :30] = (255, 0, 0)  # left half red, right half black
    im = Image.fromarray(base)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / f"rot.{fmt.lower()}"
    im.save(p, fmt, exif=exif.tobytes(), **({"quality": 98} if fmt == "JPEG" else {}))
    out = np.asarray(load_image(p))
    expect = np.rot90(base, k=-1)  # clockwise
    assert out.shape == expect.shape == (60, 40, 3)
    assert np.abs(out.astype(int) - expect).mean() < 4


def test_jpeg_draft_keeps_both_sides_above_target(tmp_path):
    p = tmp_path / "big.jpg"
    p.write_bytes(jpeg_bytes(scene(0, (1600, 1200))))
    im = load_image(p, draft=256)
    assert min(im.size) >= 256 and im.size[0] < 1600
    assert load_image(p).size == (1600, 1200)


def test_image_sources_resolves_relative_paths(tmp_path):
    items = items_for(
        ["a.jpg", str(tmp_path / "b.jpg"), None, float("nan"), "  "],
        [None, None, "http://x", None, None],
    )
    paths, urls = image_sources(items, base_dir=tmp_path)
    assert paths[0] == str(tmp_path / "a.jpg")
    assert paths[1] == str(tmp_path / "b.jpg")
    assert paths[2:] == [None, None, None]
    assert urls == [None, None, "http://x", None, None]


def test_file_digest_matches_hashlib(tmp_path):
    import hashlib

    p = tmp_path / "x.bin"
    data = bytes(range(256)) * 5000
    p.write_bytes(data)
    assert file_digest(p) == hashlib.sha256(data).hexdigest()
    assert file_digest(tmp_path / "nope") is None


def test_map_ordered_keeps_order_with_threads():
    import time

    def slow_square(x):
        time.sleep(0.001 * (5 - x % 5))
        return x * x

    assert list(map_ordered(slow_square, range(40), n_jobs=2, window=3)) == [
        x * x for x in range(40)
    ]
    assert list(map_ordered(slow_square, range(5), n_jobs=1)) == [0, 1, 4, 9, 16]


def test_a_nul_byte_in_the_path_is_an_invalid_path_reason():
    # Used to surface as "feature extraction failed (ValueError: embedded null byte)".
    with pytest.raises(ImageLoadError, match="invalid file path"):
        load_image("a\x00b.jpg")


@pytest.mark.parametrize(
    "url", ["http://example.org/a.jpg", "https://x.org/b.png", "s3://bucket/c.jpg", "file:///d.jpg"]
)
def test_a_url_image_path_is_rejected_as_a_url_not_a_missing_file(url, scene_files):
    # Used to be "file not found" (and image_sources folded "//" into "/").
    paths, _ = image_sources(items_for([url]), base_dir="/somewhere")
    assert paths == [url]
    with pytest.raises(ImageLoadError) as err:
        load_image(paths[0])
    assert err.value.reason.startswith("image_path is a URL")
    assert "does not download" in err.value.reason
    out = HashEmbedder(n_jobs=1).embed(items_for([url, scene_files[0]]))
    assert out.embeddings.ids.tolist() == ["i1"]
    assert out.rejects[["file", "id"]].values.tolist() == [[url, "i0"]]
    assert out.rejects["reason"].iloc[0] == err.value.reason


def test_a_windows_drive_path_is_not_a_url(tmp_path):
    with pytest.raises(ImageLoadError, match="file not found"):
        load_image("C://no/such/file.jpg")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_file_digest_reads_only_regular_files(tmp_path):
    # before: the image cache key of /dev/zero (or a FIFO) read forever: `ccgraph run` hung
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    regular = tmp_path / "a.bin"
    regular.write_bytes(b"abc")
    assert file_digest(regular) == hashlib.sha256(b"abc").hexdigest()
    for path in ("/dev/zero", fifo, tmp_path, "a\0b.jpg", tmp_path / "missing"):
        assert file_digest(path) is None
