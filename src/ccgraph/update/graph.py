"""The similarity graph after an update: merged embeddings, updated kNN lists, rebuilt edges.

Each graph of the run (one per modality, or one over concatenated modalities) gets its kNN
lists updated by :func:`ccgraph.update.knn.update_knn_lists`; its edges are then derived from
the lists exactly as :func:`ccgraph.graph.build_knn_graph` derives them (mutual rule, repair
edges, weights), so the result is the graph a full build would make from the same lists. With
one kNN search, only the pairs with a changed list are decided again
(:func:`ccgraph.update._edges.local_edges`); the others keep the run's edges.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np

from ccgraph.config import Config
from ccgraph.containers import Embeddings, KnnGraph
from ccgraph.exceptions import InputError
from ccgraph.update._ids import locate
from ccgraph.update._persist import CONCAT, KnnLists, member, positions

__all__ = ["merge_embeddings", "update_graph"]

logger = logging.getLogger(__name__)


def merge_embeddings(
    old: Mapping[str, Embeddings],
    batch: Mapping[str, Embeddings],
    ids: np.ndarray,
    *,
    replaced: set[str] | np.ndarray,
    stage: Path | None = None,
) -> dict[str, Embeddings]:
    """Per modality: old vectors of the items that stay, batch vectors for new/replaced items.

    Rows follow ``ids`` (the items after the update). A replaced item that lost a modality
    (e.g. its new image failed to load) drops out of that modality. With ``stage`` (a folder
    the caller owns), merged vectors are written straight into ``stage/embeddings_<name>.npy``
    (memory-mapped), which :func:`ccgraph.io.write_run` can then move into the run
    (``adopt=``) instead of writing them a second time.
    """
    ids = np.asarray(ids).astype(str, copy=False)
    replaced_arr = np.asarray(list(replaced), dtype=str)
    out: dict[str, Embeddings] = {}
    for name in sorted(set(old) | set(batch)):
        src_pos: list[np.ndarray] = []  # position in `ids` of each row of each part
        parts: list[np.ndarray] = []
        kind = "dense"
        params: dict[str, Any] = {}
        if name in old:
            e = old[name]
            pos = locate(ids, e.ids)
            gone = positions(replaced_arr, e.ids) if len(replaced_arr) else np.zeros(0, int)
            pos[gone[gone >= 0]] = -1  # a replaced item takes the batch's vectors
            keep = pos >= 0
            whole = bool(keep.all())  # no copy before the one copy below
            parts.append(np.asarray(e.vectors) if whole else np.asarray(e.vectors)[keep])
            src_pos.append(pos if whole else pos[keep])
            kind, params = e.kind, dict(e.params)
        if name in batch:
            b = batch[name]
            if parts and b.vectors.shape[1] != parts[0].shape[1]:
                raise InputError(
                    f"the new {name!r} vectors have {b.vectors.shape[1]} dimensions but the "
                    f"run's have {parts[0].shape[1]}: embed them as the run did"
                )
            parts.append(np.asarray(b.vectors))
            src_pos.append(locate(ids, b.ids))
            kind = b.kind
        pos = np.concatenate(src_pos)
        if (pos < 0).any():
            raise InputError(f"internal: {name!r} vectors of items that are not in the update")
        target = None if stage is None else stage / f"embeddings_{name}.npy"
        vec, pos = _gather(parts, pos, target)
        every = len(pos) == len(ids) and np.array_equal(pos, np.arange(len(ids)))
        out[name] = Embeddings(vec, ids if every else ids[pos], kind, params)
    return out


def _gather(
    parts: list[np.ndarray], pos: np.ndarray, target: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``parts`` (stacked) sorted by ``pos``, copied once into one C-contiguous array.

    With ``target``, the array is a new ``.npy`` file there, memory-mapped.
    """
    if len(parts) == 1 and (len(pos) < 2 or (np.diff(pos) > 0).all()):
        return np.ascontiguousarray(parts[0]), pos
    n = sum(len(p) for p in parts)
    shape, dtype = (n, parts[0].shape[1]), np.result_type(*parts)
    if target is not None and n and (len(pos) < 2 or (np.diff(pos) > 0).all()):
        return _write_rows(parts, shape, dtype, target), pos
    if target is None:
        vec = np.empty(shape, dtype=dtype)
    else:
        vec = np.lib.format.open_memmap(target, mode="w+", dtype=dtype, shape=shape)
    starts = np.cumsum([0] + [len(p) for p in parts])
    if len(pos) < 2 or (np.diff(pos) > 0).all():
        for part, a, b in zip(parts, starts[:-1], starts[1:], strict=True):
            vec[a:b] = part
        return vec, pos
    order = np.argsort(pos, kind="stable")
    dest = np.empty_like(order)
    dest[order] = np.arange(n)
    for part, a, b in zip(parts, starts[:-1], starts[1:], strict=True):
        vec[dest[a:b]] = part
    return vec, pos[order]


def _write_rows(
    parts: list[np.ndarray], shape: tuple[int, int], dtype: np.dtype, target: Path
) -> np.ndarray:
    """``parts`` stacked into the ``.npy`` file ``target``, returned memory-mapped.

    The file is the one ``open_memmap`` makes (its header, then the rows), filled by
    ``write()`` calls: the kernel copies the rows into the page cache, where writing them
    through a writable mapping would fault on every page first. A part that maps a whole
    ``.npy`` file (the run's vectors) is copied file to file (``copy_file_range``), without
    mapping its pages at all.
    """
    head = np.lib.format.open_memmap(target, mode="w+", dtype=dtype, shape=shape)
    offset = head.offset
    del head  # nothing written through it: only the header and the file's length
    with open(target, "r+b") as fh:
        fh.seek(offset)
        for part in parts:
            source = _mapped_file(part) if part.dtype == dtype else None
            done = 0
            if source is not None:
                fh.flush()  # the bytes written so far reach the file before the copy's
                at = fh.tell()
                done = _copy_range(source[0], source[1], fh.fileno(), at, part.nbytes)
                fh.seek(at + done)
            if done < part.nbytes:
                fh.write(np.ascontiguousarray(part, dtype=dtype).data.cast("B")[done:])
    return np.load(target, mmap_mode="r+", allow_pickle=False)


def _mapped_file(value: np.ndarray) -> tuple[Path, int] | None:
    """``(file, byte offset)`` of ``value``'s bytes when it maps a whole ``.npy`` file's data."""
    mm: np.ndarray | None = value
    while mm is not None and not isinstance(mm, np.memmap):
        mm = getattr(mm, "base", None)
    if mm is None or not mm.filename:
        return None
    source = Path(mm.filename)
    whole = (
        value.shape == mm.shape
        and value.dtype == mm.dtype
        and value.flags.c_contiguous
        and value.ctypes.data == mm.ctypes.data
        and source.is_file()
        and source.stat().st_size == mm.offset + mm.nbytes
    )
    return (source, int(mm.offset)) if whole else None


def _copy_range(source: Path, src_offset: int, fd: int, dst_offset: int, nbytes: int) -> int:
    """Copy ``nbytes`` of ``source`` from ``src_offset`` into ``fd`` at ``dst_offset``.

    Returns the bytes copied: fewer (possibly 0) when the system cannot copy between these
    files (the caller writes the rest).
    """
    import os

    done = 0
    if not hasattr(os, "copy_file_range"):  # pragma: no cover - not Linux
        return 0
    with open(source, "rb") as src:
        try:
            while done < nbytes:
                step = os.copy_file_range(
                    src.fileno(), fd, nbytes - done, src_offset + done, dst_offset + done
                )
                if step <= 0:
                    break
                done += step
        except OSError:
            pass
    return done


def update_graph(
    embeddings: Mapping[str, Embeddings],
    lists: Mapping[str, KnnLists],
    ids: np.ndarray,
    cfg: Config,
    *,
    batch_ids: np.ndarray,
    labels: np.ndarray | None = None,
    old_graph: KnnGraph | None = None,
) -> tuple[KnnGraph, dict[str, KnnLists], dict[str, Any]]:
    """The fused graph over ``ids`` after the update, the new kNN lists and what changed.

    Parameters
    ----------
    embeddings
        Per-modality vectors after the update (:func:`merge_embeddings`).
    lists
        The run's kNN lists, per graph name (a modality or ``"concat"``).
    ids
        Items after the update, in row order.
    cfg
        The run's config (``graph`` section).
    batch_ids
        New and re-embedded items.
    labels
        A cluster per item of ``ids`` (``-1``: none), the index of ``update.knn_search:
        probe``.
    old_graph
        The run's graph: with one kNN search (one modality or ``concat``) and no
        ``bridge_components``, only the edges around changed lists are decided again
        (:func:`ccgraph.update._edges.local_edges`, the same graph as a full build).
    """
    from ccgraph._stages import expand_graph, knn_options
    from ccgraph.graph import build_knn_graph, concat_embeddings, fuse_graphs
    from ccgraph.update.knn import update_knn_lists

    g = cfg.graph
    common = knn_options(cfg)
    weights = {name: float(g.fusion.weights.get(name, 1.0)) for name in embeddings}
    sources: dict[str, Embeddings]
    if CONCAT in lists:
        dense = {k: v for k, v in embeddings.items() if v.kind == "dense"}
        shared = ids[member(ids, reduce(np.intersect1d, [e.ids for e in dense.values()]))]
        parts = [e.align(shared) for e in dense.values()]
        sources = {CONCAT: concat_embeddings(parts, weights=[weights[k] for k in dense])}
    else:
        sources = dict(embeddings)
    missing = sorted(set(sources) - set(lists))
    if missing:
        raise InputError(
            f"the run keeps no kNN lists for {missing}; it was made by a ccgraph that did not "
            "store them: run it again with this version before updating"
        )
    new_lists: dict[str, KnnLists] = {}
    info: dict[str, Any] = {"modalities": sorted(embeddings), "fusion_weights": weights}
    graphs: dict[str, KnnGraph] = {}
    for name, emb in sources.items():
        metric = "hamming" if emb.kind == "binary" else g.metric
        batch = member(emb.ids, batch_ids)
        u = cfg.update
        upd, stats = update_knn_lists(
            lists[name],
            emb,
            batch=batch,
            metric=metric,
            search=u.knn_search,
            labels=None if labels is None else labels[locate(ids, emb.ids)],
            n_probe=u.n_probe,
            min_candidates=u.probe_candidates,
        )
        new_lists[name] = upd
        if old_graph is not None and len(sources) == 1 and not g.bridge_components:
            built = _local_graph(old_graph, lists[name], upd, emb, batch, metric, cfg)
        else:
            built = build_knn_graph(
                emb, k=upd.k, metric=metric, knn=(upd.indices, upd.distances), **common
            )
        graphs[name] = expand_graph(built, ids)
        info[f"knn_{name}"] = stats
    if len(graphs) == 1:
        graph = next(iter(graphs.values()))
    else:
        graph = fuse_graphs(list(graphs.values()), weights=[weights[k] for k in graphs])
    return graph, new_lists, info


def _local_graph(
    old_graph: KnnGraph,
    old_lists: KnnLists,
    new_lists: KnnLists,
    emb: Embeddings,
    batch: np.ndarray,
    metric: str,
    cfg: Config,
) -> KnnGraph:
    """The graph of ``new_lists`` over ``emb``'s rows from the run's graph and lists."""
    import scipy.sparse as sp

    from ccgraph.update._edges import changed_lists, local_edges

    n = len(emb.ids)
    # the run's graph in the rows of the lists (items new to the run: empty rows)
    p = locate(old_graph.ids, emb.ids)
    m = old_graph.n_items
    a_old = sp.csr_matrix(old_graph.adjacency)
    if n >= m and np.array_equal(p[:m], np.arange(m)) and (p[m:] < 0).all():
        # the run's items first, in order, then new ones: the same matrix with empty rows
        indptr = np.r_[a_old.indptr, np.full(n - m, a_old.indptr[-1])]
        old = sp.csr_matrix((a_old.data, a_old.indices, indptr), shape=(n, n))
    else:
        have = np.flatnonzero(p >= 0)
        proj = sp.csr_matrix((np.ones(len(have), np.float32), (have, p[have])), shape=(n, m))
        old = sp.csr_matrix(proj @ a_old @ proj.T)
    # each row's old list in the new positions
    r = locate(old_lists.ids, emb.ids)
    to_new = locate(emb.ids, old_lists.ids)
    m_old = len(old_lists.ids)
    same_k = old_lists.indices.shape[1] == new_lists.indices.shape[1]
    if n >= m_old and same_k and np.array_equal(to_new, np.arange(m_old)):
        # the lists' items first, in order, then new ones: positions stay, and the rows of
        # new items (no old list) differ; compared row by row in place
        from ccgraph.update._edge_kernels import lists_differ

        changed = batch | (r < 0)
        changed[m_old:] = True
        changed[:m_old] |= lists_differ(old_lists.indices, new_lists.indices)
    else:
        old_idx = np.asarray(old_lists.indices, dtype=np.int64)
        mapped = np.where(old_idx >= 0, to_new[np.maximum(old_idx, 0)], -1)
        old_in_new = np.where((r >= 0)[:, None], mapped[np.maximum(r, 0)], -2)
        changed = changed_lists(old_in_new, new_lists.indices, batch | (r < 0))
    g = cfg.graph
    vectors = np.asarray(emb.vectors) if metric in ("euclidean", "hamming") else None
    adjacency, info = local_edges(
        old,
        new_lists.indices,
        new_lists.distances,
        changed,
        metric=metric,
        mutual=g.mutual,
        min_degree=g.min_degree,
        weighting=g.weighting,
        vectors=vectors,
    )
    params = {
        "k": new_lists.k,
        "metric": metric,
        "mutual": bool(g.mutual),
        "min_degree": g.min_degree,
        "weighting": g.weighting,
        "backend": g.backend,
        "backend_used": "precomputed",
        "bridge_components": False,
        "seed": cfg.seed,
        "n_jobs": cfg.n_jobs,
        "estimated_recall": None,
        **info,
    }
    return KnnGraph(adjacency, emb.ids, params)
