"""Config-driven stage calls used by :func:`ccgraph.pipeline.run`.

Each function maps one config section onto the keyword arguments of the public API of one
stage, so ``pipeline.run`` stays a short, readable sequence.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.config import Config
from ccgraph.containers import Catalog, Embeddings, KnnGraph, Partition, TagSet
from ccgraph.exceptions import ConfigError, DataQualityWarning, InputError

__all__ = [
    "build_graph",
    "build_seed_tags",
    "cluster_levels",
    "expand_graph",
]

log = logging.getLogger(__name__)


def expand_graph(graph: KnnGraph, ids: np.ndarray) -> KnnGraph:
    """Place a graph over a subset of items into the index space of ``ids`` (others isolated)."""
    if np.array_equal(graph.ids, ids):
        return graph
    pos = pd.Index(ids).get_indexer(graph.ids)
    if (pos < 0).any():
        raise InputError("a modality graph holds ids that are not in the catalog")
    coo = graph.adjacency.tocoo()
    m = sp.csr_matrix(
        (coo.data, (pos[coo.row], pos[coo.col])), shape=(len(ids), len(ids)), dtype=np.float32
    )
    m.sort_indices()
    return KnnGraph(m, ids, dict(graph.params))


def build_graph(
    embeddings: dict[str, Embeddings], ids: np.ndarray, cfg: Config
) -> tuple[KnnGraph, dict[str, Any]]:
    """Build one kNN graph per modality (or one over concatenated vectors) and fuse them."""
    from ccgraph.graph import build_knn_graph, concat_embeddings, fuse_graphs

    g = cfg.graph
    if not embeddings:
        raise ConfigError(
            "no embedding is enabled: turn on `embed.text.enabled`, set `embed.image.kind`, "
            "or give `embed.precomputed.path`"
        )
    n = len(ids)
    if n < 3:
        raise InputError(f"the catalog has {n} usable items; a similarity graph needs at least 3")
    weights = {name: float(g.fusion.weights.get(name, 1.0)) for name in embeddings}
    common = dict(
        mutual=g.mutual,
        min_degree=g.min_degree,
        weighting=g.weighting,
        backend=g.backend,
        bridge_components=g.bridge_components,
        rng=cfg.seed,
        n_jobs=cfg.n_jobs,
    )
    info: dict[str, Any] = {"modalities": sorted(embeddings), "fusion_weights": weights}

    def knn(emb: Embeddings) -> KnnGraph:
        k = g.k
        if k >= emb.n_items:
            raise ConfigError(
                f"`graph.k` is {k} but only {emb.n_items} items have this embedding; "
                f"set graph.k below {emb.n_items} (e.g. --set graph.k={max(1, emb.n_items - 1)})"
            )
        metric = "hamming" if emb.kind == "binary" else g.metric
        return build_knn_graph(emb, k=k, metric=metric, **common)

    if g.fusion.method == "concat" and len(embeddings) > 1:
        dense = {k: v for k, v in embeddings.items() if v.kind == "dense"}
        if len(dense) != len(embeddings):
            raise ConfigError(
                "`graph.fusion.method: concat` needs dense vectors for every modality; "
                "perceptual hashes can only be fused with `method: adjacency`"
            )
        shared = ids[np.isin(ids, np.intersect1d(*[e.ids for e in dense.values()]))]
        if len(shared) < n:
            warnings.warn(
                f"{n - len(shared)} items lack one of the modalities and are left out of the "
                "concatenated kNN (they stay isolated unless another edge reaches them)",
                DataQualityWarning,
                stacklevel=2,
            )
        parts = [e.align(shared) for e in dense.values()]
        fused = concat_embeddings(parts, weights=[weights[k] for k in dense])
        return expand_graph(knn(fused), ids), info

    graphs = {name: expand_graph(knn(emb), ids) for name, emb in embeddings.items()}
    if len(graphs) == 1:
        return next(iter(graphs.values())), info
    fused_graph = fuse_graphs(list(graphs.values()), weights=[weights[k] for k in graphs])
    return fused_graph, info


def cluster_levels(graph: KnnGraph, cfg: Config) -> tuple[list[Partition], int, dict[str, Any]]:
    """Leiden at every configured resolution, stable IDs, and the default level."""
    from ccgraph.cluster import choose_default_level, leiden_levels, recursive_split, stabilize

    c = cfg.cluster
    levels = leiden_levels(
        graph,
        resolutions=c.resolutions,
        objective=c.objective,
        backend=c.backend,
        n_iterations=c.n_iterations,
        rng=cfg.seed,
    )
    if c.max_cluster_size:
        levels[-1] = recursive_split(
            graph, levels[-1], max_cluster_size=c.max_cluster_size, rng=cfg.seed
        )
    info: dict[str, Any] = {}
    if c.previous_run:
        prev = cfg.resolve(c.previous_run)
        assert prev is not None
        items_path = prev / "items.parquet"
        if not items_path.exists():
            raise ConfigError(f"`cluster.previous_run`: {items_path} does not exist")
        old = pd.read_parquet(items_path)
        churn = []
        for i, part in enumerate(levels):
            col = f"cluster_l{i}"
            if col in old.columns:
                levels[i] = stabilize(part, old.set_index("id")[col])
                churn.append(float(levels[i].params.get("churn", float("nan"))))
        info["churn"] = churn
    default = (
        choose_default_level(levels, target_size=c.target_size)
        if c.default_level == "auto"
        else int(c.default_level)
    )
    if not 0 <= default < len(levels):
        raise ConfigError(
            f"`cluster.default_level` must be 'auto' or in [0, {len(levels) - 1}]; got {default}"
        )
    info["default_level"] = default
    return levels, default, info


def build_seed_tags(catalog: Catalog, cfg: Config) -> TagSet:
    """Seed matrix for tag spreading: user tags weigh `user_weight`, machine tags their accuracy."""
    t = cfg.propagate.tags
    tags = catalog.tags
    tags = tags[tags["source"].isin(t.sources)].copy()
    user = tags["source"] == "user"
    w = pd.to_numeric(tags["weight"], errors="coerce").fillna(1.0).astype(np.float32)
    w = w.where(~user, np.float32(t.user_weight))
    if t.machine_weight != "accuracy":
        w = w.where(user, np.float32(float(t.machine_weight)))
    tags["weight"] = w
    return TagSet.from_frame(
        tags, catalog.ids, weight_column="weight", min_count=cfg.data.tags.min_count
    )


def resolve_out_dir(cfg: Config, out: str | Path | None) -> Path:
    """The run directory: ``--out`` wins over ``output.dir`` (relative to the config file)."""
    if out is not None:
        return Path(out).expanduser().resolve()
    resolved = cfg.resolve(cfg.output.dir)
    assert resolved is not None
    return resolved.resolve()
