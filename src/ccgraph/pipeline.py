"""``ccgraph.run``: the whole pipeline as a short sequence of stage calls.

catalog -> embeddings -> kNN graph -> duplicates -> Leiden levels -> cluster descriptions ->
tag spreading -> popularity -> run directory. Each stage is timed and logged; the manifest keeps
the timings, the counts and the parameters of every stage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ccgraph import _assemble, _checkpoint, _late_stages, _memory, _stages
from ccgraph._logging import StageTimer
from ccgraph.config import Config, check_previous_run, config_from_mapping, load_config
from ccgraph.containers import RunResult
from ccgraph.exceptions import ParameterError
from ccgraph.update import _persist

__all__ = ["run"]

log = logging.getLogger(__name__)


def _as_config(config: Config | str | Path | Mapping[str, Any]) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, (str, Path)):
        return load_config(config)
    if not isinstance(config, Mapping):
        raise ParameterError(
            "`config` must be a Config, the path of a YAML file or a mapping of its sections; "
            f"got {type(config).__name__} {config!r}"
        )
    return config_from_mapping(dict(config), base_dir=Path.cwd())


def run(
    config: Config | str | Path | Mapping[str, Any],
    *,
    out: str | Path | None = None,
    resume: bool = False,
    show_progress: bool = False,
    write: bool = True,
) -> RunResult:
    """Run the pipeline described by ``config`` and write the run directory.

    Parameters
    ----------
    config
        A :class:`~ccgraph.config.Config`, a YAML path, or a mapping with the YAML's structure.
    out
        Run directory; wins over ``output.dir``.
    resume
        Report what is restored from an interrupted run, and warn when nothing matches.
        Embeddings (content-addressed cache) and the kNN graph (checkpoint keyed by the
        embeddings' bytes and the graph settings, see :mod:`ccgraph._checkpoint`) are reused
        whenever their key matches, with or without ``resume``: a match is exactly what the
        stage would compute.
    show_progress
        Show progress bars for long stages.
    write
        Write the run directory (``False`` returns the result only).

    Returns
    -------
    RunResult
        The tables of the run directory, the graph and the manifest.

    Examples
    --------
    Forty items with precomputed vectors, written to a run directory and read back:

    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> import pandas as pd
    >>> import ccgraph
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> ids = [f"i{j}" for j in range(40)]
    >>> pd.DataFrame({"id": ids, "title": ids}).to_csv(tmp / "cat.csv", index=False)
    >>> vectors = np.random.default_rng(0).normal(size=(40, 8)).astype("float32")
    >>> np.save(tmp / "vec.npy", vectors)
    >>> result = ccgraph.run({
    ...     "data": {"path": str(tmp / "cat.csv"), "format": "table"},
    ...     "embed": {"text": {"enabled": False}, "precomputed": {"path": str(tmp / "vec.npy")}},
    ...     "graph": {"k": 5},
    ...     "output": {"dir": str(tmp / "run")},
    ... })
    >>> result.manifest["counts"]["items"], result.graph.adjacency.shape
    (40, (40, 40))
    >>> loaded = ccgraph.load_run(tmp / "run")
    >>> bool((loaded.items["cluster"] == result.items["cluster"]).all())
    True
    """
    from ccgraph.embed import embed_catalog
    from ccgraph.io import read_catalog_from_config, write_run
    from ccgraph.propagate import explain_tags, infer_popularity

    cfg = _as_config(config)
    check_previous_run(cfg)
    if cfg.execution.engine == "spark":
        from ccgraph.spark.pipeline import run_spark

        return run_spark(cfg, out=out, write=write)
    out_dir = _stages.resolve_out_dir(cfg, out)
    cache_dir = cfg.resolve(cfg.embed.cache_dir) or (out_dir.parent / f".{out_dir.name}.cache")
    timer = StageTimer()
    stages: dict[str, Any] = {}
    if write:
        _stages.check_output(
            out_dir, overwrite=cfg.output.overwrite, inputs=_stages.input_paths(cfg)
        )

    with timer.stage("read"):
        catalog = read_catalog_from_config(cfg.data, cfg.base_dir)
    with timer.stage("embed"):
        embeddings, embed_rejects = embed_catalog(
            catalog,
            cfg.embed,
            base_dir=cfg.base_dir,
            cache_dir=cache_dir,
            n_jobs=cfg.n_jobs,
            show_progress=show_progress,
        )
        stages["embed"] = {k: dict(v.params) for k, v in embeddings.items()}
    ids = catalog.ids
    _stages.warn_uncovered(embeddings, ids)
    seeds = _stages.build_seed_tags(catalog, cfg)
    shape = _stages.run_shape(embeddings, ids, seeds, cfg)
    memory = _memory.estimate_run(**shape)
    limit_gb = cfg.execution.memory_limit_gb
    knn_lists: dict[str, Any] = {}  # kept for incremental updates (ccgraph.update)
    with timer.stage("graph"):
        key = _checkpoint.graph_key(embeddings, ids, _stages.graph_settings(cfg))
        restored = _checkpoint.load_graph(cache_dir, key, resume=resume)
        if restored is not None:
            knn_restored = _checkpoint.load_knn(cache_dir, key)
            restored = restored if knn_restored is not None else None
        if restored is None:
            _memory.check_stages(memory, ("knn", "graph"), memory_limit_gb=limit_gb)
            graph, stages["graph"] = _stages.build_graph(embeddings, ids, cfg, knn_store=knn_lists)
            _checkpoint.save_graph(cache_dir, key, graph, stages["graph"])
            _checkpoint.save_knn(cache_dir, key, knn_lists)
        else:
            graph, stages["graph"] = restored
            knn_lists.update(knn_restored or {})
        stages["graph"].update(dict(graph.params), checkpoint=key, restored=restored is not None)
    with timer.stage("duplicates"):
        group, canonical, stages["duplicates"] = _stages.duplicate_groups(
            embeddings, catalog, cfg, knn=knn_lists, graph=graph
        )
    memory = _memory.estimate_run(**shape, n_edges=graph.n_edges)
    _memory.check_stages(memory, ("cluster",), memory_limit_gb=limit_gb)
    with timer.stage("cluster"):
        levels, default_level, stages["cluster"] = _stages.cluster_levels(graph, cfg)
    with timer.stage("describe"):
        clusters = _late_stages.describe_levels(graph, levels, catalog, seeds, cfg)
    inferred = None
    extras: dict[str, Any] = {}
    if cfg.propagate.tags.enabled and seeds.n_tags == 0:
        log.warning(
            "no tag can seed the spreading (%d tagged items; a tag must be used by at least "
            "`data.tags.min_count` = %d items after hygiene): no tags are inferred",
            int(catalog.tags["id"].nunique()),
            cfg.data.tags.min_count,
        )
    if cfg.propagate.tags.enabled and seeds.n_tags > 0:
        _memory.check_stages(memory, ("tags",), memory_limit_gb=limit_gb)
        t = cfg.propagate.tags
        with timer.stage("tags"):
            inferred, stages["tags"] = _late_stages.spread_stage(
                graph, seeds, levels[default_level], cfg, embeddings=embeddings
            )
            if t.explain:
                extras["explanations"] = explain_tags(graph, seeds, pairs=inferred, alpha=t.alpha)
    popularity = None
    if cfg.propagate.popularity.enabled:
        p = cfg.propagate.popularity
        raw, provider = _late_stages.popularity_inputs(catalog, percentile=p.percentile)
        with timer.stage("popularity"):
            popularity = infer_popularity(
                graph, raw, provider, alpha=p.alpha, tol=p.tol, percentile=p.percentile, r=p.r
            )
        stages["popularity"] = dict(popularity.params)

    with timer.stage("assemble"):
        items_df = _assemble.items_table(
            catalog, graph, levels, default_level, group, canonical, popularity
        )
        tags_df = _assemble.tags_table(catalog, ids, inferred)
        rejects = pd.concat([catalog.rejects, embed_rejects], ignore_index=True)
        extras.update(_persist.run_extras(embeddings, ids, knn_lists))
        stages["persist"] = _persist.update_info(levels, cfg.base_dir)
        counts = _counts(items_df, tags_df, rejects, graph, levels, default_level, seeds)
        manifest = _late_stages.run_manifest(
            cfg, timings=timer.timings, counts=counts, stages=stages
        )
    result = RunResult(items_df, tags_df, clusters, rejects, graph, manifest, extras=extras)
    if not write:
        return result
    with timer.stage("write"):
        path = write_run(result, out_dir, overwrite=cfg.output.overwrite)
    log.info("run written to %s", path)
    if cfg.report.enabled:
        from ccgraph.report import write_report

        with timer.stage("report"):
            write_report(
                path,
                max_clusters=cfg.report.max_clusters,
                thumbnails=cfg.report.thumbnails,
                n_similar=cfg.report.n_similar,
                rng=cfg.seed,
            )
    return RunResult(
        items_df, tags_df, clusters, rejects, graph, manifest, path=path, extras=extras
    )


#: The Spark pipeline reads the counts from here.
_counts = _late_stages.run_counts
