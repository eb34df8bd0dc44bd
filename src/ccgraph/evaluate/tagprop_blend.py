"""``spread_tagprop``: graph spreading blended with TagProp's neighbour votes.

:func:`ccgraph.propagate.spread_tags` reaches items whose nearest tagged items are several
hops away; TagProp (:func:`~ccgraph.evaluate.baselines.tagprop_tags`) is sharp where a tagged
near-duplicate exists. Their row-normalised scores are mixed with a weight chosen on held-out
visible tags (:func:`~ccgraph.evaluate.tagprop_smooth.tagprop_holdout`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ccgraph._random import RngLike
from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.containers import KnnGraph, TagScores, TagSet, check_same_ids
from ccgraph.evaluate.baselines import tagprop_tags
from ccgraph.exceptions import InputError
from ccgraph.propagate.spread_tagprop import choose_on_holdout, drop_neighbors, seeded_holdout
from ccgraph.propagate.tagprop import Neighbors, blend_scores, row_normalize, top_k_sparse

__all__ = ["blend_scores", "row_normalize", "spread_tagprop_tags"]

log = logging.getLogger(__name__)


def _mix(spread: TagScores, tagprop: TagScores, weight: float, scale: str) -> sp.csr_matrix:
    if scale == "confidence":  # both on a probability scale already
        a = sp.csr_matrix(spread.confidence, dtype=np.float64)
        b = sp.csr_matrix(tagprop.confidence, dtype=np.float64)
        return sp.csr_matrix((1 - weight) * a + weight * b)
    return blend_scores(spread.scores, tagprop.scores, weight=weight)


def _run_spread(
    graph: KnnGraph, seeds: TagSet, kwargs: Mapping[str, Any], top_k: int, rng: RngLike
) -> TagScores:
    from ccgraph.propagate import spread_tags

    args = {"min_confidence": 0.0, "rng": rng, **kwargs, "top_k": top_k}
    return spread_tags(graph, seeds, **args)


def spread_tagprop_tags(
    graph: KnnGraph,
    neighbors: Neighbors,
    seeds: TagSet,
    *,
    weights: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)),
    spread_kwargs: Mapping[str, Any] | None = None,
    val_fraction: float = 0.2,
    val_tag_fraction: float = 0.3,
    weighting: str = "distance",
    scale: str = "rows",
    top_k: int = 10,
    rng: RngLike = None,
) -> TagScores:
    r"""Tags from a blend of label spreading and TagProp, the weight chosen on held-out tags.

    Parameters
    ----------
    graph
        The similarity graph (spreading).
    neighbors
        Neighbour lists of TagProp (as for :func:`~ccgraph.evaluate.baselines.tagprop_tags`).
    seeds
        Visible tags.
    weights
        Candidate TagProp weights :math:`w` (0 = spreading only, 1 = TagProp only).
    spread_kwargs
        Keyword arguments of :func:`ccgraph.propagate.spread_tags` (e.g. ``alpha``).
    val_fraction, val_tag_fraction
        :func:`~ccgraph.evaluate.tagprop_smooth.tagprop_holdout`: share of the tagged items
        held out to choose :math:`w` (by the mean of the cold and the partial items' MAP), and
        the share of a partial item's tags hidden. Both methods rerun on what it leaves.
    weighting
        TagProp's neighbour weighting.
    scale
        ``"rows"``: blend each method's scores normalised to sum to one per item;
        ``"confidence"``: blend spreading's calibrated confidence with TagProp's probability
        (comparable across items: better for ranking the items of one tag, see
        ``docs/evaluation.md``).
    top_k
        Tags kept per item (seed tags excluded); each method proposes its own ``top_k``.
    rng
        Seeds the holdout and the spreading's calibration.

    Returns
    -------
    TagScores
        ``scores`` the blend; ``confidence`` the same blend of the two confidences (spreading's
        calibrated confidence and TagProp's probability); ``params`` keeps :math:`w`, the
        held-out MAP of every weight and TagProp's ``sigma``.

    Notes
    -----
    :math:`s(i, t) = (1-w)\,F_{it} / \sum_u F_{iu} + w\,P_{it} / \sum_u P_{iu}` over each
    method's top ``top_k`` proposals, :math:`F` the spread scores, :math:`P` TagProp's votes
    (``scale="rows"``), or :math:`(1-w)\,C_{it} + w\,P_{it}` with :math:`C` spreading's
    calibrated confidence (``scale="confidence"``).

    References
    ----------
    Guillaumin, Mensink, Verbeek, Schmid (2009). TagProp. ICCV. Zhou, Bousquet, Lal, Weston,
    Schölkopf (2004). Learning with local and global consistency. NIPS.
    """
    check_same_ids(graph.ids, seeds.ids, what="graph and seed tags")
    check_same_ids(neighbors.ids, seeds.ids, what="neighbours and seed tags")
    top_k = check_int("top_k", top_k, low=1)
    grid = [check_float("weights", w, low=0, high=1) for w in weights]
    scale = check_choice("scale", scale, ("rows", "confidence"))
    if not grid:
        raise InputError("`weights` is empty: give at least one TagProp weight in [0, 1]")
    if int(seeds.is_tagged.sum()) < 5 or seeds.n_tags == 0:
        raise InputError(
            f"spread_tagprop needs at least 5 tagged items; got {int(seeds.is_tagged.sum())}"
        )
    kwargs = dict(spread_kwargs or {})
    # an int seed reaches spread_tags as given: w = 0 is then the `spread` method exactly
    spread_seed, hold = seeded_holdout(
        seeds, fraction=val_fraction, tag_fraction=val_tag_fraction, rng=rng
    )
    scores: dict[float, float] = {}
    if len(grid) > 1:
        sv = _run_spread(graph, hold.seeds, kwargs, top_k, spread_seed)
        tv = tagprop_tags(
            drop_neighbors(neighbors, hold.cold), hold.seeds, top_k=top_k, weighting=weighting
        )
        best, scores = choose_on_holdout(hold, lambda w: _mix(sv, tv, w, scale), grid)
    else:
        best = grid[0]
    log.info("spread_tagprop: TagProp weight %g (held-out MAP %s)", best, scores.get(best))
    sf = _run_spread(graph, seeds, kwargs, top_k, spread_seed)
    tf = tagprop_tags(neighbors, seeds, top_k=top_k, weighting=weighting)
    pred = _mix(sf, tf, best, scale)
    conf_all = sp.csr_matrix(
        (1 - best) * sp.csr_matrix(sf.confidence) + best * sp.csr_matrix(tf.confidence)
    )
    out = top_k_sparse(
        lambda r: pred[r].toarray(), len(seeds.ids), seeds, top_k=top_k, positive_only=True
    )
    rows = np.repeat(np.arange(out.shape[0]), np.diff(out.indptr))
    conf_vals = np.asarray(conf_all[rows, out.indices]).ravel() if out.nnz else np.zeros(0)
    conf = sp.csr_matrix(
        (np.clip(conf_vals, 0, 1).astype(np.float32), out.indices.copy(), out.indptr.copy()),
        shape=out.shape,
    )
    params = {
        "method": "spread_tagprop",
        "weight": float(best),
        "scale": scale,
        "holdout_map": scores.get(best),
        "grid": [[float(w), scores.get(w)] for w in grid],
        "sigma": tf.params.get("sigma"),
        "top_k": top_k,
    }
    return TagScores(out, conf, seeds.ids, seeds.tags, params)
