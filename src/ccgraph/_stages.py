"""Config-driven stage calls used by :func:`ccgraph.pipeline.run`.

Each function maps one config section onto the keyword arguments of the public API of one
stage, so ``pipeline.run`` stays a short, readable sequence.
"""

from __future__ import annotations

import functools
import itertools
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.config import Config, DuplicatesConfig
from ccgraph.containers import Catalog, Embeddings, KnnGraph, Partition, TagSet
from ccgraph.exceptions import ConfigError, DataQualityWarning, InputError

__all__ = [
    "build_graph",
    "build_seed_tags",
    "check_output",
    "cluster_levels",
    "expand_graph",
    "graph_settings",
    "input_paths",
    "knn_options",
    "run_shape",
    "warn_uncovered",
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


def warn_uncovered(embeddings: dict[str, Embeddings], ids: np.ndarray) -> None:
    """Warn when some items have no embedding at all: they end up isolated in the graph."""
    if not embeddings:
        return
    covered = np.isin(ids, np.concatenate([e.ids for e in embeddings.values()]))
    if not covered.all():
        missing = ids[~covered]
        warnings.warn(
            f"{len(missing)} of {len(ids)} items have no embedding (e.g. {missing[:3].tolist()}; "
            "their image or vector was rejected or absent, see rejects.parquet) and are "
            "isolated in the graph: each is its own cluster and gets no tags or popularity "
            "from neighbours",
            DataQualityWarning,
            stacklevel=2,
        )


def knn_options(cfg: Config) -> dict[str, Any]:
    """The keywords of :func:`~ccgraph.graph.build_knn_graph` besides ``k`` and ``metric``."""
    g = cfg.graph
    return {
        "mutual": g.mutual,
        "min_degree": g.min_degree,
        "weighting": g.weighting,
        "backend": g.backend,
        "bridge_components": g.bridge_components,
        "rng": cfg.seed,
        "n_jobs": cfg.n_jobs,
    }


def build_graph(
    embeddings: dict[str, Embeddings],
    ids: np.ndarray,
    cfg: Config,
    *,
    knn_store: dict[str, Any] | None = None,
) -> tuple[KnnGraph, dict[str, Any]]:
    """Build one kNN graph per modality (or one over concatenated vectors) and fuse them.

    With ``knn_store``, the kNN lists of every search are kept in it (per graph name: the
    modality, or ``"concat"``) for later incremental updates (:mod:`ccgraph.update`).
    """
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
    common = knn_options(cfg)
    info: dict[str, Any] = {"modalities": sorted(embeddings), "fusion_weights": weights}

    def knn(emb: Embeddings, name: str) -> KnnGraph:
        k = g.k
        if emb.n_items < 3:
            raise InputError(
                f"only {emb.n_items} of {n} items have {name!r} embeddings; a similarity graph "
                "needs at least 3. The others were rejected or had no input: see the reasons "
                "the embed stage logged (e.g. missing or unreadable files, images over "
                "`embed.image.max_pixels`)"
            )
        if k >= emb.n_items:
            raise ConfigError(
                f"`graph.k` is {k} but only {emb.n_items} items have this embedding; "
                f"set graph.k below {emb.n_items} (e.g. --set graph.k={max(1, emb.n_items - 1)})"
            )
        metric = "hamming" if emb.kind == "binary" else g.metric
        if knn_store is not None:
            from ccgraph.update._persist import search_and_build

            return search_and_build(emb, name=name, k=k, metric=metric, store=knn_store, **common)
        return build_knn_graph(emb, k=k, metric=metric, **common)

    if g.fusion.method == "concat" and len(embeddings) > 1:
        dense = {k: v for k, v in embeddings.items() if v.kind == "dense"}
        if len(dense) != len(embeddings):
            raise ConfigError(
                "`graph.fusion.method: concat` needs dense vectors for every modality; "
                "perceptual hashes can only be fused with `method: adjacency`"
            )
        # Items every modality covers (intersect1d takes two arrays at a time).
        common_ids = functools.reduce(np.intersect1d, [e.ids for e in dense.values()])
        shared = ids[np.isin(ids, common_ids)]
        if len(shared) < n:
            warnings.warn(
                f"{n - len(shared)} items lack one of the modalities and are left out of the "
                "concatenated kNN (they stay isolated unless another edge reaches them)",
                DataQualityWarning,
                stacklevel=2,
            )
        parts = [e.align(shared) for e in dense.values()]
        fused = concat_embeddings(parts, weights=[weights[k] for k in dense])
        return expand_graph(knn(fused, "concat"), ids), info

    graphs = {name: expand_graph(knn(emb, name), ids) for name, emb in embeddings.items()}
    if len(graphs) == 1:
        return next(iter(graphs.values())), info
    fused_graph = fuse_graphs(list(graphs.values()), weights=[weights[k] for k in graphs])
    return fused_graph, info


def cluster_levels(graph: KnnGraph, cfg: Config) -> tuple[list[Partition], int, dict[str, Any]]:
    """Leiden at every configured resolution, stable IDs, and the default level.

    With ``cluster.previous_run``, each level starts from the previous run's clusters
    (``warm_start``) and its labels are matched to the old IDs (``stabilize``), so reruns on a
    slightly changed catalog keep their cluster IDs.
    """
    from ccgraph._late_stages import sweep_info
    from ccgraph.cluster import (
        choose_default_level,
        leiden,
        leiden_levels,
        recursive_split,
        stabilize,
        warm_start,
    )

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
    info: dict[str, Any] = {"sweep": sweep_info(levels)}
    if c.previous_run:
        old = _previous_items(cfg)
        churn = []
        for i, part in enumerate(levels):
            col = f"cluster_l{i}"
            if col not in old.columns:
                continue
            prior = old.set_index("id")[col]
            if c.warm_start:
                res = float(part.params.get("resolution", 1.0))
                part = leiden(
                    graph,
                    resolution=res,
                    objective=c.objective,
                    backend=c.backend,
                    n_iterations=c.n_iterations,
                    rng=cfg.seed,
                    initial_membership=warm_start(graph.ids, prior),
                )
            levels[i] = stabilize(part, prior, min_overlap=c.min_overlap)
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


def _previous_items(cfg: Config) -> pd.DataFrame:
    prev = cfg.resolve(cfg.cluster.previous_run)
    assert prev is not None
    items_path = prev / "items.parquet"
    if not items_path.exists():
        raise ConfigError(
            f"`cluster.previous_run`: {items_path} does not exist; point it at a ccgraph run "
            "directory"
        )
    try:
        return pd.read_parquet(items_path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ConfigError(
            f"`cluster.previous_run`: {items_path} cannot be read ({exc}); point it at a "
            "complete ccgraph run directory"
        ) from None


def no_duplicate_search(d: DuplicatesConfig, modality: str | None) -> dict[str, Any] | None:
    """The duplicates params of a run that searches no groups, or None if it searches.

    ``modality`` is the embedding the groups would come from (None: no embedding).
    Caption embeddings alone are searched only with ``from_text`` (equal captions of different
    photos are not duplicate images). Shared by the local and the Spark pipeline.
    """
    if modality == "text" and d.enabled and not d.from_text:
        log.info(
            "duplicates: the run has only caption embeddings; no near-duplicate groups "
            "(equal captions are not duplicate images; set graph.duplicates.from_text to "
            "group them)"
        )
        return {"enabled": False, "modality": None, "skipped": "text only (from_text: false)"}
    if not d.enabled or modality is None:
        return {"enabled": False, "modality": None}
    return None


def duplicate_groups(
    embeddings: dict[str, Embeddings],
    catalog: Catalog,
    cfg: Config,
    *,
    knn: Any = None,
    graph: KnnGraph | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Near-duplicate groups over the most image-like modality (items it lacks are singletons).

    Images are preferred (identical photos share pixels), then precomputed vectors, then
    captions, these only with ``graph.duplicates.from_text`` (equal captions of different
    photos are not duplicate images). Returns the group of every catalog item, the canonical
    flags and the params (``modality``: the embedding the groups were found from, ``None``
    when none was searched).
    Candidate pairs come from the graph stage's kNN lists of that modality when ``knn`` (a
    mapping of graph name to lists with ``ids``, ``indices``, ``distances``) holds them, else
    from the edges of ``graph``, else from a new kNN search: reusing them saves a second
    search, the costliest step at a million items.
    """
    from ccgraph.embed.blank import blank_hash_keys
    from ccgraph.graph import find_duplicates

    d = cfg.graph.duplicates
    ids = catalog.ids
    n = len(ids)
    name = next((m for m in ("image", "precomputed", "text") if m in embeddings), None)
    skipped = no_duplicate_search(d, name)
    if skipped is None and name is not None and embeddings[name].n_items < 2:
        skipped = {"enabled": False, "modality": None}
    if skipped is not None:
        return np.arange(n, dtype=np.int64), np.ones(n, dtype=bool), skipped
    assert name is not None  # no_duplicate_search skips a run without embeddings
    emb = embeddings[name]
    pos = pd.Index(ids).get_indexer(emb.ids)
    priority = _priority(catalog, d.canonical)
    lists = (knn or {}).get(name)
    reuse: dict[str, Any] = {}
    if lists is not None and np.array_equal(np.asarray(lists.ids).astype(str), emb.ids):
        reuse["knn"] = (lists.indices, lists.distances)
    elif graph is not None:
        same = len(pos) == n and bool((pos == np.arange(n)).all())
        sub = graph.adjacency if same else graph.adjacency[pos][:, pos]
        reuse["graph"] = KnnGraph(sp.csr_matrix(sub), emb.ids, {})
    if name == "image":  # blank images share one hash: not duplicates unless the same file
        items = catalog.items
        col = items["image_path"] if "image_path" in items.columns else pd.Series([None] * n)
        paths = col.to_numpy(object)[pos].tolist()
        reuse["isolate"] = blank_hash_keys(emb, paths, n_jobs=cfg.n_jobs or 1)
    found = find_duplicates(
        emb,
        cosine=d.cosine,
        hamming=d.hamming,
        canonical="first" if priority is None else "priority",
        priority=None if priority is None else priority[pos],
        backend=cfg.graph.backend,
        rng=cfg.seed,
        n_jobs=cfg.n_jobs,
        **reuse,
    )
    group = np.full(n, -1, dtype=np.int64)
    canonical = np.ones(n, dtype=bool)
    group[pos] = found.group
    canonical[pos] = found.is_canonical
    missing = group < 0
    group[missing] = group.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    # Renumber groups by first appearance so the labels do not depend on the modality order.
    _, first = np.unique(group, return_index=True)
    order = np.argsort(np.argsort(first))
    group = order[np.searchsorted(np.unique(group), group)]
    return group, canonical, {"modality": name, **dict(found.params)}


def _priority(catalog: Catalog, rule: str) -> np.ndarray | None:
    items = catalog.items
    if rule == "popularity" and "popularity_raw" in items.columns:
        raw = pd.to_numeric(items["popularity_raw"], errors="coerce")
        if raw.notna().any():
            return raw.to_numpy(np.float64)
    if rule == "resolution" and {"width", "height"} <= set(items.columns):
        w = pd.to_numeric(items["width"], errors="coerce")
        h = pd.to_numeric(items["height"], errors="coerce")
        return (w * h).to_numpy(np.float64)
    return None


def build_seed_tags(catalog: Catalog, cfg: Config, *, ids: np.ndarray | None = None) -> TagSet:
    """Seed matrix for tag spreading: user tags weigh `user_weight`, machine tags their accuracy.

    ``ids`` is ``catalog.ids`` if the caller holds them already (as
    :func:`~ccgraph.containers.as_ids` returned them: neither converted nor checked again).
    """
    t = cfg.propagate.tags
    tags = catalog.tags
    tags = tags[tags["source"].isin(t.sources)].copy()
    user = tags["source"] == "user"
    w = pd.to_numeric(tags["weight"], errors="coerce").fillna(1.0).astype(np.float32)
    w = w.where(~user, np.float32(t.user_weight))
    if t.machine_weight != "accuracy":
        w = w.where(user, np.float32(float(t.machine_weight)))
    tags["weight"] = w
    ids = catalog.ids if ids is None else ids
    return TagSet.from_frame(tags, ids, weight_column="weight", min_count=cfg.data.tags.min_count)


def resolve_out_dir(cfg: Config, out: str | Path | None) -> Path:
    """The run directory: ``--out`` wins over ``output.dir`` (relative to the config file)."""
    if out is not None:
        return Path(out).expanduser().resolve()
    resolved = cfg.resolve(cfg.output.dir)
    assert resolved is not None
    return resolved.resolve()


def check_output(
    out_dir: Path, *, overwrite: bool, inputs: Mapping[str, Path | None] | None = None
) -> None:
    """Fail before any work when the run directory could not be written or replaced later.

    ``inputs`` maps config keys to the files they name: with ``overwrite``, one that lies inside
    an existing ``out_dir`` would be deleted with the old run, so it is refused.
    """
    from ccgraph.exceptions import OutputError
    from ccgraph.io.atomic import make_temp_dir, refuse_existing_run

    refuse_existing_run(
        out_dir,
        overwrite=overwrite,
        hint="set `output.overwrite: true` to replace it, or choose another output directory "
        "(`output.dir` or `--out`)",
    )
    if overwrite and out_dir.is_dir():
        for key, path in (inputs or {}).items():
            if path is not None and out_dir in path.resolve().parents:
                raise OutputError(
                    f"`{key}` ({path}) lies inside the run directory {out_dir}, which this run "
                    "replaces: it would be deleted with the old run. Move it out of the run "
                    "directory, or choose another output directory (`output.dir` or `--out`)"
                )
    make_temp_dir(out_dir).rmdir()  # a writability probe beside the run directory


def input_paths(cfg: Config) -> dict[str, Path | None]:
    """The files and folders a config reads, by key (a glob as the folder before its pattern)."""
    paths = cfg.data.path if isinstance(cfg.data.path, list) else [cfg.data.path]
    out: dict[str, Path | None] = {}
    for i, raw in enumerate(paths):
        parts = Path(raw).parts
        plain = list(itertools.takewhile(lambda q: not set(q) & set("*?["), parts))
        key = "data.path" if len(paths) == 1 else f"data.path[{i}]"
        out[key] = cfg.resolve(str(Path(*plain))) if plain else None
    pre = cfg.embed.precomputed
    out["embed.precomputed.path"] = cfg.resolve(pre.path)
    out["embed.precomputed.ids_path"] = cfg.resolve(pre.ids_path)
    out["embed.cache_dir"] = cfg.resolve(cfg.embed.cache_dir)
    return out


def graph_settings(cfg: Config) -> dict[str, Any]:
    """Everything besides the embeddings that determines the graph (its checkpoint key)."""
    return {
        "graph": cfg.graph.model_dump(mode="json", exclude={"duplicates"}),
        "seed": cfg.seed,
        "n_jobs": cfg.n_jobs,
    }


def run_shape(
    embeddings: dict[str, Embeddings], ids: np.ndarray, seeds: TagSet, cfg: Config
) -> dict[str, Any]:
    """The keywords of ``_memory.estimate_run``: items, kNN width, neighbours, tags, block."""
    widths = [-(-e.vectors.shape[1] * e.vectors.dtype.itemsize // 4) for e in embeddings.values()]
    concat = cfg.graph.fusion.method == "concat" and len(widths) > 1
    return {
        "n": len(ids),
        "d": max(1, sum(widths) if concat else max(widths, default=1)),
        "k": cfg.graph.k,
        "t": int(seeds.n_tags),
        "tag_block": cfg.propagate.tags.tag_block,
        "backend": cfg.graph.backend,
    }
