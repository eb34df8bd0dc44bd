"""Generated test images: seeded scenes of shapes on gradients, their edits, and bad files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def scene(seed: int, size: tuple[int, int] = (256, 192)) -> Image.Image:
    """A random RGB scene: a two-colour gradient with a dozen filled shapes."""
    g = np.random.default_rng(seed)
    w, h = size
    c0, c1 = g.integers(0, 256, 3), g.integers(0, 256, 3)
    t = np.linspace(0, 1, w)[None, :, None] * np.ones((h, 1, 1))
    angle = g.uniform(0, 1)
    t = angle * t + (1 - angle) * np.linspace(0, 1, h)[:, None, None]
    base = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    im = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = int(g.integers(0, w - 20)), int(g.integers(0, h - 20))
        x1, y1 = x0 + int(g.integers(15, w // 2)), y0 + int(g.integers(15, h // 2))
        colour = tuple(int(v) for v in g.integers(0, 256, 3))
        if g.uniform() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return im


def jpeg_bytes(im: Image.Image, quality: int = 90, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def edits(im: Image.Image) -> dict[str, Image.Image]:
    """Near-duplicates of ``im``: re-encode, resize, small crop, small rotation, brightness."""
    w, h = im.size
    return {
        "jpeg_q40": Image.open(io.BytesIO(jpeg_bytes(im, 40))).convert("RGB"),
        "half_size": im.resize((w // 2, h // 2), Image.Resampling.BILINEAR),
        "crop_4pct": im.crop((w // 50, h // 50, w - w // 50, h - h // 50)),
        "rotate_2deg": im.rotate(2, resample=Image.Resampling.BILINEAR, fillcolor=(128, 128, 128)),
        "brighter": Image.fromarray(
            np.clip(np.asarray(im, dtype=np.int16) + 25, 0, 255).astype(np.uint8)
        ),
    }


def huge_png_header(path: Path, width: int, height: int) -> None:
    """Write a tiny PNG whose header declares ``width x height`` pixels (a bomb's signature)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
