from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ccgraph.exceptions import ParameterError
from ccgraph.report import layout
from ccgraph.report.layout import map_layout, spectral_layout


def planted(n: int, k: int, *, p_in: float, p_out: float, seed: int = 0):
    g = np.random.default_rng(seed)
    lab = np.arange(n) % k
    prob = np.where(lab[:, None] == lab[None, :], p_in, p_out)
    upper = np.triu(g.random((n, n)) < prob, 1)
    w = np.triu(g.uniform(0.5, 1.0, (n, n)), 1) * upper
    return sp.csr_matrix(w + w.T), lab


def dense_oracle(a: np.ndarray) -> np.ndarray:
    """Independent dense computation of the regularised random-walk eigenvectors 2 and 3."""
    n = len(a)
    d = a.sum(axis=1)
    tau = d.mean()
    at = a + tau / n
    dt = at.sum(axis=1)
    m = at / np.sqrt(np.outer(dt, dt))
    vals, vecs = np.linalg.eigh(m)
    top = vecs[:, np.argsort(vals)[::-1][1:3]]
    return top / np.sqrt(dt)[:, None]


def subspace_cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    qx, _ = np.linalg.qr(x - x.mean(0))
    qy, _ = np.linalg.qr(y - y.mean(0))
    return np.linalg.svd(qx.T @ qy, compute_uv=False)


@pytest.mark.parametrize("n", [48, 300])  # dense path and sparse (ARPACK) path
def test_matches_dense_eigendecomposition(n):
    assert (n > layout._DENSE_MAX) == (n == 300)
    a, _ = planted(n, 3, p_in=min(0.08 * 300 / n, 0.5), p_out=0.005)
    xy = spectral_layout(a, rng=0)
    cos = subspace_cosines(xy, dense_oracle(a.toarray()))
    assert cos.min() > 0.999


def test_deterministic_and_seed_independent():
    a, _ = planted(700, 4, p_in=0.05, p_out=0.005, seed=1)
    x1 = spectral_layout(a, rng=0)
    assert np.array_equal(x1, spectral_layout(a, rng=0))
    x2 = spectral_layout(a, rng=7)
    assert np.allclose(np.abs(x1), np.abs(x2), atol=1e-5)  # same up to the fixed sign rule
    assert np.allclose(x1, x2, atol=1e-5)


def test_separates_two_planted_clusters_and_normalises():
    a, lab = planted(300, 2, p_in=0.1, p_out=0.004, seed=2)
    xy = spectral_layout(a)
    assert np.allclose(xy.mean(0), 0, atol=1e-9) and np.allclose(xy.std(0), 1)
    first = xy[:, 0]
    assert abs(first[lab == 0].mean() - first[lab == 1].mean()) > 1.5
    side = first > 0  # the sign of the first axis splits the two clusters exactly
    assert (side == (lab == 0)).all() or (side == (lab == 1)).all()


def test_isolated_items_and_components_stay_finite():
    a, _ = planted(120, 3, p_in=0.2, p_out=0.0, seed=3)
    a = sp.block_diag([a, sp.csr_matrix((5, 5))]).tocsr()  # 3 components + 5 isolated
    xy = spectral_layout(a)
    assert xy.shape == (125, 2) and np.isfinite(xy).all()
    assert spectral_layout(sp.csr_matrix((2, 2))).shape == (2, 2)


def test_rejects_bad_input():
    with pytest.raises(ParameterError, match="square"):
        spectral_layout(sp.csr_matrix((3, 4)))
    with pytest.raises(ParameterError, match="non-negative"):
        spectral_layout(sp.csr_matrix(-np.ones((3, 3))))
    with pytest.raises(ParameterError, match="membership"):
        map_layout(sp.csr_matrix((5, 5)), np.zeros(4))


def test_map_layout_exact_below_limit_and_clustered_above():
    a, lab = planted(400, 4, p_in=0.06, p_out=0.002, seed=4)
    index, xy = map_layout(a, lab, max_items=1000)
    assert np.array_equal(index, np.arange(400))
    assert np.array_equal(xy, spectral_layout(a, rng=0))
    index, xy = map_layout(a, lab, max_items=100, rng=5)
    assert len(index) == 100 and len(set(index.tolist())) == 100
    assert np.all(np.diff(index) > 0) and np.isfinite(xy).all()
    # items scatter around their cluster's centre: within-cluster spread < between-cluster gaps
    sub = lab[index]
    centres = np.array([xy[sub == c].mean(0) for c in range(4)])
    within = max(np.linalg.norm(xy[sub == c] - centres[c], axis=1).max() for c in range(4))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(4) for j in range(i + 1, 4)]
    assert np.median(gaps) > within
    i2, xy2 = map_layout(a, lab, max_items=100, rng=5)
    assert np.array_equal(index, i2) and np.array_equal(xy, xy2)
