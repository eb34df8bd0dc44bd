"""Fixtures of the embed tests: a folder of generated good and bad image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.embed._images import huge_png_header, jpeg_bytes, scene


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    """One file of each kind that must be rejected, keyed by kind."""
    good = jpeg_bytes(scene(1))
    out = {
        "corrupt": tmp_path / "corrupt.jpg",
        "truncated": tmp_path / "truncated.jpg",
        "zero": tmp_path / "zero.jpg",
        "missing": tmp_path / "missing.jpg",
        "bomb": tmp_path / "bomb.png",
        "directory": tmp_path / "a_directory.jpg",
    }
    out["corrupt"].write_bytes(
        np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    )
    out["truncated"].write_bytes(good[: len(good) // 2])
    out["zero"].write_bytes(b"")
    huge_png_header(out["bomb"], 100_000, 100_000)
    out["directory"].mkdir()
    return out


@pytest.fixture
def scene_files(tmp_path: Path) -> list[Path]:
    """Four unrelated generated JPEG scenes."""
    paths = []
    for seed in range(4):
        p = tmp_path / f"scene{seed}.jpg"
        p.write_bytes(jpeg_bytes(scene(seed)))
        paths.append(p)
    return paths


def items_for(paths: list[Path | str | None], urls: list[str | None] | None = None) -> pd.DataFrame:
    """An items table with ids ``i0, i1, ...`` for the given image paths."""
    n = len(paths)
    return pd.DataFrame(
        {
            "id": [f"i{k}" for k in range(n)],
            "image_path": [str(p) if isinstance(p, Path) else p for p in paths],
            "url": urls if urls is not None else [None] * n,
        }
    )


@pytest.fixture
def saved_scene(tmp_path: Path):
    """Save an image in a given format under tmp_path and return the path."""

    def save(im: Image.Image, name: str, **kw: object) -> Path:
        p = tmp_path / name
        im.save(p, **kw)
        return p

    return save
