"""Combine modalities: a weighted sum of normalised graphs, or concatenated embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ccgraph._validation import check_float
from ccgraph.containers import Embeddings, KnnGraph, check_same_ids
from ccgraph.exceptions import InputError, ParameterError

__all__ = ["concat_embeddings", "fuse_graphs"]


def _pair_up(items: Any, weights: Any, what: str) -> tuple[list[str], list[Any], np.ndarray]:
    """Match ``items`` (sequence or mapping) with ``weights``; return names, items, weights."""
    if isinstance(items, Mapping):
        if not isinstance(weights, Mapping):
            raise ParameterError(f"`weights` must be a mapping when the {what} are named")
        missing = [name for name in items if name not in weights]
        if missing:
            raise ParameterError(
                f"`weights` has no entry for {what} {missing}; got {list(weights)}"
            )
        names = [str(name) for name in items]
        objs = list(items.values())
        raw = [weights[name] for name in items]
    else:
        objs = list(items)
        if isinstance(weights, Mapping):
            raise ParameterError(f"`weights` must be a sequence when the {what} are a sequence")
        raw = list(weights)
        names = [str(i) for i in range(len(objs))]
        if len(raw) != len(objs):
            raise ParameterError(f"`weights` has {len(raw)} entries for {len(objs)} {what}")
    if not objs:
        raise ParameterError(f"no {what} to combine")
    w = np.array(
        [check_float(f"weights[{nm!r}]", x, low=0.0) for nm, x in zip(names, raw, strict=True)]
    )
    if w.sum() <= 0:
        raise ParameterError(f"`weights` must not all be zero; got {w.tolist()}")
    return names, objs, w


def fuse_graphs(
    graphs: Sequence[KnnGraph] | Mapping[str, KnnGraph],
    *,
    weights: Sequence[float] | Mapping[str, float],
) -> KnnGraph:
    """Weighted combination of graphs over the same items (one per modality).

    Parameters
    ----------
    graphs
        Graphs whose ids are identical and in the same order (:class:`IdMismatchError`
        otherwise); a mapping names them (e.g. ``{"image": g1, "text": g2}``).
    weights
        Non-negative weight per graph, in the same order or keyed by the same names (keys
        of a mapping that name no graph are ignored, so a config may list every modality).

    Returns
    -------
    KnnGraph
        The fused graph; ``params`` records the names, weights, mean edge weights and each
        input's params.

    Notes
    -----
    With ``A_m`` the adjacency of graph ``m``, ``mu_m`` the mean of its non-zero entries and
    ``p_m = w_m / sum_j w_j``:

    ``A = mu_bar * sum_m p_m A_m / mu_m``,  with ``mu_bar = sum_m p_m mu_m``.

    Dividing by ``mu_m`` puts every modality on the same scale (mean edge weight 1), so the
    weights, not the kernels' ranges, decide each one's influence; the factor ``mu_bar``
    returns the result to the inputs' scale, so weights ``(1, 0)`` give back ``A_1`` exactly
    and an edge present in only one graph keeps its share. Graphs of weight 0 are ignored.

    Examples
    --------
    >>> a = KnnGraph.from_adjacency(np.array([[0, 1.0], [1.0, 0]]))
    >>> b = KnnGraph.from_adjacency(np.array([[0, 0.5], [0.5, 0]]))
    >>> fuse_graphs([a, b], weights=[1, 1]).adjacency.toarray()[0, 1].item()
    0.75
    """
    names, gs, w = _pair_up(graphs, weights, "graphs")
    for name, g in zip(names, gs, strict=True):
        if not isinstance(g, KnnGraph):
            raise InputError(f"graph {name!r} must be a KnnGraph; got {type(g).__name__}")
        check_same_ids(gs[0].ids, g.ids, what=f"fuse_graphs: graph {name!r} vs {names[0]!r}")
    p = w / w.sum()
    means = np.array([float(g.adjacency.data.mean()) if g.adjacency.nnz else 1.0 for g in gs])
    mu_bar = float((p * means).sum())
    total: sp.csr_matrix | None = None
    for pm, mu, g in zip(p, means, gs, strict=True):
        if pm == 0:
            continue
        term = g.adjacency.astype(np.float64) * (mu_bar * pm / mu)
        total = term if total is None else total + term
    assert total is not None
    fused = sp.csr_matrix(total, dtype=np.float32)
    fused.eliminate_zeros()
    fused.sort_indices()
    params = {
        "fusion": "adjacency",
        "names": names,
        "weights": w.tolist(),
        "mean_edge_weight": means.tolist(),
        "inputs": {name: dict(g.params) for name, g in zip(names, gs, strict=True)},
        "n_edges": int(fused.nnz // 2),
    }
    return KnnGraph(fused, gs[0].ids, params)


def concat_embeddings(
    embeddings: Sequence[Embeddings] | Mapping[str, Embeddings],
    *,
    weights: Sequence[float] | Mapping[str, float],
) -> Embeddings:
    """Concatenate modalities so that one cosine kNN search sees all of them.

    Parameters
    ----------
    embeddings
        Embeddings of the same items in the same order (dense, or binary codes).
    weights
        Non-negative weight per modality (same order, or keyed by the same names).

    Returns
    -------
    Embeddings
        Dense, unit-length rows; ``params`` records names, weights and block widths.

    Notes
    -----
    Each block ``x_m`` is L2-normalised and scaled by ``sqrt(p_m)``, ``p_m = w_m / sum_j w_j``,
    so the concatenation has unit length and

    ``cos(x, y) = sum_m p_m cos(x_m, y_m)``:

    the cosine kNN over the concatenation ranks items by the weighted mean of the per-modality
    cosines. Binary codes of ``B`` bits enter as ``+-1 / sqrt(B)`` vectors, whose cosine is
    ``1 - 2 hamming / B``. Blocks of weight 0 are left out.

    Examples
    --------
    >>> a = Embeddings.from_array(np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> b = Embeddings.from_array(np.array([[1.0, 0.0], [1.0, 0.0]]))
    >>> c = concat_embeddings([a, b], weights=[1, 3])
    >>> float(np.dot(c.vectors[0], c.vectors[1]))
    0.75
    """
    names, embs, w = _pair_up(embeddings, weights, "embeddings")
    for name, e in zip(names, embs, strict=True):
        if not isinstance(e, Embeddings):
            raise InputError(f"embeddings {name!r} must be Embeddings; got {type(e).__name__}")
        check_same_ids(embs[0].ids, e.ids, what=f"concat_embeddings: {name!r} vs {names[0]!r}")
    p = w / w.sum()
    blocks = []
    widths = []
    for pm, e in zip(p, embs, strict=True):
        if pm == 0:
            continue
        if e.kind == "binary":
            x = np.unpackbits(e.vectors, axis=1).astype(np.float32) * 2.0 - 1.0
        else:
            x = e.vectors.astype(np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if (norms == 0).any():
            row = int(np.flatnonzero(norms.ravel() == 0)[0])
            raise InputError(f"embeddings row {row} is all zeros and cannot be normalised")
        blocks.append(x * (np.sqrt(pm) / norms))
        widths.append(x.shape[1])
    params = {"fusion": "concat", "names": names, "weights": w.tolist(), "widths": widths}
    return Embeddings(np.hstack(blocks).astype(np.float32), embs[0].ids, "dense", params)
