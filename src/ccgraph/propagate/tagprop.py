"""TagProp's neighbour votes among the tagged items, in the embedding space.

The neighbour search (:func:`neighbors_from_embeddings`), TagProp's vote matrix
(:func:`tagprop_votes`) and its top-k proposals (:func:`tagprop_proposals`), and the row
normalised blend of two score matrices (:func:`blend_scores`). A run blends them with label
spreading (:mod:`ccgraph.propagate.spread_tagprop`); the evaluation harness's ``tagprop``
baseline and ``spread_tagprop`` method import them from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.containers import Embeddings, TagSet, check_same_ids
from ccgraph.exceptions import InputError

__all__ = [
    "BLOCK_BYTES",
    "Neighbors",
    "blend_scores",
    "fused_features",
    "neighbors_from_embeddings",
    "row_normalize",
    "tagprop_proposals",
    "tagprop_votes",
    "top_k_sparse",
]


#: Bytes of one block of query-by-candidate similarities (and as much again for its sort).
BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True, slots=True, eq=False)
class Neighbors:
    """Each item's nearest neighbours: ``index[i, r]`` (``-1`` = none) and their similarity."""

    index: np.ndarray
    similarity: np.ndarray
    ids: np.ndarray

    @property
    def k(self) -> int:
        """Neighbours per item (columns)."""
        return int(self.index.shape[1])


def fused_features(embeddings: Mapping[str, Embeddings], ids: np.ndarray) -> Embeddings | None:
    """Dense modalities aligned to ``ids`` (missing rows zero), each L2-normalised, concatenated.

    The cosine of two concatenations is the mean of the modalities' cosines (up to the missing
    rows), as the fused graph weighs them; sparse (hashed) modalities are left out. None when
    there is no dense modality.
    """
    parts = []
    for emb in embeddings.values():
        if emb.kind != "dense":
            continue
        v = np.zeros((len(ids), emb.vectors.shape[1]), dtype=np.float32)
        pos = pd.Index(emb.ids).get_indexer(ids)
        ok = pos >= 0
        x = np.asarray(emb.vectors[pos[ok]], dtype=np.float32)
        v[ok] = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        parts.append(v)
    if not parts:
        return None
    return Embeddings(np.hstack(parts), ids, "dense", {"modalities": sorted(embeddings)})


def neighbors_from_embeddings(
    embeddings: Embeddings,
    *,
    k: int = 15,
    candidates: np.ndarray | None = None,
    block: int = 1024,
) -> Neighbors:
    """Exact cosine k nearest neighbours, searched among ``candidates`` only, self excluded.

    Parameters
    ----------
    embeddings
        Dense embeddings (rows are L2-normalised here).
    k
        Neighbours per item.
    candidates
        Boolean mask of items that may be neighbours (e.g. items with visible tags, as in Li
        et al. 2008 where neighbours come from the tagged collection); default all.
    block
        Query rows per matrix product, at most; fewer when the candidates are many, so that
        one ``[rows, candidates]`` block of similarities stays within
        :data:`BLOCK_BYTES`.

    Notes
    -----
    The search is exact, ``O(n x candidates x d)``: fine for a catalog of up to a few
    hundred thousand items on one machine, not for millions.
    """
    if embeddings.kind != "dense":
        raise InputError("kNN baselines need dense embeddings; use `neighbors_from_graph`")
    k = check_int("k", k, low=1)
    x = np.asarray(embeddings.vectors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = x.shape[0]
    cand = np.arange(n) if candidates is None else np.flatnonzero(np.asarray(candidates, bool))
    kk = min(k, max(len(cand) - 1, 0)) if len(cand) else 0
    index = np.full((n, k), -1, dtype=np.int64)
    sim = np.zeros((n, k), dtype=np.float32)
    if kk == 0:
        return Neighbors(index, sim, embeddings.ids)
    xc = x[cand]
    block = max(16, min(check_int("block", block, low=1), BLOCK_BYTES // (4 * len(cand))))
    for start in range(0, n, block):
        q = np.arange(start, min(start + block, n))
        s = x[q] @ xc.T
        s[cand[None, :] == q[:, None]] = -np.inf
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        ts = np.take_along_axis(s, top, axis=1)
        order = np.argsort(-ts, axis=1, kind="stable")
        index[q, :kk] = cand[np.take_along_axis(top, order, axis=1)]
        sim[q, :kk] = np.take_along_axis(ts, order, axis=1)
    return Neighbors(index, sim, embeddings.ids)


def top_k_sparse(
    score_rows: Callable[[np.ndarray], np.ndarray],
    n: int,
    seeds: TagSet,
    *,
    top_k: int,
    positive_only: bool = False,
    block: int = 2048,
) -> sp.csr_matrix:
    """Keep each row's ``top_k`` scores, the row's seed tags excluded, as a CSR matrix.

    ``score_rows(rows)`` returns the dense ``[len(rows), n_tags]`` scores of those rows.
    """
    t = seeds.n_tags
    kk = min(top_k, t)
    out_r, out_c, out_v = [], [], []
    seed = seeds.matrix
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        s = np.asarray(score_rows(rows), dtype=np.float64).copy()
        sub = seed[rows]
        s[np.repeat(np.arange(len(rows)), np.diff(sub.indptr)), sub.indices] = -np.inf
        if positive_only:
            s[s <= 0] = -np.inf
        if kk == 0:
            continue
        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(s, top, axis=1)
        ok = np.isfinite(vals)
        out_r.append(np.repeat(rows, kk)[ok.ravel()])
        out_c.append(top.ravel()[ok.ravel()])
        out_v.append(vals.ravel()[ok.ravel()])
    if not out_r:
        return sp.csr_matrix((n, t), dtype=np.float32)
    m = sp.csr_matrix(
        (np.concatenate(out_v), (np.concatenate(out_r), np.concatenate(out_c))),
        shape=(n, t),
        dtype=np.float32,
    )
    m.sort_indices()
    return m


def _tagprop_weights(neighbors: Neighbors, sigma: float, weighting: str) -> np.ndarray:
    ok = neighbors.index >= 0
    if weighting == "distance":
        d = 1.0 - neighbors.similarity.astype(np.float64)
    else:
        d = np.broadcast_to(np.arange(neighbors.k, dtype=np.float64), ok.shape)
    d0 = np.where(ok, d, np.inf).min(axis=1, keepdims=True)
    d0 = np.where(np.isfinite(d0), d0, 0.0)
    w = np.where(ok, np.exp(-(d - d0) / sigma), 0.0)
    total = w.sum(axis=1, keepdims=True)
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)


def vote_matrix(neighbors: Neighbors, weights: np.ndarray, n: int) -> sp.csr_matrix:
    """Sparse ``[n, n]`` matrix with ``weights[i, r]`` at ``(i, index[i, r])``."""
    ok = neighbors.index >= 0
    rows = np.repeat(np.arange(n), neighbors.k).reshape(n, -1)[ok]
    return sp.csr_matrix((weights[ok], (rows, neighbors.index[ok])), shape=(n, n))


def _log_likelihood(p: sp.csr_matrix, y: sp.csr_matrix, rows: np.ndarray, eps: float) -> float:
    """Bernoulli log-likelihood of the 0/1 labels ``y`` under ``p`` over ``rows`` x all tags."""
    p, y = p[rows], y[rows]
    pp = np.clip(p.data, eps, 1 - eps)
    ll = np.log1p(-pp).sum()  # every stored p counted as a negative first
    py = p.multiply(y).tocsr()  # positives that got mass
    ll += (np.log(np.clip(py.data, eps, 1 - eps)) - np.log1p(-np.clip(py.data, eps, 1 - eps))).sum()
    missed = y.nnz - py.nnz  # positives with p = 0 -> eps
    ll += missed * np.log(eps)
    return float(ll)


def tagprop_votes(
    neighbors: Neighbors,
    seeds: TagSet,
    *,
    weighting: str = "distance",
    bandwidths: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[sp.csr_matrix, dict[str, object]]:
    r"""TagProp's vote matrix :math:`p(t \mid i)` with the bandwidth fitted on the tagged items.

    The model behind :func:`ccgraph.evaluate.baselines.tagprop_tags` (see there for the
    parameters), unranked: every item's votes for every tag, own seeds included.

    Returns
    -------
    tuple
        ``(prob, fit)``: CSR ``[n_items, n_tags]`` probabilities in [0, 1] and a dict with the
        chosen ``sigma``, the ``weighting``, ``k``, the ``bandwidths`` grid and each grid
        point's training ``log_likelihood``.

    Notes
    -----
    :math:`p(t \mid i) = \sum_{j \in N_k(i)} \pi_{ij} y_{jt}`, :math:`\pi_{ij} \propto
    \exp(-d_{ij}/\sigma)` normalised per item; :math:`\sigma` maximises the Bernoulli
    log-likelihood of the tagged items' visible tags (leave-one-out: no item is its own
    neighbour).

    References
    ----------
    Guillaumin, Mensink, Verbeek, Schmid (2009). TagProp: discriminative metric learning in
    nearest neighbor models for image auto-annotation. ICCV.
    """
    check_same_ids(neighbors.ids, seeds.ids, what="neighbours and seed tags")
    weighting = check_choice("weighting", weighting, ("distance", "rank"))
    eps = check_float("eps", eps, low=0, high=0.5, low_inclusive=False, high_inclusive=False)
    n = len(seeds.ids)
    y = (seeds.matrix > 0).astype(np.float32).tocsr()
    train = np.flatnonzero(seeds.is_tagged)
    if bandwidths is None:
        if weighting == "distance":
            ok = neighbors.index >= 0
            d = (1.0 - neighbors.similarity)[ok]
            spread = float(np.median(np.abs(d - np.median(d)))) if d.size else 1.0
            scale = max(spread, 1e-3)
        else:
            scale = max(neighbors.k / 4.0, 1.0)
        bandwidths = scale * np.logspace(-1.5, 1.5, 13)
    grid = np.asarray(bandwidths, dtype=np.float64).ravel()
    if grid.size == 0 or (grid <= 0).any():
        raise InputError("`bandwidths` must be a non-empty list of positive numbers")
    fits = []
    for sigma in grid:
        w = _tagprop_weights(neighbors, float(sigma), weighting)
        p = (vote_matrix(neighbors, w, n) @ y).tocsr()
        fits.append(_log_likelihood(p, y, train, eps) if len(train) else 0.0)
    best = float(grid[int(np.argmax(fits))])
    w = _tagprop_weights(neighbors, best, weighting)
    prob = (vote_matrix(neighbors, w, n) @ y).tocsr()
    fit = {
        "sigma": best,
        "weighting": weighting,
        "k": neighbors.k,
        "log_likelihood": [float(f) for f in fits],
        "bandwidths": grid.tolist(),
    }
    return prob, fit


def tagprop_proposals(
    neighbors: Neighbors, seeds: TagSet, *, top_k: int = 10, **options: object
) -> tuple[sp.csr_matrix, dict[str, object]]:
    """Each item's ``top_k`` tags by TagProp's votes (positive votes, own seeds excluded).

    ``options`` go to :func:`tagprop_votes`; returns the CSR proposals and its ``fit``.
    """
    top_k = check_int("top_k", top_k, low=1)
    prob, fit = tagprop_votes(neighbors, seeds, **options)  # type: ignore[arg-type]
    s = top_k_sparse(
        lambda r: np.where(prob[r].toarray() > 0, prob[r].toarray(), -np.inf),
        len(seeds.ids),
        seeds,
        top_k=top_k,
    )
    return s, fit


def row_normalize(m: sp.spmatrix) -> sp.csr_matrix:
    """Each row divided by its sum (all-zero rows stay zero).

    Examples
    --------
    >>> row_normalize(sp.csr_matrix([[1.0, 3.0], [0.0, 0.0]])).toarray().tolist()
    [[0.25, 0.75], [0.0, 0.0]]
    """
    m = sp.csr_matrix(m, dtype=np.float64, copy=True)
    total = np.asarray(m.sum(axis=1)).ravel()
    row_total = np.repeat(total, np.diff(m.indptr))
    # divide (no reciprocal: 1 / a subnormal sum overflows)
    m.data = np.divide(m.data, row_total, out=np.zeros_like(m.data), where=row_total > 0)
    return m


def blend_scores(a: sp.spmatrix, b: sp.spmatrix, *, weight: float) -> sp.csr_matrix:
    r""":math:`(1-w)\,\bar a + w\,\bar b`, :math:`\bar x` = ``x`` with rows summing to one.

    Examples
    --------
    >>> a = sp.csr_matrix([[1.0, 1.0, 0.0]])
    >>> b = sp.csr_matrix([[0.0, 0.0, 2.0]])
    >>> blend_scores(a, b, weight=0.5).toarray().tolist()
    [[0.25, 0.25, 0.5]]
    """
    weight = check_float("weight", weight, low=0, high=1)
    if a.shape != b.shape:
        raise InputError(f"score matrices differ in shape: {a.shape} vs {b.shape}")
    return sp.csr_matrix((1 - weight) * row_normalize(a) + weight * row_normalize(b))
