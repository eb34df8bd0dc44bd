"""What the harness feeds the methods: the catalog, the rebuilt graph and features, the seeds.

Also the per-repeat side studies (cluster coherence, held-out popularity).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ccgraph.config import Config, EvaluateConfig
from ccgraph.containers import Catalog, Embeddings, KnnGraph, TagSet
from ccgraph.evaluate.clusters import tag_coherence
from ccgraph.exceptions import ConfigError, InputError
from ccgraph.propagate.tagprop import fused_features as dense_features

__all__ = [
    "GraphSource",
    "build_seeds",
    "cluster_coherence",
    "dense_features",
    "load_catalog",
    "popularity_study",
    "spread_kwargs",
    "tagprop_settings",
]


def load_catalog(cfg: Config, settings: EvaluateConfig) -> Catalog:
    if settings.dataset == "flickr8k" or settings.protocol == "captions":
        from ccgraph.evaluate.datasets import dataset_path
        from ccgraph.evaluate.flickr8k import load_flickr8k

        if cfg.embed.text.enabled:
            raise ConfigError(
                "Flickr8k tags are words of the captions: scoring them on a graph that embeds "
                "text would leak them. Set `embed.text.enabled: false` and use image features"
            )
        path = cfg.resolve(cfg.data.path if isinstance(cfg.data.path, str) else cfg.data.path[0])
        return load_flickr8k(
            dataset_path(path, "flickr8k-1000"), min_captions=settings.min_captions
        )
    if settings.dataset in ("cora", "citeseer"):
        raise ConfigError(f"dataset {settings.dataset!r} is evaluated with `protocol: planetoid`")
    from ccgraph.io import read_catalog_from_config

    return read_catalog_from_config(cfg.data, cfg.base_dir)


class GraphSource:
    """Builds (graph, features) for a scrubbed catalog, reusing them when the text is unused."""

    def __init__(self, cfg: Config | None, ready: tuple[Any, ...] | None):
        self.cfg, self.ready = cfg, ready
        self._cached: tuple[KnnGraph, Embeddings | None] | None = None
        self.text_dependent = bool(cfg is not None and cfg.embed.text.enabled)

    def __call__(self, catalog: Catalog) -> tuple[KnnGraph, Embeddings | None]:
        if self._cached is not None and not self.text_dependent:
            return self._cached
        if self.ready is not None:
            built = self._from_ready(catalog.ids)
        else:
            built = self._from_config(catalog)
        self._cached = built
        return built

    def _from_ready(self, ids: np.ndarray) -> tuple[KnnGraph, Embeddings | None]:
        assert self.ready is not None
        graph = next((x for x in self.ready[1:] if isinstance(x, KnnGraph)), None)
        emb = next((x for x in self.ready[1:] if isinstance(x, Embeddings)), None)
        if graph is None and emb is None:
            raise InputError("ready inputs need a KnnGraph or Embeddings after the catalog")
        if graph is None:
            from ccgraph.graph import build_knn_graph

            assert emb is not None
            graph = build_knn_graph(emb.align(ids), k=15, rng=0)
        from ccgraph._stages import expand_graph

        graph = expand_graph(graph, ids)
        return graph, dense_features({"ready": emb}, ids) if emb is not None else None

    def _from_config(self, catalog: Catalog) -> tuple[KnnGraph, Embeddings | None]:
        from ccgraph._stages import build_graph, resolve_out_dir
        from ccgraph.embed import embed_catalog

        cfg = self.cfg
        assert cfg is not None
        run_dir = resolve_out_dir(cfg, None)
        cache = cfg.resolve(cfg.embed.cache_dir) or (run_dir.parent / f".{run_dir.name}.cache")
        embeddings, _ = embed_catalog(
            catalog,
            cfg.embed,
            base_dir=cfg.base_dir,
            cache_dir=cache,
            n_jobs=cfg.n_jobs,
            show_progress=False,
        )
        graph, _ = build_graph(embeddings, catalog.ids, cfg)
        return graph, dense_features(embeddings, catalog.ids)


def build_seeds(catalog: Catalog, cfg: Config | None) -> TagSet:
    if cfg is not None:
        from ccgraph._stages import build_seed_tags

        return build_seed_tags(catalog, cfg)
    return TagSet.from_frame(catalog.tags, catalog.ids, weight_column="weight", min_count=2)


def spread_kwargs(cfg: Config | None) -> dict[str, Any]:
    """The pipeline's spread_tags settings (cluster_prior is left at 0: no partition here)."""
    if cfg is None:
        return {}
    t = cfg.propagate.tags
    return {
        "alpha": t.alpha,
        "tol": t.tol,
        "max_iter": t.max_iter,
        "tag_block": t.tag_block,
        "calibrator": None if t.calibrator == "none" else t.calibrator,
        "calibration_tag_fraction": t.calibration_tag_fraction,
        "dtype": t.dtype,
        "reorder": t.reorder,
    }


def tagprop_settings(cfg: Config | None, k_default: int) -> dict[str, Any]:
    """``propagate.tags.tagprop_weight`` and its neighbour count (default ``k_default``).

    With a weight set, the harness's ``spread`` method is the run's blend
    (:func:`ccgraph.propagate.spread_tagprop.spread_tagprop_tags`); empty without one.
    """
    if cfg is None or cfg.propagate.tags.tagprop_weight is None:
        return {}
    t = cfg.propagate.tags
    return {"weight": t.tagprop_weight, "k": t.tagprop_k or k_default}


def cluster_coherence(graph: KnnGraph, seeds: TagSet, seed: int) -> dict[str, Any]:
    """Tag coherence of Leiden clusters (resolution 1) of this repeat's graph, visible tags."""
    try:
        from ccgraph.cluster import leiden
    except ImportError as exc:
        return {"skipped": f"ccgraph.cluster not available: {exc}"}
    part = leiden(graph, resolution=1.0, rng=seed)
    out = tag_coherence(part.membership, seeds.matrix, rng=seed)
    return {"clusters": int(part.n_clusters), **out}


def popularity_study(
    graph: KnnGraph, catalog: Catalog, cfg: Config, settings: EvaluateConfig, seed: int
) -> dict[str, Any]:
    """Held-out popularity on the first repeat's graph (skipped without observed values)."""
    items = catalog.items
    if "popularity_raw" not in items.columns:
        return {}
    raw = pd.to_numeric(items["popularity_raw"], errors="coerce").to_numpy(np.float64)
    if np.isfinite(raw).sum() < 10:
        return {}
    from ccgraph.evaluate.popularity import evaluate_popularity

    p = cfg.propagate.popularity
    try:
        return evaluate_popularity(
            graph,
            raw,
            items["provider"].fillna("").astype(str).to_numpy(),
            fraction=settings.hide_fraction,
            n_boot=settings.bootstrap,
            rng=seed,
            infer_kwargs={"alpha": p.alpha, "tol": p.tol, "percentile": p.percentile, "r": p.r},
        )
    except ImportError as exc:
        return {"skipped": f"ccgraph.propagate not available: {exc}"}
