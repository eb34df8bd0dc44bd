"""Baselines that run on the same split and the same neighbours as ccgraph's own methods.

Every tag baseline takes the visible seed tags (:class:`~ccgraph.containers.TagSet`) and, when
it uses neighbours, a :class:`Neighbors` list built from the same embeddings or graph; each
returns :class:`~ccgraph.containers.TagScores` with the item's top ``top_k`` tags, its own seed
tags excluded (as :func:`ccgraph.propagate.spread_tags` does).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_float, check_int
from ccgraph.containers import KnnGraph, TagScores, TagSet, check_same_ids
from ccgraph.exceptions import InputError
from ccgraph.propagate.tagprop import (
    Neighbors,
    neighbors_from_embeddings,
    tagprop_proposals,
    tagprop_votes,
    top_k_sparse,
    vote_matrix,
)

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
    votes = vote_matrix(neighbors, np.ones(neighbors.index.shape, np.float32), n)
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
    s, fit = tagprop_proposals(
        neighbors, seeds, top_k=top_k, weighting=weighting, bandwidths=bandwidths, eps=eps
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
