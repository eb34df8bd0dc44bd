"""Synthetic catalogs for ``benchmarks/update.py``: a hierarchical Gaussian mixture on the sphere.

``groups`` broad topics, each parent of several clusters; items are noisy unit vectors around
their cluster's centre, with topic tags on a share of them, a title, a provider and (for some)
a view count. The base catalog draws from ``clusters`` clusters; the batch of new items draws
mostly from the same clusters and partly from a few clusters the base never saw, so an update
has to both grow old clusters and mint new ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["CONFIG", "make_synthetic"]

#: Run config of the synthetic catalogs (``{catalog}``, ``{vectors}`` and ``{ids}`` filled in).
CONFIG = """
data:
  path: {catalog}
  format: table
  columns: {{id: key, title: name, tags: labels, popularity: views, provider: src}}
  tags: {{min_count: 2}}
embed:
  text: {{enabled: false}}
  precomputed: {{path: {vectors}, ids_path: {ids}}}
graph: {{k: 15, min_degree: 2}}
cluster: {{resolutions: [0.25, 1.0, 4.0]}}
propagate:
  tags: {{top_k: 5}}
seed: 0
"""

_PROVIDERS = np.array(["flickr", "wikimedia", "smithsonian"])


def _mixture(
    g: np.random.Generator, clusters: int, groups: int, d: int
) -> tuple[np.ndarray, np.ndarray]:
    sup = g.normal(size=(groups, d))
    sup /= np.linalg.norm(sup, axis=1, keepdims=True)
    parent = g.integers(0, groups, clusters)
    off = g.normal(size=(clusters, d))
    off /= np.linalg.norm(off, axis=1, keepdims=True)
    centres = sup[parent] + 0.9 * off
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return centres, parent


def _items(
    g: np.random.Generator,
    labels: np.ndarray,
    centres: np.ndarray,
    parent: np.ndarray,
    spread: float,
    start: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    n, d = len(labels), centres.shape[1]
    x = centres[labels] + spread * g.normal(size=(n, d)) / np.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.array([f"it{i:07d}" for i in range(start, start + n)])
    tags = np.full(n, "", dtype=object)
    cl = g.random(n) < 0.2
    gr = g.random(n) < 0.1
    for i in np.flatnonzero(cl | gr):
        parts = ([f"topic{labels[i]}"] if cl[i] else []) + (
            [f"group{parent[labels[i]]}"] if gr[i] else []
        )
        tags[i] = ",".join(parts)
    views = np.where(g.random(n) < 0.3, np.round(g.lognormal(3, 1.5, n)), np.nan)
    frame = pd.DataFrame(
        {
            "key": ids,
            "name": [
                f"group{parent[c]} topic{c} picture {i}" for i, c in zip(ids, labels, strict=True)
            ],
            "labels": tags,
            "views": views,
            "src": _PROVIDERS[g.integers(0, len(_PROVIDERS), n)],
            "truth": labels,
        }
    )
    return frame, x.astype(np.float32)


def make_synthetic(
    folder: Path,
    *,
    n: int = 100_000,
    new_fraction: float = 0.01,
    d: int = 384,
    clusters: int = 1000,
    groups: int = 100,
    unseen_clusters: int = 5,
    unseen_share: float = 0.1,
    spread: float = 1.8,
    seed: int = 0,
) -> dict[str, Path]:
    """Write base, batch and combined catalogs with their vectors and configs into ``folder``.

    Returns the paths: ``base_config``, ``full_config`` (base + batch), ``new_catalog``,
    ``new_vectors``, ``new_ids``, and ``truth`` (a Parquet of ``id``, ``truth``, ``is_new``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    centres, parent = _mixture(g, clusters + unseen_clusters, groups, d)
    w = g.lognormal(0.0, 0.5, clusters)
    w /= w.sum()
    base_labels = g.choice(clusters, size=n, p=w)
    n_new = round(new_fraction * n)
    n_unseen = round(unseen_share * n_new) if unseen_clusters else 0
    new_labels = np.concatenate(
        [
            g.choice(clusters, size=n_new - n_unseen, p=w),
            clusters + g.integers(0, max(1, unseen_clusters), n_unseen),
        ]
    )
    new_labels = new_labels[g.permutation(n_new)]
    base, xb = _items(g, base_labels, centres, parent, spread, 0)
    new, xn = _items(g, new_labels, centres, parent, spread, n)
    paths: dict[str, Path] = {}
    for name, frame, x in (
        ("base", base, xb),
        ("new", new, xn),
        ("full", pd.concat([base, new], ignore_index=True), np.vstack([xb, xn])),
    ):
        frame.drop(columns="truth").to_csv(folder / f"{name}.csv", index=False)
        np.save(folder / f"{name}_vectors.npy", x)
        (folder / f"{name}_ids.txt").write_text("\n".join(frame["key"]) + "\n")
        cfg = folder / f"{name}.yaml"
        cfg.write_text(
            CONFIG.format(
                catalog=f"{name}.csv", vectors=f"{name}_vectors.npy", ids=f"{name}_ids.txt"
            )
        )
        paths[f"{name}_config"] = cfg
        paths[f"{name}_catalog"] = folder / f"{name}.csv"
        paths[f"{name}_vectors"] = folder / f"{name}_vectors.npy"
        paths[f"{name}_ids"] = folder / f"{name}_ids.txt"
    truth = pd.DataFrame(
        {
            "id": np.concatenate([base["key"], new["key"]]),
            "truth": np.concatenate([base_labels, new_labels]),
            "is_new": np.r_[np.zeros(n, bool), np.ones(n_new, bool)],
        }
    )
    truth.to_parquet(folder / "truth.parquet")
    paths["truth"] = folder / "truth.parquet"
    return paths
