"""Blank images after an update: kept out of duplicate groups as a full run keeps them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ccgraph
from ccgraph.exceptions import DataQualityWarning
from ccgraph.update import update_run

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("imagehash")

CONFIG = """
data:
  path: {catalog}
  format: table
  columns: {{id: key, title: name, image_path: file}}
embed:
  text: {{enabled: false}}
  image: {{kind: phash}}
graph: {{k: 4, metric: hamming, backend: exact}}
cluster: {{resolutions: [1.0]}}
propagate: {{tags: {{enabled: false}}, popularity: {{enabled: false}}}}
output: {{dir: {out}}}
seed: 0
"""


def _images(folder: Path) -> dict[str, Path]:
    """16 noise pictures, three uniform ones (black, blue, red) and a byte copy of blue."""
    g = np.random.default_rng(5)
    files = {}
    for i in range(16):
        files[f"n{i:02d}"] = Image.fromarray(g.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    files["black"] = Image.new("RGB", (40, 30), (0, 0, 0))
    files["blue"] = Image.new("RGB", (50, 50), (30, 60, 200))
    files["red"] = Image.new("RGB", (20, 60), (220, 20, 20))
    paths = {}
    for name, im in files.items():
        paths[name] = folder / f"{name}.png"
        im.save(paths[name])
    paths["blue_copy"] = folder / "blue_copy.png"
    paths["blue_copy"].write_bytes(paths["blue"].read_bytes())
    return paths


def _run(folder: Path, names: list[str], paths: dict[str, Path]) -> Path:
    folder.mkdir()
    catalog = folder / "items.csv"
    rows = [{"key": n, "name": f"picture {n}", "file": str(paths[n])} for n in names]
    pd.DataFrame(rows).to_csv(catalog, index=False)
    cfg = folder / "run.yaml"
    cfg.write_text(CONFIG.format(catalog=catalog, out=folder / "run"))
    return cfg


def _groups(run: ccgraph.RunResult) -> dict[str, int]:
    return dict(zip(run.items["id"], run.items["duplicate_group"], strict=True))


def test_a_new_blank_image_joins_only_byte_identical_files(tmp_path: Path) -> None:
    paths = _images(tmp_path)
    noise = [f"n{i:02d}" for i in range(16)]
    base_names = [*noise[:14], "black", "blue"]
    with pytest.warns(DataQualityWarning, match="blank"):
        base = ccgraph.run(_run(tmp_path / "base", base_names, paths))
    batch = tmp_path / "batch.csv"
    new = ["red", "blue_copy", *noise[14:]]
    rows = [{"key": n, "name": f"picture {n}", "file": str(paths[n])} for n in new]
    pd.DataFrame(rows).to_csv(batch, index=False)
    with pytest.warns(DataQualityWarning, match="blank"):
        updated = update_run(base.path, batch, out=tmp_path / "updated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        full = ccgraph.run(_run(tmp_path / "full", base_names + new, paths))
    got, want = _groups(updated), _groups(full)
    # the oracle: the full run over all items groups blue with its copy and nothing else
    assert want["blue"] == want["blue_copy"]
    assert len({want["black"], want["blue"], want["red"]}) == 3
    assert got["blue"] == got["blue_copy"]
    assert len({got["black"], got["blue"], got["red"]}) == 3
    ids = sorted(got)
    a, b = (pd.factorize(np.array([g[i] for i in ids]))[0] for g in (got, want))
    assert (a == b).all()
