"""Why an item got a tag: the neighbours that carried it there."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._validation import check_float, check_int
from ccgraph.containers import TagScores, TagSet, check_same_ids
from ccgraph.exceptions import InputError
from ccgraph.propagate._graph import as_adjacency, build_operator, check_alpha_tol, resolve_dtype
from ccgraph.propagate._solver import solve

__all__ = ["explain_tags"]

COLUMNS = ["id", "tag", "neighbour_id", "contribution", "share", "rank"]


def explain_tags(
    graph: Any,
    seeds: TagSet,
    *,
    pairs: TagScores | pd.DataFrame | tuple[str, str],
    alpha: float = 0.8,
    top: int = 5,
    tol: float = 1e-6,
    max_iter: int = 100,
    tag_block: int = 64,
) -> pd.DataFrame:
    r"""Find the neighbours that contributed most to each (item, tag) score of label spreading.

    Parameters
    ----------
    graph, seeds
        As for :func:`~ccgraph.propagate.spread_tags` (use the same ``alpha`` and ``tol``).
    pairs
        What to explain: a :class:`~ccgraph.TagScores` (all its inferred tags), a table with
        columns ``id`` and ``tag``, or one ``(id, tag)`` tuple.
    alpha
        Spreading parameter of the run being explained.
    top
        Neighbours kept per pair (largest contributions first).
    tol, max_iter
        Solver settings for the tag columns that are recomputed.
    tag_block
        Tag columns solved together.

    Returns
    -------
    pandas.DataFrame
        ``id, tag, neighbour_id, contribution, share, rank``: ``contribution`` is
        ``alpha * S_ij * F_jt`` and ``share`` its fraction of the item's score ``F_it``.

    Notes
    -----
    At the fixed point ``F_it = alpha sum_j S_ij F_jt + (1 - alpha) Y_it`` with
    ``S_ij = w_ij / sqrt(d_i d_j)``; for an inferred tag (``Y_it = 0``) the neighbour terms add
    up to the score exactly, so ``share`` sums to 1 over all neighbours.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from ccgraph import KnnGraph, TagSet
    >>> g = KnnGraph.from_adjacency(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]]), ["a", "b", "c"])
    >>> seeds = TagSet.from_frame(pd.DataFrame({"id": ["b"], "tag": ["dog"]}), g.ids)
    >>> out = explain_tags(g, seeds, pairs=("a", "dog"), top=1)
    >>> out[["id", "tag", "neighbour_id"]].values.tolist()
    [['a', 'dog', 'b']]
    """
    alpha = check_float(
        "alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    top = check_int("top", top, low=1)
    tol = check_float("tol", tol, low=0.0, low_inclusive=False)
    tag_block = check_int("tag_block", tag_block, low=1)
    check_alpha_tol(alpha, tol)
    adj, ids = as_adjacency(graph)
    if ids is not None:
        check_same_ids(ids, seeds.ids, what="explain_tags(graph, seeds)")
    rows, cols = _pairs(pairs, seeds)
    if rows.size == 0:
        return pd.DataFrame({c: [] for c in COLUMNS})
    op = build_operator(adj, alpha=alpha, dtype=resolve_dtype("float64"), reorder="auto")
    w = sp.csr_matrix(adj, dtype=np.float64)
    inv_sqrt = np.divide(1.0, op.sqrt_d, out=np.zeros(op.n), where=op.sqrt_d > 0)
    y_inner = op.to_inner(sp.csr_matrix(seeds.matrix, dtype=np.float64)).tocsc()
    frames = []
    uniq = np.unique(cols)
    for start in range(0, len(uniq), tag_block):
        block = uniq[start : start + tag_block]
        f = np.zeros((op.n, len(block)))

        def done(idx: np.ndarray, vals: np.ndarray, f: np.ndarray = f) -> None:
            f[:, idx] = op.to_outer(vals)

        rhs = sp.csr_matrix(y_inner[:, block] * (1.0 - alpha))
        solve(op, rhs, thresholds=np.full(len(block), tol), max_iter=max_iter, on_done=done)
        sel = np.isin(cols, block)
        r, c = rows[sel], np.searchsorted(block, cols[sel])
        frames.append(_contributions(w, inv_sqrt, f, r, c, block, alpha, seeds))
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["_pair", "contribution"], ascending=[True, False], kind="stable")
    out["rank"] = out.groupby("_pair").cumcount() + 1
    out = out[out["rank"] <= top]
    return out.drop(columns="_pair")[COLUMNS].reset_index(drop=True)


def _pairs(pairs: Any, seeds: TagSet) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(pairs, TagScores):
        check_same_ids(pairs.ids, seeds.ids, what="explain_tags(pairs, seeds)")
        coo = pairs.scores.tocoo()
        tag_pos = pd.Index(seeds.tags).get_indexer(pairs.tags[coo.col])
        if (tag_pos < 0).any():
            raise InputError("`pairs` has tags that are not in the `seeds` vocabulary")
        return coo.row.astype(np.int64), tag_pos.astype(np.int64)
    if isinstance(pairs, tuple) and len(pairs) == 2:
        pairs = pd.DataFrame({"id": [pairs[0]], "tag": [pairs[1]]})
    if not isinstance(pairs, pd.DataFrame) or not {"id", "tag"} <= set(pairs.columns):
        raise InputError("`pairs` must be TagScores, a table with `id` and `tag`, or (id, tag)")
    r = pd.Index(seeds.ids).get_indexer(pairs["id"].astype(str))
    c = pd.Index(seeds.tags).get_indexer(pairs["tag"].astype(str))
    if (r < 0).any():
        raise InputError(f"`pairs` has unknown ids, e.g. {pairs['id'][r < 0].iloc[0]!r}")
    if (c < 0).any():
        raise InputError(
            f"`pairs` has tags not in the vocabulary, e.g. {pairs['tag'][c < 0].iloc[0]!r}"
        )
    return r.astype(np.int64), c.astype(np.int64)


def _contributions(
    w: sp.csr_matrix,
    inv_sqrt: np.ndarray,
    f: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    block: np.ndarray,
    alpha: float,
    seeds: TagSet,
) -> pd.DataFrame:
    """All neighbour terms ``alpha S_ij F_jt`` of the given (row, block column) pairs."""
    start, stop = w.indptr[rows], w.indptr[rows + 1]
    cnt = stop - start
    pair = np.repeat(np.arange(len(rows)), cnt)
    offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    pos = np.repeat(start, cnt) + offs
    i, j = rows[pair], w.indices[pos]
    contrib = alpha * w.data[pos] * inv_sqrt[i] * inv_sqrt[j] * f[j, cols[pair]]
    score = f[i, cols[pair]]
    share = np.divide(contrib, score, out=np.zeros_like(contrib), where=score > 0)
    keep = contrib > 0
    return pd.DataFrame(
        {
            "id": seeds.ids[i[keep]],
            "tag": seeds.tags[block[cols[pair[keep]]]],
            "neighbour_id": seeds.ids[j[keep]],
            "contribution": contrib[keep],
            "share": share[keep],
            "_pair": (rows[pair[keep]] * (len(seeds.tags) + 1) + block[cols[pair[keep]]]),
        }
    )
