"""Small runs made with the real pipeline (precomputed vectors or generated images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import ccgraph
from tests.conftest import blobs

TOPICS = np.array(["beach", "forest", "city", "snow"])
N_BASE = 140
N_COPIES = 10  # items N_BASE.. are near-copies of items 0..N_COPIES-1


def vector_run(folder: Path) -> Path:
    """A run of 150 items in 4 topics (16-d vectors), 10 of them near-copies of others."""
    folder.mkdir(parents=True, exist_ok=True)
    x, labels = blobs(n=N_BASE, d=16, centers=4, spread=0.25, seed=7)
    g = np.random.default_rng(1)
    copies = x[:N_COPIES] + 1e-3 * g.normal(size=(N_COPIES, 16)).astype(np.float32)
    x = np.vstack([x, copies])
    labels = np.concatenate([labels, labels[:N_COPIES]])
    n = len(x)
    ids = [f"it{i:04d}" for i in range(n)]
    tags = [
        f"{TOPICS[labels[i]]},photo" if i % 2 == 0 else ("bright" if i % 7 == 1 else "")
        for i in range(n)
    ]
    pd.DataFrame(
        {
            "key": ids,
            "name": [f"picture {i}" for i in range(n)],
            "labels": tags,
            "views": [float(5 + i % 11) if i % 3 == 0 else np.nan for i in range(n)],
            "src": "flickr",
        }
    ).to_csv(folder / "catalog.csv", index=False)
    pd.DataFrame({"id": ids, "vector": list(x.astype(np.float64))}).to_parquet(
        folder / "vectors.parquet"
    )
    (folder / "config.yaml").write_text(
        """
data:
  path: catalog.csv
  format: table
  columns: {id: key, title: name, tags: labels, popularity: views, provider: src}
  tags: {min_count: 2}
embed:
  text: {enabled: false}
  precomputed: {path: vectors.parquet}
graph: {k: 8, min_degree: 2}
cluster: {resolutions: [0.3, 1.0, 3.0]}
propagate:
  tags: {top_k: 3}
output: {dir: run}
seed: 5
"""
    )
    return ccgraph.run(folder / "config.yaml").path


def image_run(folder: Path, kind: str, n: int = 24) -> Path:
    """A run over ``n`` generated scenes embedded with ``embed.image.kind == kind``."""
    from tests.embed._images import scene

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img").mkdir(exist_ok=True)
    rows = []
    for i in range(n):
        path = folder / "img" / f"s{i:02d}.png"
        scene(i % (n // 2), size=(64, 48)).save(path)  # every scene twice
        rows.append({"key": f"im{i:02d}", "name": f"scene {i}", "file": str(path)})
    pd.DataFrame(rows).to_csv(folder / "catalog.csv", index=False)
    (folder / "config.yaml").write_text(
        f"""
data:
  path: catalog.csv
  format: table
  columns: {{id: key, title: name, image_path: file}}
embed:
  text: {{enabled: false}}
  image: {{kind: {kind}, pixels_size: 8}}
graph: {{k: 4, min_degree: 1}}
cluster: {{resolutions: [1.0]}}
propagate:
  tags: {{enabled: false}}
  popularity: {{enabled: false}}
output: {{dir: run}}
seed: 0
"""
    )
    return ccgraph.run(folder / "config.yaml").path
