"""Edge weights of the kNN graph: cosine similarity, adaptive Gaussian, UMAP fuzzy kernel.

All three turn an edge's distance into a positive float32 weight, floored at
:data:`MIN_WEIGHT` so that an edge the graph keeps never has weight zero.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_WEIGHT", "WEIGHTINGS", "edge_weights", "gaussian_sigmas", "umap_rho_sigma"]

WEIGHTINGS = ("cosine", "gaussian", "umap")

#: Smallest weight of a kept edge (cosine similarities <= 0 are clipped up to it).
MIN_WEIGHT = 1e-6


def gaussian_sigmas(knn_dist: np.ndarray) -> np.ndarray:
    """Local scale ``sigma_i``: the distance to item ``i``'s ``ceil(k / 2)``-th neighbour.

    A zero scale (an item with many exact duplicates) is raised to ``1e-3`` times the mean
    positive kNN distance, so the kernel stays defined.
    """
    k = knn_dist.shape[1]
    sig = knn_dist[:, max(1, -(-k // 2)) - 1].astype(np.float64)
    sig = np.where(np.isfinite(sig), sig, np.nan)
    finite = knn_dist[np.isfinite(knn_dist) & (knn_dist > 0)]
    floor = 1e-3 * float(finite.mean()) if finite.size else 1e-12
    return np.maximum(np.nan_to_num(sig, nan=floor), floor)


def umap_rho_sigma(knn_dist: np.ndarray, *, n_iter: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's per-item offset ``rho_i`` and bandwidth ``sigma_i`` (vectorised bisection).

    ``rho_i`` is the distance to the nearest neighbour at a positive distance; ``sigma_i``
    solves ``sum_j exp(-max(0, d_ij - rho_i) / sigma_i) = log2(k)`` over the ``k`` neighbours
    of ``i`` (self excluded), floored at ``1e-3`` times the mean neighbour distance as in
    UMAP's ``smooth_knn_dist``.
    """
    d = np.where(np.isfinite(knn_dist), knn_dist, np.nan).astype(np.float64)
    n, k = d.shape
    target = np.log2(k)
    pos = np.where(d > 0, d, np.inf)
    rho = pos.min(axis=1)
    rho[~np.isfinite(rho)] = 0.0
    shifted = np.maximum(d - rho[:, None], 0.0)
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    mid = np.ones(n)
    for _ in range(n_iter):
        psum = np.nansum(np.exp(-shifted / mid[:, None]), axis=1)
        high = psum > target
        hi = np.where(high, mid, hi)
        lo = np.where(high, lo, mid)
        mid = np.where(np.isfinite(hi), (lo + hi) / 2.0, mid * 2.0)
    mean_all = float(np.nanmean(d)) if np.isfinite(d).any() else 1.0
    mean_row = np.nan_to_num(np.nanmean(d, axis=1), nan=mean_all)
    floor = 1e-3 * np.where(rho > 0, mean_row, mean_all)
    return rho, np.maximum(mid, np.maximum(floor, 1e-12))


def edge_weights(
    u: np.ndarray,
    v: np.ndarray,
    dist: np.ndarray,
    *,
    weighting: str,
    metric: str,
    knn_dist: np.ndarray,
    in_uv: np.ndarray | None = None,
    in_vu: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
    n_bits: int | None = None,
) -> np.ndarray:
    """Weights of the undirected edges ``(u, v)`` at distance ``dist``.

    Parameters
    ----------
    u, v, dist
        Edge ends and the distance between them (in ``metric``).
    weighting
        ``"cosine"``, ``"gaussian"`` or ``"umap"`` (see Notes).
    metric
        The kNN metric; decides how ``cosine`` similarity is read from the distance.
    knn_dist
        ``[n, k]`` kNN distances of all items (local scales for gaussian / umap).
    in_uv, in_vu
        Whether ``v`` is in ``u``'s kNN list and vice versa (umap only; None = both).
    vectors
        Dense vectors, needed for ``cosine`` weights when ``metric="euclidean"``.
    n_bits
        Code length, needed for ``cosine`` weights when ``metric="hamming"``.

    Returns
    -------
    numpy.ndarray
        float32 weights in ``[MIN_WEIGHT, 1]``.

    Notes
    -----
    ``cosine``: ``w = max(cos(x_u, x_v), eps)``; for ``metric="cosine"`` ``cos = 1 - d``, for
    Hamming codes of ``B`` bits ``cos = 1 - d / B`` (the share of agreeing bits, the
    sign-random-projection estimate of the angle's similarity), for euclidean it is computed
    from the vectors.

    ``gaussian`` (self-tuning, Zelnik-Manor & Perona): ``w = exp(-d^2 / (sigma_u sigma_v))``
    with ``sigma_i`` the distance from ``i`` to its ``ceil(k/2)``-th neighbour, so dense and
    sparse regions get comparable weights.

    ``umap`` (McInnes et al.): directed memberships
    ``p(v|u) = exp(-max(0, d - rho_u) / sigma_u)`` for ``v`` in ``u``'s kNN list (else 0), with
    ``rho_u`` the distance to ``u``'s nearest neighbour and ``sigma_u`` solving
    ``sum_j exp(-max(0, d_uj - rho_u) / sigma_u) = log2(k)``; symmetrised by the fuzzy union
    ``w = a + b - a b`` with ``a = p(v|u)``, ``b = p(u|v)``. Edges on neither list (bridges
    between components) use the kernel in both directions.

    References
    ----------
    .. [1] L. Zelnik-Manor and P. Perona, "Self-tuning spectral clustering", NIPS 2004.
    .. [2] L. McInnes, J. Healy and J. Melville, "UMAP: Uniform Manifold Approximation and
       Projection for Dimension Reduction", arXiv:1802.03426, 2018.

    Examples
    --------
    >>> kd = np.array([[0.1, 0.2], [0.1, 0.3], [0.2, 0.3]])  # 2-NN distances of 3 items
    >>> u, v, d = np.array([0]), np.array([1]), np.array([0.1])
    >>> for kind in ("cosine", "gaussian", "umap"):
    ...     w = edge_weights(u, v, d, weighting=kind, metric="cosine", knn_dist=kd)
    ...     print(kind, round(float(w[0]), 3))
    cosine 0.9
    gaussian 0.368
    umap 1.0
    """
    d = dist.astype(np.float64)
    if weighting == "cosine":
        if metric == "cosine":
            sim = 1.0 - d
        elif metric == "hamming":
            assert n_bits is not None
            sim = 1.0 - d / n_bits
        else:
            assert vectors is not None
            sim = _cosine_pairs(vectors, u, v)
        w = sim
    elif weighting == "gaussian":
        sig = gaussian_sigmas(knn_dist)
        w = np.exp(-(d**2) / (sig[u] * sig[v]))
    else:
        rho, sig = umap_rho_sigma(knn_dist)
        a = np.exp(-np.maximum(d - rho[u], 0.0) / sig[u])
        b = np.exp(-np.maximum(d - rho[v], 0.0) / sig[v])
        if in_uv is not None and in_vu is not None:
            listed = in_uv | in_vu
            a = np.where(in_uv | ~listed, a, 0.0)
            b = np.where(in_vu | ~listed, b, 0.0)
        w = a + b - a * b
    return np.clip(w, MIN_WEIGHT, 1.0).astype(np.float32)


def _cosine_pairs(vectors: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Cosine similarity of the row pairs ``(u, v)``, in chunks (a zero row: 0, or 1 if both)."""
    norms = np.linalg.norm(vectors, axis=1).astype(np.float64)
    out = np.empty(len(u))
    step = 1 << 16
    for s in range(0, len(u), step):
        a, b = u[s : s + step], v[s : s + step]
        dots = np.einsum("ij,ij->i", vectors[a], vectors[b], dtype=np.float64)
        denom = norms[a] * norms[b]
        both_zero = (norms[a] == 0) & (norms[b] == 0)  # identical zero vectors: similarity 1
        safe = np.where(denom > 0, denom, 1.0)
        out[s : s + step] = np.where(denom > 0, dots / safe, np.where(both_zero, 1.0, 0.0))
    return out
