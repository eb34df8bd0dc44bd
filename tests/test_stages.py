"""Which embedding the run's near-duplicate groups come from (``_stages.duplicate_groups``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ccgraph._stages import duplicate_groups
from ccgraph.config import config_from_mapping
from ccgraph.containers import Catalog, Embeddings


def _catalog(n: int) -> tuple[Catalog, np.ndarray]:
    ids = np.array([f"i{i}" for i in range(n)])
    items = pd.DataFrame({"id": ids, "title": ["image"] * 3 + [f"photo {i}" for i in range(3, n)]})
    return Catalog(items, pd.DataFrame(columns=["id", "tag"]), pd.DataFrame()), ids


def _vectors(n: int, same: list[int], seed: int) -> np.ndarray:
    """Random unit vectors (pairwise cosine far below 0.98); rows ``same`` equal."""
    x = np.random.default_rng(seed).standard_normal((n, 32))
    x[same] = x[same[0]]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _groups(group: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(group == g).tolist()) for g in np.unique(group)}


def test_caption_only_runs_find_no_groups_unless_asked() -> None:
    """Three photos titled "image" share a caption vector: caption duplicates, not images."""
    n = 12
    catalog, ids = _catalog(n)
    text = Embeddings.from_array(_vectors(n, [0, 1, 2], seed=0), ids)
    singletons = {frozenset([i]) for i in range(n)}
    base = {"data": {"path": "x.csv"}, "graph": {"backend": "exact"}}

    group, canonical, params = duplicate_groups({"text": text}, catalog, config_from_mapping(base))
    assert _groups(group) == singletons and canonical.all()
    assert params["modality"] is None and params["enabled"] is False

    opted = config_from_mapping(
        {**base, "graph": {"backend": "exact", "duplicates": {"from_text": True}}}
    )
    group, canonical, params = duplicate_groups({"text": text}, catalog, opted)
    assert _groups(group) == {frozenset([0, 1, 2])} | {frozenset([i]) for i in range(3, n)}
    assert canonical.sum() == n - 2 and params["modality"] == "text"

    # with an image-like embedding the groups come from it (here items 5 and 7), not captions
    image = Embeddings.from_array(_vectors(n, [5, 7], seed=1), ids)
    group, _, params = duplicate_groups(
        {"text": text, "precomputed": image}, catalog, config_from_mapping(base)
    )
    assert _groups(group) == {frozenset([5, 7])} | {
        frozenset([i]) for i in range(n) if i not in (5, 7)
    }
    assert params["modality"] == "precomputed"
