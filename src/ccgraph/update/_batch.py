"""The batch of an update: embed it as the run did, and tell real changes from re-sent rows."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ccgraph.config import Config
from ccgraph.containers import Catalog, Embeddings, RunResult
from ccgraph.exceptions import InputError
from ccgraph.update._persist import member

if TYPE_CHECKING:
    from ccgraph.update._catalog import Changes

__all__ = ["check_coverage", "embed_batch", "known_ids", "same_content", "same_vectors"]

logger = logging.getLogger(__name__)


def known_ids(old: RunResult, batch: Catalog) -> np.ndarray:
    """Ids a vectors file of the batch may list: the run's items, the batch's rows and rejects.

    The counterpart of the run's rule (a vectors file may list only catalog items and rejected
    rows): the catalog of an update is the run plus its batch.
    """
    rejected = batch.rejects["id"].dropna().astype(str).to_numpy() if len(batch.rejects) else []
    return np.concatenate(
        [np.asarray(old.ids, dtype=str), batch.items["id"].astype(str).to_numpy(str), rejected]
    ).astype(str)


def _refuse_unknown(listed: np.ndarray, batch_ids: np.ndarray, known: Any, source: str) -> None:
    """Raise when vectors are given for ids that are neither in the batch nor in the run."""
    outside = listed[~member(listed, batch_ids)]
    if len(outside):
        outside = outside[~member(outside, known)]
    if len(outside):
        raise InputError(
            f"{source}: {len(outside)} ids are not in the batch nor in the run, e.g. "
            f"{outside[:5].tolist()}; remove them from the vectors file, add them to the "
            "batch, or check that both use the same ids (and that no batch row was rejected: "
            "see rejects)"
        )


def embed_batch(
    catalog: Catalog,
    cfg: Config,
    *,
    cache_dir: Path,
    given: Mapping[str, Embeddings] | None,
    show_progress: bool,
    known: Any = None,
) -> tuple[dict[str, Embeddings], pd.DataFrame]:
    """Embed the batch as the run did; precomputed files may list more ids than the batch.

    With ``known`` (:func:`known_ids`), vectors of ids outside it are refused, as a run refuses
    vectors of ids outside its catalog.
    """
    from ccgraph.embed import embed_catalog
    from ccgraph.embed.base import make_rejects
    from ccgraph.embed.precomputed import load_precomputed

    ids = catalog.ids
    if given is not None:
        out = {}
        for name, emb in given.items():
            if known is not None:
                _refuse_unknown(
                    np.asarray(emb.ids, dtype=str), ids, known, f"`embeddings[{name!r}]`"
                )
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
        if known is not None:
            _refuse_unknown(np.asarray(loaded.ids, dtype=str), ids, known, str(path))
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


def check_coverage(
    new: Mapping[str, Embeddings],
    old: Mapping[str, Embeddings],
    changes: Changes,
    cfg: Config,
    *,
    given: Mapping[str, Embeddings] | None,
) -> None:
    """Refuse re-sent items that lack the given vectors they had; warn as a run for the rest.

    A vectors file (or ``embeddings``) that misses an item the run has a vector for would
    replace it by nothing: the item would silently lose all its edges. Items of the batch
    left with no embedding at all get the run's :class:`~ccgraph.exceptions.DataQualityWarning`.
    """
    from ccgraph._stages import warn_uncovered

    if given is not None:
        external = {name: f"`embeddings[{name!r}]`" for name in given}
    elif cfg.embed.precomputed.path:
        external = {"precomputed": str(cfg.resolve(cfg.embed.precomputed.path))}
    else:
        external = {}
    for name, source in external.items():
        prev = old.get(name)
        if prev is None or not len(changes.present):
            continue
        had = changes.present[member(changes.present, prev.ids)]
        emb = new.get(name)
        lost = had[~member(had, emb.ids)] if emb is not None else had
        if len(lost):
            raise InputError(
                f"{source}: no {name!r} vector for {len(lost)} items of the batch that the run "
                f"has one for, e.g. {lost[:5].tolist()}; they would be replaced by nothing and "
                "lose all their edges: add their vectors (and ids) to the vectors file, or "
                "leave those rows out of the batch to keep the items as they are"
            )
    warn_uncovered(dict(new), np.concatenate([changes.added, changes.present]).astype(str))


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
