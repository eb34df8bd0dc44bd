"""A small, complete ccgraph project on disk (catalog, vectors, images, config) to break."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tests.conftest import blobs

TOPICS = ("beach", "forest", "city", "snow")


def base_config() -> dict[str, Any]:
    """A config that runs in about a second on :class:`Project`'s defaults."""
    return {
        "data": {
            "path": "catalog.csv",
            "format": "table",
            "columns": {"popularity": "views"},
            "tags": {"min_count": 2},
        },
        "embed": {"text": {"enabled": False}, "precomputed": {"path": "vectors.parquet"}},
        "graph": {"k": 5, "min_degree": 1},
        "cluster": {"resolutions": [1.0]},
        "propagate": {"tags": {"top_k": 2}},
        "output": {"dir": "run"},
        "seed": 0,
    }


class Project:
    """A catalog of ``n`` items in four topics with vectors beside it, and a config to edit.

    ``rows`` (a DataFrame: ``id, title, tags, views, provider``), ``vectors`` (``[n, d]``) and
    ``config`` (a mapping) may be changed before :meth:`write`, which writes ``catalog.csv``,
    ``vectors.parquet`` and ``config.yaml`` and returns the config path.
    """

    def __init__(self, root: Path, n: int = 40, d: int = 8, seed: int = 0) -> None:
        self.root = root
        x, labels = blobs(n=n, d=d, centers=len(TOPICS), spread=0.2, seed=seed)
        self.labels = labels
        self.vectors: np.ndarray = x.astype(np.float64)
        self.vector_ids: list[str] | None = None
        ids = [f"it{i:03d}" for i in range(n)]
        self.ids = ids
        self.rows = pd.DataFrame(
            {
                "id": ids,
                "title": [f"picture {i}" for i in range(n)],
                "tags": [f"{TOPICS[labels[i]]},photo" if i % 2 == 0 else "" for i in range(n)],
                "views": [
                    str(10 * (labels[i] + 1) + i % 7) if i % 3 == 0 else "" for i in range(n)
                ],
                "provider": "flickr",
            }
        )
        self.config = base_config()
        self.overrides: list[str] = []
        self.catalog_text: str | bytes | None = None  # raw catalog contents (wins over rows)

    def path(self, name: str) -> Path:
        """A path inside the project."""
        return self.root / name

    def write(self) -> Path:
        """Write the catalog, the vectors and the config; return the config path."""
        cat = self.path("catalog.csv")
        if isinstance(self.catalog_text, bytes):
            cat.write_bytes(self.catalog_text)
        elif isinstance(self.catalog_text, str):
            cat.write_text(self.catalog_text, encoding="utf-8")
        else:
            self.rows.to_csv(cat, index=False)
        ids = self.vector_ids if self.vector_ids is not None else self.ids[: len(self.vectors)]
        vec = self.path("vectors.parquet")
        if not vec.exists():
            pd.DataFrame({"id": ids, "vector": list(self.vectors)}).to_parquet(vec)
        cfg = self.path("config.yaml")
        cfg.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        return cfg

    def set(self, dotted: str, value: Any) -> None:
        """Set a config key (``"graph.k"``) in :attr:`config`."""
        node = self.config
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)

    def cli_args(self) -> list[str]:
        """``--set`` arguments for :attr:`overrides`."""
        return [a for o in self.overrides for a in ("--set", o)]


def squash(text: str) -> str:
    """Collapse whitespace (the CLI indents continuation lines of a message)."""
    return re.sub(r"\s+", " ", text)


def write_images(project: Project, *, size: int = 16, kind: str = "phash") -> list[Path]:
    """Give every item a small seeded PNG (``images/<id>.png``) and switch to image hashes."""
    from PIL import Image

    folder = project.path("images")
    folder.mkdir(exist_ok=True)
    g = np.random.default_rng(7)
    paths = []
    for item_id in project.rows["id"]:
        f = folder / f"{item_id}.png"
        Image.fromarray(g.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(f)
        paths.append(f)
    project.rows["image_path"] = [f"images/{p.name}" for p in paths]
    project.set("embed.image.kind", kind)
    project.set("embed.precomputed.path", None)
    return paths
