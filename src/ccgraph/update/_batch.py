"""The batch of an update: embed it as the run did, and tell real changes from re-sent rows."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ccgraph.config import Config
from ccgraph.containers import Catalog, Embeddings
from ccgraph.update._persist import member

__all__ = ["embed_batch", "same_content", "same_vectors"]

logger = logging.getLogger(__name__)


def embed_batch(
    catalog: Catalog,
    cfg: Config,
    *,
    cache_dir: Path,
    given: Mapping[str, Embeddings] | None,
    show_progress: bool,
) -> tuple[dict[str, Embeddings], pd.DataFrame]:
    """Embed the batch as the run did; precomputed files may list more ids than the batch."""
    from ccgraph.embed import embed_catalog
    from ccgraph.embed.base import make_rejects
    from ccgraph.embed.precomputed import load_precomputed

    ids = catalog.ids
    if given is not None:
        out = {}
        for name, emb in given.items():
            keep = member(emb.ids, ids)
            out[name] = Embeddings(
                np.asarray(emb.vectors)[keep], emb.ids[keep], emb.kind, dict(emb.params)
            )
        return out, make_rejects([])
    emb_cfg = cfg.embed.model_copy(deep=True)
    pre = emb_cfg.precomputed
    out = {}
    if pre.path:
        path = cfg.resolve(pre.path)
        ids_path = cfg.resolve(pre.ids_path) if pre.ids_path else None
        assert path is not None
        if ids_path is None and path.suffix.lower() == ".npy":
            loaded = load_precomputed(path, ids=ids)
        else:
            loaded = load_precomputed(
                path, ids_path=ids_path, id_column=pre.id_column, vector_column=pre.vector_column
            )
        pos = pd.Index(loaded.ids).get_indexer(ids)
        have = pos >= 0
        out["precomputed"] = Embeddings(
            np.ascontiguousarray(np.asarray(loaded.vectors)[pos[have]]),
            ids[have],
            "dense",
            dict(loaded.params),
        )
        emb_cfg.precomputed.path = None
    rejects = make_rejects([])
    if emb_cfg.text.enabled or emb_cfg.image.kind != "none":
        more, rejects = embed_catalog(
            catalog,
            emb_cfg,
            base_dir=cfg.base_dir,
            cache_dir=cache_dir,
            n_jobs=cfg.n_jobs,
            show_progress=show_progress,
        )
        out.update(more)
    return out, rejects


def same_vectors(
    old: Mapping[str, Embeddings], new: Mapping[str, Embeddings], ids: np.ndarray
) -> np.ndarray:
    """Per id: every modality has the same vector (or none) before and after."""
    same = np.ones(len(ids), dtype=bool)
    if len(ids) == 0:
        return same
    for name in set(old) | set(new):
        a = old.get(name)
        b = new.get(name)
        pa = pd.Index(a.ids).get_indexer(ids) if a is not None else np.full(len(ids), -1)
        pb = pd.Index(b.ids).get_indexer(ids) if b is not None else np.full(len(ids), -1)
        both = (pa >= 0) & (pb >= 0)
        same &= (pa >= 0) == (pb >= 0)
        if both.any():
            assert a is not None and b is not None
            va = np.asarray(a.vectors)[pa[both]]
            vb = np.asarray(b.vectors)[pb[both]]
            eq = np.all(np.abs(va.astype(np.float64) - vb.astype(np.float64)) <= 1e-6, axis=1)
            idx = np.flatnonzero(both)
            same[idx] &= eq
    return same


def same_content(old: Catalog, new: Catalog, ids: np.ndarray) -> np.ndarray:
    """Per id: title, provider, raw popularity and observed tags unchanged."""
    same = np.ones(len(ids), dtype=bool)
    if len(ids) == 0:
        return same
    old_items = old.items[member(old.items["id"], ids)]  # the few rows asked, then aligned
    a = old_items.set_index("id").reindex(pd.Index(ids))
    b = new.items.set_index(new.items["id"].astype(str)).reindex(pd.Index(ids))
    for col in ("title", "provider"):
        if col in a.columns and col in b.columns:
            same &= (
                a[col].fillna("").astype(str).to_numpy() == b[col].fillna("").astype(str).to_numpy()
            )
    if "popularity_raw" in b.columns:
        x = pd.to_numeric(a.get("popularity_raw"), errors="coerce").to_numpy(np.float64)
        y = pd.to_numeric(b["popularity_raw"], errors="coerce").to_numpy(np.float64)
        same &= (x == y) | (np.isnan(x) & np.isnan(y))

    def tagsets(t: pd.DataFrame) -> pd.Series:
        t = t[member(t["id"], ids)]
        keys = t["tag"].astype(str) + "\x1f" + t["source"].astype(str)
        return keys.groupby(t["id"].astype(str)).agg(lambda s: tuple(sorted(s)))

    ta = tagsets(old.tags).reindex(pd.Index(ids))
    tb = tagsets(new.tags).reindex(pd.Index(ids))
    same &= np.array(
        [
            x == y or (not isinstance(x, tuple) and not isinstance(y, tuple))
            for x, y in zip(ta.tolist(), tb.tolist(), strict=True)
        ],
        dtype=bool,
    )
    return same
