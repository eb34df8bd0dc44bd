"""Picture files for the blank-image tests: noise pictures, uniform ones and a byte copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: A run over hashed images only (no text, tags or popularity), exact kNN, one level.
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


def picture_files(folder: Path) -> dict[str, Path]:
    """16 noise pictures, three uniform ones (black, blue, red) and a byte copy of blue."""
    from PIL import Image

    g = np.random.default_rng(5)
    files = {f"n{i:02d}": Image.fromarray(g.integers(0, 256, (40, 40, 3), dtype=np.uint8))
             for i in range(16)}  # fmt: skip
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


def run_config(folder: Path, names: list[str], paths: dict[str, Path]) -> Path:
    """A catalog of ``names`` (rows in that order) and its config, written in ``folder``."""
    folder.mkdir(exist_ok=True)
    catalog = folder / "items.csv"
    rows = [{"key": n, "name": f"picture {n}", "file": str(paths[n])} for n in names]
    pd.DataFrame(rows).to_csv(catalog, index=False)
    cfg = folder / "run.yaml"
    cfg.write_text(CONFIG.format(catalog=catalog, out=folder / "run"))
    return cfg
