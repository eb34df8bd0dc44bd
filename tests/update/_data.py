"""Small planted catalogs for the update tests: table CSV + precomputed vectors + config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

TOPICS = np.array(["beach", "forest", "city", "snow", "desert", "river"])

CONFIG = """
data:
  path: {catalog}
  format: table
  columns: {{id: key, title: name, tags: labels, popularity: views, provider: src}}
  tags: {{min_count: 2}}
embed:
  text: {{enabled: false}}
  precomputed: {{path: {vectors}}}
graph: {{k: 8, min_degree: 2, backend: exact}}
cluster: {{resolutions: [0.5, 1.0]}}
propagate:
  tags: {{top_k: 3}}
output: {{dir: run}}
seed: 3
"""


def centres(n_centres: int = 6, d: int = 16, seed: int = 0) -> np.ndarray:
    """Random unit directions (the planted topics)."""
    g = np.random.default_rng(seed)
    c = g.normal(size=(n_centres, d))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def planted(labels: np.ndarray, c: np.ndarray, *, spread: float = 0.2, seed: int = 0) -> np.ndarray:
    """Unit vectors around the centres ``c[labels]``."""
    g = np.random.default_rng(seed)
    x = c[labels] + spread * g.normal(size=(len(labels), c.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def table(ids: list[str], labels: np.ndarray, *, seed: int = 0) -> pd.DataFrame:
    """Catalog rows: half the items tagged with their topic, a third with a view count."""
    g = np.random.default_rng(seed)
    rows = []
    for i, (key, lab) in enumerate(zip(ids, labels, strict=True)):
        rows.append(
            {
                "key": key,
                "name": f"picture of {TOPICS[lab]} {i}",
                "labels": f"{TOPICS[lab]},photo" if i % 2 == 0 else "",
                "views": float(g.integers(1, 500)) if i % 3 == 0 else np.nan,
                "src": "flickr" if i % 4 else "wikimedia",
            }
        )
    return pd.DataFrame(rows)


def write_inputs(folder: Path, ids: list[str], labels: np.ndarray, x: np.ndarray) -> Path:
    """Write ``catalog.csv``, ``vectors.parquet`` and ``config.yaml``; return the config path."""
    folder.mkdir(parents=True, exist_ok=True)
    table(ids, labels).to_csv(folder / "catalog.csv", index=False)
    write_vectors(folder / "vectors.parquet", ids, x)
    cfg = folder / "config.yaml"
    cfg.write_text(CONFIG.format(catalog="catalog.csv", vectors="vectors.parquet"))
    return cfg


def write_vectors(path: Path, ids: list[str], x: np.ndarray) -> Path:
    """Precomputed vectors as Parquet (``id``, ``vector``)."""
    pd.DataFrame({"id": ids, "vector": list(np.asarray(x, dtype=np.float64))}).to_parquet(path)
    return path


def write_openverse(path: Path, rows: list[dict[str, object]]) -> Path:
    """A minimal Openverse-layout CSV (``identifier``, ``removed_from_source``, ...)."""
    out = []
    for r in rows:
        out.append(
            {
                "identifier": r["id"],
                "foreign_identifier": r["id"],
                "provider": r.get("provider", "flickr"),
                "url": f"https://example.org/{r['id']}.jpg",
                "title": r.get("title", ""),
                "meta_data": json.dumps({}),
                "tags": json.dumps([{"name": t, "provider": "flickr"} for t in r.get("tags", [])]),
                "removed_from_source": "t" if r.get("removed") else "f",
            }
        )
    pd.DataFrame(out).to_csv(path, index=False)
    return path
