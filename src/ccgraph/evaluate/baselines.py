"""Baselines that run on the same split and the same neighbours as ccgraph's own methods.

Every tag baseline takes the visible seed tags (:class:`~ccgraph.containers.TagSet`) and, when
it uses neighbours, a :class:`Neighbors` list built from the same embeddings or graph; each
returns :class:`~ccgraph.containers.TagScores` with the item's top ``top_k`` tags, its own seed
tags excluded (as :func:`ccgraph.propagate.spread_tags` does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.containers import Embeddings, KnnGraph, TagScores, TagSet, check_same_ids
from ccgraph.exceptions import InputError

__all__ = [
    "Neighbors",
    "knn_vote_tags",
    "neighbors_from_embeddings",
    "neighbors_from_graph",
    "prior_tags",
    "random_tags",
    "sklearn_label_spreading",
    "tagprop_tags",
    "tagprop_votes",
    "top_k_sparse",
]


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
        Query rows per matrix product.
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


def neighbors_from_graph(graph: KnnGraph, *, k: int | None = None) -> Neighbors:
    """Each node's (up to) ``k`` heaviest graph neighbours; rows with fewer are padded."""
    a = graph.adjacency
    deg = np.diff(a.indptr)
    kk = int(deg.max()) if k is None and a.nnz else check_int("k", k or 1, low=1)
    n = a.shape[0]
    rows = np.repeat(np.arange(n), deg)
    order = np.lexsort((a.indices, -a.data, rows))
    rank = np.arange(a.nnz) - np.repeat(a.indptr[:-1], deg)
    keep = rank < kk
    index = np.full((n, kk), -1, dtype=np.int64)
    sim = np.zeros((n, kk), dtype=np.float32)
    index[rows[keep], rank[keep]] = a.indices[order][keep]
    sim[rows[keep], rank[keep]] = a.data[order][keep]
    return Neighbors(index, sim, graph.ids)


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


def _result(
    scores: sp.csr_matrix, confidence: sp.csr_matrix, seeds: TagSet, method: str, **params: object
) -> TagScores:
    return TagScores(scores, confidence, seeds.ids, seeds.tags, {"method": method, **params})


def _same_pattern(scores: sp.csr_matrix, values: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix(
        (np.clip(values, 0, 1).astype(np.float32), scores.indices, scores.indptr),
        shape=scores.shape,
    )


def _tag_frequency(seeds: TagSet) -> np.ndarray:
    tagged = max(int(seeds.is_tagged.sum()), 1)
    return np.asarray((seeds.matrix > 0).sum(axis=0)).ravel() / tagged


def prior_tags(seeds: TagSet, *, top_k: int = 10) -> TagScores:
    """Every item gets the most frequent visible tags (its own seeds excluded).

    The confidence is the tag's share of tagged items (its base rate).
    """
    top_k = check_int("top_k", top_k, low=1)
    freq = _tag_frequency(seeds)
    s = top_k_sparse(
        lambda r: np.broadcast_to(freq, (len(r), len(freq))), len(seeds.ids), seeds, top_k=top_k
    )
    return _result(s, _same_pattern(s, s.data), seeds, "prior", top_k=top_k)


def random_tags(seeds: TagSet, *, top_k: int = 10, rng: RngLike = None) -> TagScores:
    """Uniformly random tags from the visible vocabulary (confidence = base rate)."""
    top_k = check_int("top_k", top_k, low=1)
    gen = as_generator(rng)
    freq = _tag_frequency(seeds)
    s = top_k_sparse(
        lambda r: gen.random((len(r), seeds.n_tags)), len(seeds.ids), seeds, top_k=top_k
    )
    return _result(s, _same_pattern(s, freq[s.indices]), seeds, "random", top_k=top_k)


def _check_neighbors(neighbors: Neighbors, seeds: TagSet) -> None:
    check_same_ids(neighbors.ids, seeds.ids, what="neighbours and seed tags")


def _vote_matrix(neighbors: Neighbors, weights: np.ndarray, n: int) -> sp.csr_matrix:
    """Sparse ``[n, n]`` matrix with ``weights[i, r]`` at ``(i, index[i, r])``."""
    ok = neighbors.index >= 0
    rows = np.repeat(np.arange(n), neighbors.k).reshape(n, -1)[ok]
    return sp.csr_matrix((weights[ok], (rows, neighbors.index[ok])), shape=(n, n))


def knn_vote_tags(neighbors: Neighbors, seeds: TagSet, *, top_k: int = 10) -> TagScores:
    r"""Neighbour voting (Li, Snoek, Worring 2008): votes of the k neighbours minus the prior.

    Notes
    -----
    :math:`r(t, i) = |\{j \in N_k(i) : t \in T_j\}| - k_i \cdot |L_t| / |L|`, with
    :math:`k_i` the number of neighbours of :math:`i`, :math:`|L_t|` the number of tagged
    items with tag :math:`t` and :math:`|L|` the number of tagged items. Tags without a vote
    are not proposed. The confidence is the share of neighbours voting.

    References
    ----------
    Li, Snoek, Worring (2008). Learning tag relevance by neighbor voting for social image
    retrieval. ACM MIR.
    """
    _check_neighbors(neighbors, seeds)
    top_k = check_int("top_k", top_k, low=1)
    n = len(seeds.ids)
    votes = _vote_matrix(neighbors, np.ones(neighbors.index.shape, np.float32), n)
    y = (seeds.matrix > 0).astype(np.float32)
    counts = (votes @ y).tocsr()
    k_i = np.asarray((neighbors.index >= 0).sum(axis=1), dtype=np.float64)
    freq = _tag_frequency(seeds)

    def rows(r: np.ndarray) -> np.ndarray:
        c = counts[r].toarray()
        rel = c - k_i[r, None] * freq[None, :]
        return np.where(c > 0, rel, -np.inf)

    s = top_k_sparse(rows, n, seeds, top_k=top_k)
    conf_vals = np.asarray(counts[np.repeat(np.arange(n), np.diff(s.indptr)), s.indices]).ravel()
    conf = conf_vals / np.maximum(np.repeat(k_i, np.diff(s.indptr)), 1)
    return _result(s, _same_pattern(s, conf), seeds, "knn_vote", top_k=top_k, k=neighbors.k)


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

    The model behind :func:`tagprop_tags` (see there for the parameters and the formula),
    unranked: every item's votes for every tag, own seeds included.

    Returns
    -------
    tuple
        ``(prob, fit)``: CSR ``[n_items, n_tags]`` probabilities in [0, 1] and a dict with the
        chosen ``sigma``, the ``weighting``, ``k``, the ``bandwidths`` grid and each grid
        point's training ``log_likelihood``.
    """
    _check_neighbors(neighbors, seeds)
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
        p = (_vote_matrix(neighbors, w, n) @ y).tocsr()
        fits.append(_log_likelihood(p, y, train, eps) if len(train) else 0.0)
    best = float(grid[int(np.argmax(fits))])
    w = _tagprop_weights(neighbors, best, weighting)
    prob = (_vote_matrix(neighbors, w, n) @ y).tocsr()
    fit = {
        "sigma": best,
        "weighting": weighting,
        "k": neighbors.k,
        "log_likelihood": [float(f) for f in fits],
        "bandwidths": grid.tolist(),
    }
    return prob, fit


def tagprop_tags(
    neighbors: Neighbors,
    seeds: TagSet,
    *,
    top_k: int = 10,
    weighting: str = "distance",
    bandwidths: np.ndarray | None = None,
    eps: float = 1e-5,
) -> TagScores:
    r"""Distance- or rank-weighted neighbour voting in the style of TagProp.

    The bandwidth :math:`\sigma` is chosen on the training items only (items with visible
    tags; their neighbour lists exclude themselves, so this is leave-one-out) by maximising the
    Bernoulli log-likelihood of their visible tags, as TagProp fits its weights.

    Parameters
    ----------
    neighbors
        Neighbour lists (similarity = cosine for ``weighting="distance"``).
    seeds
        Visible tags.
    top_k
        Tags kept per item.
    weighting
        ``"distance"``: :math:`\pi_{ij} \propto \exp(-d_{ij}/\sigma)`, :math:`d = 1 - \cos`;
        ``"rank"``: :math:`\pi_{ij} \propto \exp(-r_{ij}/\sigma)` with the neighbour's rank.
    bandwidths
        Candidate :math:`\sigma` values (default: a log grid scaled to the distances).
    eps
        Probability floor in the log-likelihood.

    Notes
    -----
    :math:`p(t \mid i) = \sum_{j \in N_k(i)} \pi_{ij} y_{jt}`, weights normalised to sum to one
    per item. The per-tag sigmoid of σML-TagProp is not fitted.

    References
    ----------
    Guillaumin, Mensink, Verbeek, Schmid (2009). TagProp: discriminative metric learning in
    nearest neighbor models for image auto-annotation. ICCV.
    """
    top_k = check_int("top_k", top_k, low=1)
    prob, fit = tagprop_votes(neighbors, seeds, weighting=weighting, bandwidths=bandwidths, eps=eps)
    s = top_k_sparse(
        lambda r: np.where(prob[r].toarray() > 0, prob[r].toarray(), -np.inf),
        len(seeds.ids),
        seeds,
        top_k=top_k,
    )
    return _result(s, _same_pattern(s, s.data), seeds, "tagprop", top_k=top_k, **fit)


def sklearn_label_spreading(
    adjacency: sp.spmatrix,
    labels: np.ndarray,
    *,
    alpha: float = 0.9,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> np.ndarray:
    """Class probabilities from scikit-learn's ``LabelSpreading`` on a given graph.

    Parameters
    ----------
    adjacency
        Symmetric non-negative ``[n, n]`` weights.
    labels
        Class per node, ``-1`` for unlabelled nodes (single-label data only).
    alpha
        scikit-learn's clamping factor (the share of the neighbours' labels).
    max_iter, tol
        Iteration cap and convergence tolerance of scikit-learn's iteration.

    Returns
    -------
    numpy.ndarray
        ``[n, n_classes]`` label distributions (rows of isolated unlabelled nodes are uniform).
    """
    from sklearn.semi_supervised import LabelSpreading

    alpha = check_float("alpha", alpha, low=0, high=1, low_inclusive=False, high_inclusive=False)
    a = sp.coo_matrix(adjacency, dtype=np.float64)
    n = a.shape[0]
    y = np.asarray(labels, dtype=np.int64).ravel()
    if y.shape != (n,):
        raise InputError(f"`labels` has {y.size} entries but the graph has {n} nodes")

    def kernel(x: np.ndarray, _y: np.ndarray) -> sp.coo_matrix:
        return a.copy()

    model = LabelSpreading(kernel=kernel, alpha=alpha, max_iter=max_iter, tol=tol)
    import warnings

    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")
        model.fit(np.arange(n, dtype=np.float64)[:, None], y)
    dist = np.nan_to_num(np.asarray(model.label_distributions_), nan=0.0)
    full = np.zeros((n, int(y.max()) + 1))
    full[:, model.classes_[model.classes_ >= 0]] = dist
    empty = full.sum(axis=1) == 0
    full[empty] = 1.0 / full.shape[1]
    return full
