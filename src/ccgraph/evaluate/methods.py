"""The tag-inference methods the harness compares, behind one calling convention.

Each method gets a :class:`MethodInputs` (graph, seed tags, optional features, shared
neighbour lists) and returns :class:`~ccgraph.containers.TagScores` ranked to ``depth``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ccgraph._random import derive_seed
from ccgraph.containers import Embeddings, KnnGraph, TagScores, TagSet
from ccgraph.evaluate.baselines import (
    Neighbors,
    knn_vote_tags,
    neighbors_from_embeddings,
    neighbors_from_graph,
    prior_tags,
    random_tags,
    sklearn_label_spreading,
    tagprop_tags,
    top_k_sparse,
)
from ccgraph.evaluate.feature_aware import feature_aware_tags
from ccgraph.evaluate.tagprop_blend import spread_tagprop_tags
from ccgraph.evaluate.tagprop_smooth import tagprop_smooth_tags
from ccgraph.exceptions import InputError

__all__ = ["METHODS", "MethodInputs", "MethodSkipped", "run_method"]

log = logging.getLogger(__name__)


class MethodSkipped(Exception):
    """The method does not apply to these inputs (the reason is the message)."""


@dataclass(eq=False)
class MethodInputs:
    """Everything a method may use; nothing here holds a hidden tag.

    Attributes
    ----------
    graph
        The similarity graph of this repeat.
    seeds
        Visible tags.
    features
        Dense features (the embeddings behind the graph), or None for graph-only data.
    depth
        Tags ranked per item.
    k_neighbors
        Neighbours of the kNN baselines.
    seed
        Seed of this repeat.
    spread
        Keyword arguments for :func:`ccgraph.propagate.spread_tags`.
    tagprop
        ``weight`` and ``k`` of ``propagate.tags.tagprop_weight`` / ``tagprop_k``: when set,
        ``spread`` is the run's blend with TagProp (calibrated on held-out visible tags).
    """

    graph: KnnGraph
    seeds: TagSet
    features: Embeddings | None = None
    depth: int = 100
    k_neighbors: int = 15
    seed: int = 0
    spread: Mapping[str, Any] = field(default_factory=dict)
    tagprop: Mapping[str, Any] = field(default_factory=dict)
    _neighbors: Neighbors | None = None

    @property
    def neighbors(self) -> Neighbors:
        """KNN lists for the voting baselines, computed once per repeat.

        From the features when there are any (exact cosine search among the items with visible
        tags, as Li et al. search the tagged collection), else the heaviest graph edges.
        """
        if self._neighbors is None:
            if self.features is not None:
                self._neighbors = neighbors_from_embeddings(
                    self.features, k=self.k_neighbors, candidates=self.seeds.is_tagged
                )
            else:
                self._neighbors = neighbors_from_graph(self.graph, k=self.k_neighbors)
        return self._neighbors


def _spread(inp: MethodInputs) -> TagScores:
    from ccgraph.propagate import spread_tags

    if inp.tagprop:  # propagate.tags.tagprop_weight set: the run's blend
        from ccgraph.propagate.spread_tagprop import spread_tagprop_tags as run_blend

        if inp.features is None:
            raise MethodSkipped("propagate.tags.tagprop_weight needs dense features")
        return run_blend(
            inp.graph,
            inp.features,
            inp.seeds,
            weight=inp.tagprop["weight"],
            k=inp.tagprop["k"],
            spread_kwargs=inp.spread,
            top_k=inp.depth,
            rng=inp.seed,
        )

    kwargs = {"top_k": inp.depth, "min_confidence": 0.0, "rng": inp.seed, **inp.spread}
    kwargs["top_k"] = inp.depth
    return spread_tags(inp.graph, inp.seeds, **kwargs)


def _spread_tagprop(inp: MethodInputs) -> TagScores:
    return spread_tagprop_tags(
        inp.graph,
        inp.neighbors,
        inp.seeds,
        spread_kwargs=inp.spread,
        top_k=inp.depth,
        rng=inp.seed,
    )


def _feature_aware(inp: MethodInputs) -> TagScores:
    if inp.features is None:
        raise MethodSkipped("no dense features (graph-only data)")
    return feature_aware_tags(inp.graph, inp.features, inp.seeds, top_k=inp.depth, rng=inp.seed)


def _tagprop_smooth(inp: MethodInputs) -> TagScores:
    return tagprop_smooth_tags(inp.graph, inp.neighbors, inp.seeds, top_k=inp.depth, rng=inp.seed)


def _label_spreading(inp: MethodInputs) -> TagScores:
    per_item = np.diff(inp.seeds.matrix.indptr)
    if per_item.max(initial=0) > 1:
        raise MethodSkipped("scikit-learn LabelSpreading needs single-label data")
    m = inp.seeds.matrix.tocoo()
    labels = np.full(len(inp.seeds.ids), -1, dtype=np.int64)
    labels[m.row] = m.col
    if (labels >= 0).sum() == 0:
        raise MethodSkipped("no labelled items")
    dist = sklearn_label_spreading(inp.graph.adjacency, labels, alpha=0.8)
    full = np.zeros((len(labels), inp.seeds.n_tags))
    full[:, : dist.shape[1]] = dist
    s = top_k_sparse(lambda r: full[r], len(labels), inp.seeds, top_k=inp.depth)
    conf = sp.csr_matrix((np.clip(s.data, 0, 1), s.indices, s.indptr), shape=s.shape)
    return TagScores(s, conf, inp.seeds.ids, inp.seeds.tags, {"method": "label_spreading"})


METHODS: dict[str, Callable[[MethodInputs], TagScores]] = {
    "spread": _spread,
    "feature_aware": _feature_aware,
    "spread_tagprop": _spread_tagprop,
    "tagprop_smooth": _tagprop_smooth,
    "prior": lambda inp: prior_tags(inp.seeds, top_k=inp.depth),
    "random": lambda inp: random_tags(inp.seeds, top_k=inp.depth, rng=derive_seed(inp.seed)),
    "knn_vote": lambda inp: knn_vote_tags(inp.neighbors, inp.seeds, top_k=inp.depth),
    "tagprop": lambda inp: tagprop_tags(inp.neighbors, inp.seeds, top_k=inp.depth),
    "label_spreading": _label_spreading,
}


def run_method(name: str, inputs: MethodInputs) -> TagScores:
    """Run the method called ``name``; raises :class:`MethodSkipped` when it does not apply."""
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    out = METHODS[name](inputs)
    if out.scores.shape != inputs.seeds.matrix.shape:
        raise InputError(
            f"method {name!r} returned scores of shape {out.scores.shape}; expected "
            f"{inputs.seeds.matrix.shape} (items x visible tags)"
        )
    return out
