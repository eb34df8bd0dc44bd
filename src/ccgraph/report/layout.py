"""Deterministic 2-D maps of a similarity graph for the report.

Items are placed by a regularised spectral embedding (the two leading non-trivial eigenvectors
of the normalised adjacency), which is vectorised, deterministic and needs no force simulation.
Large runs are mapped through the cluster quotient graph instead of item by item.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_int
from ccgraph.exceptions import ParameterError

__all__ = ["map_layout", "spectral_layout"]

log = logging.getLogger(__name__)

_DENSE_MAX = 64


def _check_square(adjacency: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    if a.shape[0] != a.shape[1]:
        raise ParameterError(f"`adjacency` must be square; got shape {a.shape}")
    if a.nnz and (not np.isfinite(a.data).all() or a.data.min() < 0):
        raise ParameterError("`adjacency` must hold finite non-negative weights")
    return a


def _orient(x: np.ndarray) -> np.ndarray:
    """Fix the arbitrary sign of each column: positive third moment (or largest entry)."""
    out = x.copy()
    for j in range(out.shape[1]):
        col = out[:, j]
        s = np.sum(col**3)
        if abs(s) < 1e-12 * max(1.0, np.sum(np.abs(col) ** 3)):
            s = col[np.argmax(np.abs(col))]
        if s < 0:
            out[:, j] = -col
    return out


def spectral_layout(
    adjacency: sp.spmatrix | np.ndarray, *, tau: float | None = None, rng: RngLike = 0
) -> np.ndarray:
    r"""Two-dimensional regularised spectral embedding of a weighted undirected graph.

    Parameters
    ----------
    adjacency
        Symmetric ``(n, n)`` matrix of non-negative edge weights (CSR or dense).
    tau
        Regularisation added to every degree; default: the mean weighted degree. It keeps small
        components and isolated items from dominating the leading eigenvectors.
    rng
        Seed of the Lanczos start vector (the result does not depend on it beyond solver
        tolerance; fixing it makes the output bit-for-bit reproducible).

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float64 coordinates, each column with mean 0 and standard deviation 1
        (or zeros when the graph has fewer than 3 items).

    Notes
    -----
    With :math:`A_\tau = A + (\tau / n) \mathbf{1}\mathbf{1}^\top` and
    :math:`D_\tau = \operatorname{diag}(d + \tau)`, the operator
    :math:`M = D_\tau^{-1/2} A_\tau D_\tau^{-1/2}` has the trivial leading eigenvector
    :math:`D_\tau^{1/2}\mathbf{1}` (eigenvalue 1). The coordinates are
    :math:`D_\tau^{-1/2} u_2` and :math:`D_\tau^{-1/2} u_3`, the next two eigenvectors mapped
    back to random-walk form (Laplacian eigenmaps). The rank-one term is applied implicitly,
    so the sparse path costs a few dozen sparse products.

    References
    ----------
    Belkin, M. and Niyogi, P. (2003). Laplacian eigenmaps for dimensionality reduction and data
    representation. Neural Computation 15(6).
    Amini, A. A., Chen, A., Bickel, P. J. and Levina, E. (2013). Pseudo-likelihood methods for
    community detection in large sparse networks. Annals of Statistics 41(4).

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.roll(np.eye(8), 1, axis=1)
    >>> xy = spectral_layout(ring + ring.T)
    >>> xy.shape, bool(np.allclose(xy.std(axis=0), 1.0))
    ((8, 2), True)
    """
    a = _check_square(adjacency)
    n = a.shape[0]
    if n < 3:
        return np.zeros((n, 2))
    d = np.asarray(a.sum(axis=1)).ravel()
    t = float(d.mean()) if tau is None else float(tau)
    if not t > 0:
        t = 1.0
    dt = d + t
    s = 1.0 / np.sqrt(dt)
    u1 = np.sqrt(dt) / np.sqrt(dt.sum())
    c = t / n

    def matvec(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).reshape(n, -1)
        y = s[:, None] * x
        out = s[:, None] * (a @ y + c * y.sum(axis=0, keepdims=True))
        out -= u1[:, None] * (u1 @ x)[None, :]
        return out

    if n <= _DENSE_MAX:
        m = matvec(np.eye(n))
        vals, vecs = np.linalg.eigh((m + m.T) / 2)
        top = vecs[:, np.argsort(vals)[::-1][:2]]
    else:
        op = spla.LinearOperator((n, n), matvec=matvec, matmat=matvec, dtype=np.float64)
        v0 = as_generator(rng).standard_normal(n)
        try:
            vals, vecs = spla.eigsh(op, k=2, which="LA", v0=v0, tol=1e-8, maxiter=20 * n)
        except spla.ArpackNoConvergence as exc:
            log.warning("spectral layout: ARPACK did not fully converge; using partial result")
            vals, vecs = exc.eigenvalues, exc.eigenvectors
            if vecs.shape[1] < 2:
                vecs = np.column_stack([vecs, np.zeros((n, 2 - vecs.shape[1]))])
        top = vecs[:, np.argsort(vals)[::-1][:2]]
    xy = s[:, None] * top
    xy -= xy.mean(axis=0)
    sd = xy.std(axis=0)
    xy /= np.where(sd > 0, sd, 1.0)
    return _orient(xy)


def map_layout(
    adjacency: sp.spmatrix,
    membership: np.ndarray,
    *,
    max_items: int = 20_000,
    rng: RngLike = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates for the report's map: exact per item, or via clusters on large runs.

    Parameters
    ----------
    adjacency
        Symmetric ``(n, n)`` weight matrix.
    membership
        Cluster label per item (used only when ``n > max_items``).
    max_items
        Largest number of items laid out (and returned) individually.
    rng
        Seed for the subsample and the within-cluster scatter.

    Returns
    -------
    index, xy
        The items mapped (all of them, in order, when ``n <= max_items``; else a sorted random
        subsample of ``max_items``) and their ``(len(index), 2)`` coordinates.

    Notes
    -----
    Above ``max_items`` the clusters are placed by :func:`spectral_layout` of the quotient graph
    (the summed edge weight between clusters) and each sampled item is scattered uniformly in a
    disc around its cluster, of radius proportional to the square root of the cluster size.
    """
    max_items = check_int("max_items", max_items, low=3)
    a = _check_square(adjacency)
    n = a.shape[0]
    labels = np.asarray(membership)
    if labels.shape != (n,):
        raise ParameterError(f"`membership` must have {n} entries; got shape {labels.shape}")
    if n <= max_items:
        return np.arange(n), spectral_layout(a, rng=rng)
    g = as_generator(rng)
    _, codes = np.unique(labels, return_inverse=True)
    k = int(codes.max()) + 1
    p = sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, k))
    q = (p.T @ a @ p).tocsr()
    q.setdiag(0)
    q.eliminate_zeros()
    centres = spectral_layout(q, rng=rng) if k >= 3 else np.zeros((k, 2))
    sizes = np.bincount(codes, minlength=k).astype(np.float64)
    index = np.sort(g.choice(n, size=max_items, replace=False))
    radius = 0.6 * np.sqrt(sizes / sizes.max())
    r = radius[codes[index]] * np.sqrt(g.random(max_items))
    phi = g.random(max_items) * 2 * np.pi
    xy = centres[codes[index]] + np.column_stack([r * np.cos(phi), r * np.sin(phi)])
    return index, xy
