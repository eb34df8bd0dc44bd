"""Correct & Smooth with TagProp as the base predictor: ``tagprop_smooth``.

TagProp's neighbour votes are sharp where a tagged near-duplicate exists; graph spreading
reaches items whose nearest tagged items are several hops away. This method seeds the graph
smoothing of :func:`~ccgraph.evaluate.feature_aware.correct_and_smooth` with the votes of
:func:`~ccgraph.evaluate.baselines.tagprop_votes`, and picks its settings on held-out visible
tags.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_choice, check_int
from ccgraph.containers import KnnGraph, TagScores, TagSet, check_same_ids
from ccgraph.evaluate.feature_aware import correct_and_smooth, normalized_adjacency
from ccgraph.exceptions import InputError
from ccgraph.propagate.spread_tagprop import (
    Holdout,
    choose_on_holdout,
    drop_neighbors,
    holdout_map,
    tagprop_holdout,
)
from ccgraph.propagate.tagprop import Neighbors, tagprop_votes, top_k_sparse

__all__ = [
    "Holdout",
    "drop_neighbors",
    "holdout_map",
    "smooth_votes",
    "tagprop_holdout",
    "tagprop_smooth_tags",
]

log = logging.getLogger(__name__)

CLAMPS = ("entries", "rows")


def smooth_votes(
    s: sp.csr_matrix,
    votes: np.ndarray,
    seeds: TagSet,
    *,
    smooth_alpha: float,
    correct_alpha: float = 0.0,
    clamp: str = "entries",
    n_iter: int = 30,
) -> np.ndarray:
    r"""Correct & Smooth of TagProp's ``votes`` with the visible tags clamped.

    Parameters
    ----------
    s
        Normalised adjacency (:func:`~ccgraph.evaluate.feature_aware.normalized_adjacency`).
    votes
        ``[n, t]`` base scores :math:`P_0` (TagProp probabilities).
    seeds
        Visible tags :math:`Y` (0/1).
    smooth_alpha, correct_alpha, n_iter
        As in :func:`~ccgraph.evaluate.feature_aware.correct_and_smooth`.
    clamp
        ``"entries"``: a tagged item's visible tags are set to 1 and its other tags keep
        their votes, :math:`Y_L' = \max(P_{0,L}, Y_L)` (its other tags are unknown, not
        absent); ``"rows"``: C&S's clamp, the whole row set to :math:`Y_L`.

    Notes
    -----
    With ``correct_alpha = 0`` and ``n_iter`` large the result is
    :math:`(1-\alpha)(I-\alpha S)^{-1} G_0`, :math:`G_0` = :math:`P_0` with the tagged rows
    replaced by :math:`Y_L'`.
    """
    clamp = check_choice("clamp", clamp, CLAMPS)
    train = np.flatnonzero(seeds.is_tagged)
    y = sp.csr_matrix(seeds.matrix[train] > 0, dtype=np.float64).toarray()
    if clamp == "entries":
        y = np.maximum(y, votes[train])
    return correct_and_smooth(
        s,
        votes,
        y,
        train,
        correct_alpha=correct_alpha,
        smooth_alpha=smooth_alpha,
        n_iter=n_iter,
    )


def tagprop_smooth_tags(
    graph: KnnGraph,
    neighbors: Neighbors,
    seeds: TagSet,
    *,
    smooth_alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 0.9),
    correct_alphas: Sequence[float] = (0.0, 0.8),
    clamps: Sequence[str] = CLAMPS,
    val_fraction: float = 0.2,
    val_tag_fraction: float = 0.3,
    weighting: str = "distance",
    top_k: int = 10,
    n_iter: int = 30,
    rng: RngLike = None,
) -> TagScores:
    r"""Tags from TagProp's votes smoothed over the graph (Correct & Smooth, TagProp base).

    Parameters
    ----------
    graph
        The similarity graph (smoothing).
    neighbors
        Neighbour lists of the TagProp base predictor (as for
        :func:`~ccgraph.evaluate.baselines.tagprop_tags`).
    seeds
        Visible tags.
    smooth_alphas, correct_alphas, clamps
        Grid of :func:`smooth_votes` settings; ``smooth_alpha = correct_alpha = 0`` with
        ``clamp="entries"`` is TagProp itself.
    val_fraction, val_tag_fraction
        :func:`tagprop_holdout`: share of the tagged items held out to choose the grid point
        (by the mean of the cold and the partial items' MAP), and the share of a partial
        item's tags hidden. TagProp's votes are recomputed from what the holdout leaves.
    weighting
        TagProp's neighbour weighting.
    top_k
        Tags kept per item (seed tags excluded).
    n_iter
        Iterations of each propagation.
    rng
        Seeds the holdout.

    Returns
    -------
    TagScores
        ``confidence`` is the smoothed score clipped to [0, 1]; ``params`` keeps the chosen
        setting, TagProp's ``sigma`` and the held-out MAP of every grid point.

    Notes
    -----
    :math:`P_0(t \mid i) = \sum_{j \in N_k(i)} \pi_{ij} y_{jt}` (TagProp), then
    :func:`smooth_votes`.

    References
    ----------
    Guillaumin, Mensink, Verbeek, Schmid (2009). TagProp. ICCV. Huang, He, Singh, Lim, Benson
    (2021). Combining label propagation and simple models out-performs graph neural networks.
    ICLR.

    Examples
    --------
    >>> import pandas as pd
    >>> from ccgraph.evaluate.baselines import neighbors_from_graph
    >>> block = np.ones((4, 4)) - np.eye(4)
    >>> a = sp.csr_matrix(np.kron(np.eye(2), block))  # two cliques of four
    >>> g = KnnGraph.from_adjacency(a, list("abcdefgh"))
    >>> t = pd.DataFrame({"id": list("abcefg"), "tag": list("xxxyyy")})
    >>> seeds = TagSet.from_frame(t, g.ids, weight_column=None)
    >>> out = tagprop_smooth_tags(g, neighbors_from_graph(g), seeds, top_k=1, rng=0)
    >>> [out.tags[out.scores[i].indices].tolist() for i in (3, 7)]
    [['x'], ['y']]
    """
    check_same_ids(graph.ids, seeds.ids, what="graph and seed tags")
    check_same_ids(neighbors.ids, seeds.ids, what="neighbours and seed tags")
    top_k = check_int("top_k", top_k, low=1)
    n_iter = check_int("n_iter", n_iter, low=1)
    grid = [
        (check_choice("clamps", c, CLAMPS), float(ca), float(sa))
        for c, ca, sa in itertools.product(clamps, correct_alphas, smooth_alphas)
    ]
    if not grid:
        raise InputError("the grid is empty: give at least one clamp, correct and smooth alpha")
    if int(seeds.is_tagged.sum()) < 5 or seeds.n_tags == 0:
        raise InputError(
            f"tagprop_smooth needs at least 5 tagged items; got {int(seeds.is_tagged.sum())}"
        )
    s = normalized_adjacency(graph.adjacency, self_loops=False)
    hold = tagprop_holdout(
        seeds, fraction=val_fraction, tag_fraction=val_tag_fraction, rng=as_generator(rng)
    )
    votes, _ = tagprop_votes(drop_neighbors(neighbors, hold.cold), hold.seeds, weighting=weighting)
    base = votes.toarray().astype(np.float64)
    seen = hold.seeds.matrix

    def predict(setting: tuple[str, float, float]) -> np.ndarray:
        clamp, ca, sa = setting
        return smooth_votes(
            s, base, hold.seeds, smooth_alpha=sa, correct_alpha=ca, clamp=clamp, n_iter=n_iter
        )

    best, scores = choose_on_holdout(hold, predict, grid, seen=seen)
    clamp, ca, sa = best
    log.info(
        "tagprop_smooth: clamp=%s correct=%g smooth=%g (held-out MAP %.3f; TagProp alone %.3f)",
        clamp,
        ca,
        sa,
        scores[best],
        scores.get(("entries", 0.0, 0.0), float("nan")),
    )
    votes, fit = tagprop_votes(neighbors, seeds, weighting=weighting)
    pred = smooth_votes(
        s,
        votes.toarray().astype(np.float64),
        seeds,
        smooth_alpha=sa,
        correct_alpha=ca,
        clamp=clamp,
        n_iter=n_iter,
    )
    out = top_k_sparse(lambda r: pred[r], len(seeds.ids), seeds, top_k=top_k, positive_only=True)
    conf = sp.csr_matrix(
        (np.clip(out.data, 0, 1).astype(np.float32), out.indices, out.indptr), shape=out.shape
    )
    params = {
        "method": "tagprop_smooth",
        "clamp": clamp,
        "correct_alpha": ca,
        "smooth_alpha": sa,
        "holdout_map": scores[best],
        "grid": [[c, a, b, scores[(c, a, b)]] for c, a, b in grid],
        "sigma": fit["sigma"],
        "top_k": top_k,
    }
    return TagScores(out, conf, seeds.ids, seeds.tags, params)
