"""The stage sequence of :func:`ccgraph.update.update_run` once the run and the batch are read."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._lane import SEEDS, current
from ccgraph._logging import StageTimer
from ccgraph._random import RngLike
from ccgraph.config import Config
from ccgraph.containers import Catalog, Embeddings, KnnGraph, RunResult, TagSet, as_ids
from ccgraph.exceptions import InputError
from ccgraph.update._calls import RunTagEntries, duplicates, local_tags, run_tag_entries
from ccgraph.update._catalog import Changes
from ccgraph.update._ids import locate
from ccgraph.update._output import noop, splice_tags, subset, summary, write_drift
from ccgraph.update._persist import member
from ccgraph.update._threads import start, wait_for

if TYPE_CHECKING:
    from ccgraph.io.run import RunWriter

__all__ = ["changed_rows", "run_update"]

logger = logging.getLogger(__name__)


def changed_rows(old: KnnGraph, new: KnnGraph, removed: np.ndarray, n_kept: int) -> np.ndarray:
    """Rows of ``new`` whose edges differ from ``old`` (new rows, beyond ``n_kept``, included).

    The first ``n_kept`` rows of ``new`` are the old items that stayed, in their old order.
    """
    n = new.n_items
    kept_pos = locate(old.ids, new.ids[:n_kept])
    a_old = sp.csr_matrix(old.adjacency)
    gone = np.zeros(old.n_items, dtype=bool)
    if len(removed):
        gone[locate(old.ids, np.asarray(removed).astype(str))] = True
    a_new = sp.csr_matrix(new.adjacency)
    touched = np.zeros(n, dtype=bool)
    if (
        not gone.any()
        and np.array_equal(kept_pos, np.arange(old.n_items))
        and a_old.has_sorted_indices
        and a_new.has_sorted_indices
        and (a_old.data != 0).all()
        and (a_new.data != 0).all()
    ):
        # nothing removed, the old items first and in order: compare rows in place
        from ccgraph.update._knn_kernels import rows_differ

        touched[:n_kept] = rows_differ(
            a_old.indptr, a_old.indices, a_old.data, a_new.indptr, a_new.indices, a_new.data,
            n_kept,
        )  # fmt: skip
    else:
        lost_edge = np.asarray(a_old[:, np.flatnonzero(gone)].getnnz(axis=1) > 0).ravel()
        sub_old = a_old[kept_pos][:, kept_pos]
        sub_new = a_new[:n_kept][:, :n_kept]
        diff = (sub_old != sub_new).tocsr()
        touched[:n_kept] = (
            (np.diff(diff.indptr) > 0)
            | (a_new[:n_kept][:, n_kept:].getnnz(axis=1) > 0)
            | lost_edge[kept_pos]
        )
    touched[n_kept:] = True
    return touched


def run_update(
    old: RunResult,
    batch: Catalog,
    changes: Changes,
    cfg: Config,
    *,
    out: Path,
    writer: RunWriter,
    timer: StageTimer,
    embeddings: Mapping[str, Embeddings] | None,
    rng: RngLike,
    show_progress: bool,
    stage: Path,
) -> RunResult:
    """Embed, graph, duplicates, clusters, descriptions, tags, popularity, assemble, write.

    ``stage`` is a private folder: the merged embeddings are written once, into a memory-mapped
    ``.npy`` there, which ``writer`` (adopting ``stage``) moves into the run instead of writing
    them again. Each part goes to ``writer`` as soon as it is made, so its threads write the
    arrays while the clusters, tags and popularity are computed.
    """
    from ccgraph import _assemble
    from ccgraph._late_stages import (
        describe_levels,
        item_terms,
        run_counts,
        run_manifest,
        spread_stage,
        sweep_info,
        tags_info,
    )
    from ccgraph._stages import build_seed_tags
    from ccgraph.update import _persist
    from ccgraph.update._batch import (
        check_coverage,
        embed_batch,
        known_ids,
        same_content,
        same_vectors,
    )
    from ccgraph.update._catalog import merged_catalog, run_catalog
    from ccgraph.update.clusters import update_levels
    from ccgraph.update.drift import drift_report
    from ccgraph.update.graph import merge_embeddings, update_graph

    stages = copy.deepcopy(dict(old.manifest.get("stages", {})))
    persist = stages.get("persist", {})
    old_emb = _persist.read_embeddings(old.extras, old.ids, stages.get("embed", {}))
    old_lists = _persist.read_knn_lists(old.extras, old.ids)
    if not old_emb or not old_lists or not persist:
        raise InputError(
            f"{old.path} does not keep the embeddings and kNN lists an update needs (it was "
            "written by a ccgraph without them): run it again with this version"
        )
    # the run's catalog is needed first to find edits among the items sent again; a batch of
    # additions only has it made on a thread, with the seed tags (below)
    run_cat = run_catalog(old) if len(changes.present) else None
    with timer.stage("embed"):
        todo = np.concatenate([changes.added, changes.present])
        cache_dir = cfg.resolve(cfg.embed.cache_dir) or (out.parent / f".{out.name}.cache")
        if len(todo):
            new_emb, emb_rejects = embed_batch(
                subset(batch, todo),
                cfg,
                cache_dir=cache_dir,
                given=embeddings,
                show_progress=show_progress,
                known=known_ids(old, batch),
            )
        else:
            from ccgraph.embed.base import make_rejects

            new_emb, emb_rejects = {}, make_rejects([])
        unknown = sorted(set(new_emb) - set(old_emb))
        if unknown:
            raise InputError(f"the batch has embeddings {unknown} that the run does not use")
        check_coverage(new_emb, old_emb, changes, cfg, given=embeddings)
    same_v = same_vectors(old_emb, new_emb, changes.present)
    same_c = (
        np.ones(0, dtype=bool) if run_cat is None else same_content(run_cat, batch, changes.present)
    )
    replaced = changes.present[~same_v]
    edited = changes.present[same_v & ~same_c]
    counts_in = {
        "added": len(changes.added),
        "replaced": len(replaced),
        "edited": len(edited),
        "unchanged": int((same_v & same_c).sum()),
        "removed": len(changes.removed),
        "unknown_removals": len(changes.unknown_removals),
    }
    logger.info("update: %s", counts_in)
    if not (len(changes.added) or len(replaced) or len(edited) or len(changes.removed)):
        return noop(old, writer, old.path or Path("."), counts_in, cfg)

    kept = old.ids[~member(old.ids, changes.removed)]
    # checked once, read-only: results built on these ids take them as they are, and their
    # Arrow copy is made once for every lookup
    ids = as_ids(np.concatenate([kept, changes.added]))
    graph_batch = np.concatenate([changes.added, replaced]).astype(str)
    t = cfg.propagate.tags
    use_local = cfg.update.tags == "local" and t.cluster_prior == 0 and "tags" in stages

    def catalog_and_seeds() -> tuple[Catalog, Catalog, TagSet, Any, RunTagEntries | None]:
        lane = current()  # between the parts, a more urgent job (the recall check) goes first
        run_c = run_catalog(old) if run_cat is None else run_cat
        cat = merged_catalog(run_c, batch, ids, from_batch=np.concatenate([graph_batch, edited]))
        lane.pause()
        seed_tags = build_seed_tags(cat, cfg, ids=ids)
        lane.pause()
        terms = item_terms(len(ids), cat, seed_tags)
        lane.pause()
        entries = None
        if t.enabled and seed_tags.n_tags > 0 and use_local:
            entries = run_tag_entries(old, ids, seed_tags)
        return run_c, cat, seed_tags, terms, entries

    # the merged catalog, the seed tags, the descriptions' term counts and the run's tag
    # scores by item and seed tag need no graph: they are made on a thread while the graph is
    # searched, when the second core is otherwise idle
    seeds_job = start(catalog_and_seeds, name="seeds", priority=SEEDS)
    with timer.stage("graph"):
        batch_emb = {
            k: Embeddings(
                np.asarray(v.vectors)[member(v.ids, graph_batch)],
                v.ids[member(v.ids, graph_batch)],
                v.kind,
                dict(v.params),
            )
            for k, v in new_emb.items()
        }
        emb_all = merge_embeddings(old_emb, batch_emb, ids, replaced=replaced, stage=stage)
        # the writer seals them (fsync, SHA-256) on the core the search leaves free; the
        # lane (ccgraph._lane) lets the recall check and the seed tags go first
        emb_extras = _persist.embedding_extras(emb_all)
        writer.add_extras(emb_extras)
        finest = f"cluster_l{len(persist['level_resolutions']) - 1}"
        old_rows = locate(old.ids, ids)  # each item's row in the run (-1: new)
        at = np.maximum(old_rows, 0)
        labels = np.where(old_rows >= 0, old.items[finest].to_numpy(np.int64)[at], -1)
        graph, lists, stages["graph"] = update_graph(
            emb_all, old_lists, ids, cfg, batch_ids=graph_batch, labels=labels, old_graph=old.graph
        )
        stages["graph"].update(dict(graph.params))
        touched = changed_rows(old.graph, graph, changes.removed, len(kept))
    old_catalog, catalog, seeds, terms, entries = wait_for(seeds_job)
    pop_job = None  # popularity needs only the graph: it runs while clusters and tags are made
    if cfg.propagate.popularity.enabled:
        from ccgraph.update.popularity import start_popularity

        pop_job = start_popularity(
            old, catalog, graph, ids, np.concatenate([graph_batch, edited]), cfg
        )
    with timer.stage("duplicates"):
        group, canonical, stages["duplicates"] = duplicates(
            old, emb_all, lists, ids, graph_batch, catalog, cfg, stages.get("duplicates", {})
        )
    # the writer takes each part as soon as it exists: the kNN lists and the graph are written
    # while the clusters are refined, in turn with the popularity solve (one background job
    # at a time on two cores, so the refinement keeps its core)
    extras = {**_persist.run_extras(emb_all, ids, lists), **emb_extras}
    writer.add_extras(extras)
    writer.add_graph(graph)
    with timer.stage("cluster"):
        n_levels = len(persist["level_resolutions"])
        levels, cinfo = update_levels(
            graph,
            old.items,
            cfg,
            touched=touched,
            resolutions=persist["level_resolutions"],
            next_ids=persist["next_id"],
            split_levels=persist.get("recursive_split", [False] * n_levels),
            strategy=cfg.update.strategy,
            hops=cfg.update.hops,
            new_items=cfg.update.new_items,
            refine=cfg.update.refine,
            refine_iterations=cfg.update.refine_iterations,
            old_rows=old_rows,  # graph.ids are ids
            rng=rng,
        )
        default_level = int(stages.get("cluster", {}).get("default_level", 0))
        stages["cluster"] = {
            **stages.get("cluster", {}),
            "sweep": sweep_info(levels),
            "update": cinfo,
        }
    # the tags first: their table is the longest to encode, so the writer encodes it while
    # the clusters are described and the items table is assembled
    inferred = None
    redo_tags = np.ones(len(ids), dtype=bool)  # items whose tag rows are built afresh
    old_pos = None  # each row of the run's tags table: its item's position in ids
    if t.enabled and seeds.n_tags > 0 and use_local:
        with timer.stage("tags"):
            changed = member(ids, np.concatenate([graph_batch, edited]))
            inferred, redo_tags, old_pos = local_tags(
                old, old_catalog, graph, seeds, touched | changed, cfg, stages.get("tags", {}),
                entries,
            )  # fmt: skip
        stages["tags"] = tags_info(inferred)
    elif t.enabled and seeds.n_tags > 0:
        with timer.stage("tags"):
            inferred, stages["tags"] = spread_stage(graph, seeds, levels[default_level], cfg)
    with timer.stage("assemble"):
        tags_df = splice_tags(old.tags, catalog, ids, inferred, redo_tags, old_pos=old_pos)
        writer.add_table("tags", tags_df)
    popularity = None
    if pop_job is not None:
        with timer.stage("popularity"):
            popularity = wait_for(pop_job)
        stages["popularity"] = dict(popularity.params)
    with timer.stage("assemble"):
        items_df = _assemble.items_table(
            catalog, graph, levels, default_level, group, canonical, popularity
        )
        writer.add_table("items", items_df)
        writer.grow()  # the tags and items tables are encoded side by side
    with timer.stage("describe"):
        clusters = describe_levels(graph, levels, catalog, seeds, cfg, terms=terms)
    writer.add_table("clusters", clusters)
    with timer.stage("assemble"):
        rejects = pd.concat([old.rejects, batch.rejects, emb_rejects], ignore_index=True)
        report = drift_report(
            old.items,
            items_df,
            n_levels=len(levels),
            default_level=default_level,
            changes=counts_in,
            drift_threshold=cfg.update.drift_threshold,
            max_batch_fraction=cfg.update.max_batch_fraction,
            split_share=cfg.update.split_share,
        )
        stages["persist"] = _persist.update_info(levels, persist.get("base_dir"))
        stages["update"] = {"source_run": str(old.path), "noop": False, **summary(report)}
        counts = run_counts(items_df, tags_df, rejects, graph, levels, default_level, seeds)
        manifest = run_manifest(cfg, timings=timer.timings, counts=counts, stages=stages)
    result = RunResult(items_df, tags_df, clusters, rejects, graph, manifest, extras=extras)
    with timer.stage("write"):
        path = writer.finish(result)
        write_drift(path, report)
    logger.info("updated run written to %s", path)
    return RunResult(
        items_df, tags_df, clusters, rejects, graph, manifest, path=path, extras=extras
    )
