"""Feature-aware inference without a neural network.

Linear models on graph-smoothed features, then Correct & Smooth.

The same pieces serve single-label node classification (Cora / CiteSeer) and multi-label tags
on image catalogs (:func:`feature_aware_tags`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.containers import Embeddings, KnnGraph, TagScores, TagSet, check_same_ids
from ccgraph.evaluate.baselines import top_k_sparse
from ccgraph.exceptions import InputError

__all__ = [
    "correct_and_smooth",
    "feature_aware_tags",
    "normalized_adjacency",
    "propagate",
    "ridge_fit_predict",
    "smooth_features",
]

log = logging.getLogger(__name__)


def normalized_adjacency(adjacency: sp.spmatrix, *, self_loops: bool = True) -> sp.csr_matrix:
    r"""Symmetric normalisation :math:`S = D^{-1/2} (A + I) D^{-1/2}` (or of :math:`A`).

    Isolated nodes (degree 0 without self-loops) get an all-zero row.

    Examples
    --------
    >>> s = normalized_adjacency(sp.csr_matrix(np.array([[0, 1], [1, 0]])), self_loops=False)
    >>> s.toarray().tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    if a.shape[0] != a.shape[1]:
        raise InputError(f"`adjacency` must be square; got shape {a.shape}")
    if self_loops:
        a = a + sp.eye(a.shape[0], format="csr")
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
    d = sp.diags(inv)
    return (d @ a @ d).tocsr()


def smooth_features(
    adjacency: sp.spmatrix,
    features: np.ndarray | sp.spmatrix,
    *,
    k: int = 2,
    method: str = "sgc",
    alpha: float = 0.05,
) -> np.ndarray:
    r"""Graph-smoothed features: SGC's :math:`S^K X` or S²GC's averaged powers.

    Parameters
    ----------
    adjacency
        ``[n, n]`` graph; :math:`S = D^{-1/2}(A+I)D^{-1/2}`.
    features
        ``[n, d]`` features.
    k
        Number of propagation steps :math:`K`.
    method
        ``"sgc"``: :math:`S^K X`; ``"ssgc"``:
        :math:`\frac{1}{K}\sum_{k=1}^{K} ((1-\alpha) S^k X + \alpha X)`.
    alpha
        S²GC's share of the raw features.

    References
    ----------
    Wu, Souza, Zhang, Fifty, Yu, Weinberger (2019). Simplifying graph convolutional networks.
    ICML. Zhu & Koniusz (2021). Simple spectral graph convolution. ICLR.
    """
    k = check_int("k", k, low=0)
    method = check_choice("method", method, ("sgc", "ssgc"))
    alpha = check_float("alpha", alpha, low=0, high=1)
    s = normalized_adjacency(adjacency)
    if sp.issparse(features):
        x = sp.csr_matrix(features).toarray().astype(np.float64)
    else:
        x = np.asarray(features, dtype=np.float64)
    if x.shape[0] != s.shape[0]:
        raise InputError(f"`features` has {x.shape[0]} rows but the graph has {s.shape[0]} nodes")
    if method == "sgc":
        z = x
        for _ in range(k):
            z = s @ z
        return z
    z, total = x, np.zeros_like(x)
    for _ in range(k):
        z = s @ z
        total += z
    return (1 - alpha) * total / max(k, 1) + alpha * x


def propagate(
    s: sp.csr_matrix,
    g0: np.ndarray,
    *,
    alpha: float,
    n_iter: int = 50,
    clamp: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    r"""Iterate :math:`G \leftarrow (1-\alpha) G_0 + \alpha S G` (label spreading's update).

    ``clamp = (rows, values)`` resets those rows after every step (C&S's "correct" step keeps
    the known residuals fixed).
    """
    g = g0.copy()
    for _ in range(n_iter):
        g = (1 - alpha) * g0 + alpha * (s @ g)
        if clamp is not None:
            g[clamp[0]] = clamp[1]
    return g


def correct_and_smooth(
    s: sp.csr_matrix,
    base: np.ndarray,
    y_train: np.ndarray,
    train: np.ndarray,
    *,
    correct_alpha: float = 0.0,
    smooth_alpha: float = 0.8,
    scale: float = 1.0,
    n_iter: int = 50,
) -> np.ndarray:
    r"""Correct & Smooth on top of a base predictor's scores.

    Parameters
    ----------
    s
        Normalised adjacency (:func:`normalized_adjacency`).
    base
        ``[n, c]`` base predictions.
    y_train
        ``[len(train), c]`` known labels (0/1) of the training rows.
    train
        Training row indices.
    correct_alpha
        Residual propagation strength (0 skips the correct step).
    smooth_alpha
        Prediction propagation strength (0 skips the smooth step).
    scale
        Multiplier of the propagated residual ("FDiff-scale" variant).
    n_iter
        Iterations of each propagation.

    Notes
    -----
    Correct: :math:`E_0 = Y_L - Z_L` on the training rows and 0 elsewhere; propagate
    :math:`E` with the training rows held fixed; :math:`Z' = Z + s\,\hat E`. Smooth:
    :math:`G_0 = Z'` with the training rows set to :math:`Y_L`; propagate :math:`G`.

    References
    ----------
    Huang, He, Singh, Lim, Benson (2021). Combining label propagation and simple models
    out-performs graph neural networks. ICLR.
    """
    z = np.asarray(base, dtype=np.float64)
    if correct_alpha > 0:
        e0 = np.zeros_like(z)
        e0[train] = y_train - z[train]
        e = propagate(s, e0, alpha=correct_alpha, n_iter=n_iter, clamp=(train, e0[train]))
        z = z + scale * e
    if smooth_alpha > 0:
        g0 = z.copy()
        g0[train] = y_train
        z = propagate(s, g0, alpha=smooth_alpha, n_iter=n_iter)
    return z


def ridge_fit_predict(
    z: np.ndarray, train: np.ndarray, y_train: np.ndarray, *, lam: float
) -> np.ndarray:
    r"""Multi-output ridge regression fitted on ``train`` rows, predicted for every row.

    Solves :math:`W = (Z_L^\top Z_L + \lambda I)^{-1} Z_L^\top (Y_L - \bar y)` in whichever of
    the primal or dual forms is smaller, with an unpenalised intercept :math:`\bar y`.
    """
    zl = z[train]
    mu_z = zl.mean(axis=0)
    mu_y = y_train.mean(axis=0)
    zc = zl - mu_z
    yc = y_train - mu_y
    n, d = zc.shape
    if n <= d:
        a = np.linalg.solve(zc @ zc.T + lam * np.eye(n), yc)
        w = zc.T @ a
    else:
        w = np.linalg.solve(zc.T @ zc + lam * np.eye(d), zc.T @ yc)
    return (z - mu_z) @ w + mu_y


def _holdout_ap(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean over items of the average precision of ``pred`` rows against 0/1 rows ``y``."""
    order = np.argsort(-pred, axis=1, kind="stable")
    hits = np.take_along_axis(y, order, axis=1) > 0
    n_rel = hits.sum(axis=1)
    ok = n_rel > 0
    prec = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    return float(((prec * hits).sum(axis=1)[ok] / n_rel[ok]).mean()) if ok.any() else 0.0


def feature_aware_tags(
    graph: KnnGraph,
    features: Embeddings | np.ndarray,
    seeds: TagSet,
    *,
    k_hops: Sequence[int] = (0, 1, 2),
    lams: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    smooth_alphas: Sequence[float] = (0.0, 0.5, 0.8),
    val_fraction: float = 0.2,
    top_k: int = 10,
    n_iter: int = 30,
    rng: RngLike = None,
) -> TagScores:
    r"""Tags from a ridge model on graph-smoothed features, then the smooth step of C&S.

    Parameters
    ----------
    graph
        The similarity graph.
    features
        Item features (the embeddings the graph was built from, or others), same row order.
    seeds
        Visible tags (multi-label).
    k_hops, lams, smooth_alphas
        Grid: SGC steps :math:`K`, ridge penalty :math:`\lambda`, smoothing :math:`\alpha`.
    val_fraction
        Share of the tagged items held out (their tags hidden) to choose the grid point by
        mean average precision: first :math:`K` and :math:`\lambda` on the ridge predictions,
        then the smoothing :math:`\alpha`; the final model is refitted on all tagged items.
    n_iter
        Smoothing iterations (:math:`\alpha^{n}` bounds the truncation error).
    top_k
        Tags kept per item (seed tags excluded).
    rng
        Seeds the validation split.

    Returns
    -------
    TagScores
        ``confidence`` is the score clipped to [0, 1] (ridge on 0/1 targets estimates a
        probability; it is not calibrated further). ``params`` keeps the chosen grid point.

    Notes
    -----
    :math:`Z = S^K X`; :math:`\hat Y = Z W + \bar y` (:func:`ridge_fit_predict`);
    :math:`G = \mathrm{smooth}(\hat Y)` with the tagged rows set to their seeds
    (:func:`correct_and_smooth` with ``correct_alpha=0``).
    """
    check_same_ids(graph.ids, seeds.ids, what="graph and seed tags")
    if isinstance(features, Embeddings):
        check_same_ids(features.ids, seeds.ids, what="features and seed tags")
        x = np.asarray(features.vectors, dtype=np.float64)
    else:
        x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(seeds.ids):
        raise InputError(f"`features` must be [{len(seeds.ids)}, d]; got shape {x.shape}")
    top_k = check_int("top_k", top_k, low=1)
    val_fraction = check_float(
        "val_fraction", val_fraction, low=0, high=1, low_inclusive=False, high_inclusive=False
    )
    gen = as_generator(rng)
    y = (seeds.matrix > 0).astype(np.float64).tocsr()
    tagged = np.flatnonzero(seeds.is_tagged)
    if len(tagged) < 5 or seeds.n_tags == 0:
        raise InputError(f"feature-aware tags need at least 5 tagged items; got {len(tagged)}")
    s = normalized_adjacency(graph.adjacency, self_loops=False)
    hops = sorted({check_int("k_hops", h, low=0) for h in k_hops})
    smoothed = {}
    z = x
    s_loop = normalized_adjacency(graph.adjacency)
    for h in range(max(hops) + 1):
        if h in hops:
            smoothed[h] = z
        z = s_loop @ z
    perm = gen.permutation(tagged)
    n_val = max(1, round(val_fraction * len(tagged)))
    val, fit = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    y_fit = y[fit].toarray()
    y_val = y[val].toarray()
    # stage 1: SGC steps and ridge penalty on the base predictions; stage 2: smoothing
    best_base: tuple[float, int, float, np.ndarray] | None = None
    for h, lam in itertools.product(hops, lams):
        base = ridge_fit_predict(smoothed[h], fit, y_fit, lam=float(lam))
        score = _holdout_ap(base[val], y_val)
        if best_base is None or score > best_base[0]:
            best_base = (score, h, float(lam), base)
    assert best_base is not None
    score, h, lam, base = best_base
    a = 0.0
    for alpha in smooth_alphas:
        if alpha <= 0:
            continue
        pred = correct_and_smooth(s, base, y_fit, fit, smooth_alpha=float(alpha), n_iter=n_iter)
        got = _holdout_ap(pred[val], y_val)
        if got > score:
            score, a = got, float(alpha)
    log.info("feature-aware tags: K=%d lambda=%g smooth=%g (held-out MAP %.3f)", h, lam, a, score)
    y_all = y[tagged].toarray()
    base = ridge_fit_predict(smoothed[h], tagged, y_all, lam=lam)
    pred = correct_and_smooth(s, base, y_all, tagged, smooth_alpha=a, n_iter=n_iter)
    scores = top_k_sparse(lambda r: pred[r], len(seeds.ids), seeds, top_k=top_k, positive_only=True)
    conf = sp.csr_matrix(
        (np.clip(scores.data, 0, 1).astype(np.float32), scores.indices, scores.indptr),
        shape=scores.shape,
    )
    params = {
        "method": "feature_aware",
        "k_hops": h,
        "lam": lam,
        "smooth_alpha": a,
        "holdout_map": score,
        "top_k": top_k,
    }
    return TagScores(scores, conf, seeds.ids, seeds.tags, params)
