from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import kneighbors_graph

from ccgraph.containers import KnnGraph
from ccgraph.evaluate.baselines import Neighbors, tagprop_tags
from ccgraph.evaluate.tagprop_blend import blend_scores, row_normalize, spread_tagprop_tags
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.propagate import spread_tags
from tests.evaluate.test_tagprop_smooth import _data


def _ranking(m: sp.csr_matrix) -> list[list[int]]:
    """Each row's stored columns, best score first."""
    out = []
    for i in range(m.shape[0]):
        row = m[i]
        out.append(row.indices[np.argsort(-row.data, kind="stable")].tolist())
    return out


def test_blend_is_the_convex_mix_of_row_normalised_scores():
    rng = np.random.default_rng(0)
    a = rng.random((6, 5)) * (rng.random((6, 5)) < 0.5)
    b = rng.random((6, 5)) * (rng.random((6, 5)) < 0.5)
    a[2] = 0  # an empty row stays empty
    w = 0.3
    na = np.divide(
        a, a.sum(1, keepdims=True), out=np.zeros_like(a), where=a.sum(1, keepdims=True) > 0
    )
    nb = b / b.sum(1, keepdims=True)
    got = blend_scores(sp.csr_matrix(a), sp.csr_matrix(b), weight=w).toarray()
    np.testing.assert_allclose(got, (1 - w) * na + w * nb)
    np.testing.assert_allclose(row_normalize(sp.csr_matrix(a)).toarray(), na)
    with pytest.raises(ParameterError, match="weight"):
        blend_scores(sp.csr_matrix(a), sp.csr_matrix(b), weight=1.5)
    with pytest.raises(InputError, match="shape"):
        blend_scores(sp.csr_matrix(a), sp.csr_matrix(b[:, :4]), weight=0.5)


@pytest.mark.parametrize("scale", ["rows", "confidence"])
def test_weight_one_ranks_as_tagprop(scale):
    graph, nb, seeds, _ = _data(seed=1)
    out = spread_tagprop_tags(graph, nb, seeds, weights=(1.0,), scale=scale, top_k=4, rng=0)
    ref = tagprop_tags(nb, seeds, top_k=4)
    assert _ranking(out.scores) == _ranking(ref.scores)
    np.testing.assert_allclose(out.confidence.toarray(), ref.confidence.toarray(), rtol=1e-6)


def test_weight_zero_ranks_as_spread_tags():
    graph, nb, seeds, _ = _data(seed=2)
    kw = {"alpha": 0.8}
    out = spread_tagprop_tags(graph, nb, seeds, weights=(0.0,), spread_kwargs=kw, top_k=4, rng=0)
    ref = spread_tags(graph, seeds, top_k=4, min_confidence=0.0, alpha=0.8, rng=0)
    pos = sp.csr_matrix(ref.scores.multiply(ref.scores > 0))
    assert _ranking(out.scores) == _ranking(pos)
    conf = sp.csr_matrix(ref.confidence.multiply(ref.scores > 0))
    np.testing.assert_allclose(out.confidence.toarray(), conf.toarray(), rtol=1e-6)


def test_confidence_scale_mixes_the_two_confidences():
    graph, nb, seeds, _ = _data(seed=6)
    kw = {"alpha": 0.8}
    w = 0.3
    out = spread_tagprop_tags(
        graph, nb, seeds, weights=(w,), spread_kwargs=kw, scale="confidence", top_k=50, rng=0
    )
    spread = spread_tags(graph, seeds, top_k=50, min_confidence=0.0, alpha=0.8, rng=0)
    tp = tagprop_tags(nb, seeds, top_k=50)
    want = (1 - w) * spread.confidence.toarray() + w * tp.confidence.toarray()
    got = out.scores.toarray()
    kept = got > 0  # top_k = 50 keeps every positive entry of these 7 tags
    np.testing.assert_allclose(got[kept], want[kept], rtol=1e-5)
    assert not (want[~kept] > 0).any()
    np.testing.assert_allclose(out.confidence.toarray(), np.clip(got, 0, 1), rtol=1e-5)


def _random_neighbors(nb: Neighbors, seeds, seed: int) -> Neighbors:
    rng = np.random.default_rng(seed)
    tagged = np.flatnonzero(seeds.is_tagged)
    index = rng.choice(tagged, size=nb.index.shape)
    return Neighbors(index, np.sort(rng.random(nb.index.shape))[:, ::-1].astype(np.float32), nb.ids)


def _random_graph(n: int, ids, seed: int) -> KnnGraph:
    x = np.random.default_rng(seed).normal(size=(n, 5))
    return KnnGraph.from_adjacency(kneighbors_graph(x, 6), ids)


def test_the_weight_follows_the_informative_half():
    graph, nb, seeds, _ = _data(n=240, seed=3)
    good_graph = spread_tagprop_tags(graph, _random_neighbors(nb, seeds, 0), seeds, top_k=4, rng=0)
    good_votes = spread_tagprop_tags(_random_graph(240, seeds.ids, 0), nb, seeds, top_k=4, rng=0)
    assert good_graph.params["weight"] <= 0.3
    assert good_votes.params["weight"] >= 0.7
    for out in (good_graph, good_votes):
        grid = dict((w, s) for w, s in out.params["grid"])
        assert grid[out.params["weight"]] == max(grid.values())


def test_output_contract():
    graph, nb, seeds, labels = _data(n=200, seed=4)
    out = spread_tagprop_tags(graph, nb, seeds, top_k=3, rng=0)
    assert out.scores.shape == seeds.matrix.shape
    assert out.scores.multiply(seeds.matrix).nnz == 0  # own seeds never proposed
    assert np.diff(out.scores.indptr).max() <= 3
    assert (out.confidence.data >= 0).all() and (out.confidence.data <= 1).all()
    np.testing.assert_array_equal(out.confidence.indices, out.scores.indices)
    cold = np.flatnonzero(~seeds.is_tagged)
    right = [
        out.tags[out.scores[i].indices[np.argmax(out.scores[i].data)]]
        in (f"c{labels[i]}", f"p{labels[i] % 2}")
        for i in cold
    ]
    assert np.mean(right) > 0.9
    again = spread_tagprop_tags(graph, nb, seeds, top_k=3, rng=0)
    assert (again.scores != out.scores).nnz == 0  # seeded


def test_bad_arguments_are_named():
    graph, nb, seeds, _ = _data(n=60, seed=5)
    with pytest.raises(InputError, match="weights"):
        spread_tagprop_tags(graph, nb, seeds, weights=())
    with pytest.raises(ParameterError, match="weights"):
        spread_tagprop_tags(graph, nb, seeds, weights=(0.5, 2.0))
    with pytest.raises(ParameterError, match="top_k"):
        spread_tagprop_tags(graph, nb, seeds, top_k=0)
