"""Small seeded graphs for the cluster tests (planted partitions, exact kNN, Cora)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp


def planted_partition(
    n_blocks: int = 8,
    block_size: int = 40,
    p_in: float = 0.3,
    p_out: float = 0.01,
    seed: int = 0,
    weighted: bool = False,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Symmetric planted-partition adjacency (no self loops) and the true block of each node."""
    g = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_blocks), block_size)
    n = len(labels)
    prob = np.where(labels[:, None] == labels[None, :], p_in, p_out)
    upper = np.triu(g.random((n, n)) < prob, k=1)
    w = g.uniform(0.5, 1.0, size=(n, n)) if weighted else np.ones((n, n))
    a = np.where(upper, w, 0.0)
    a = a + a.T
    return sp.csr_matrix(a), labels


def exact_knn_graph(x: np.ndarray, k: int) -> sp.csr_matrix:
    """Union-symmetrised exact cosine kNN graph, weights = cosine similarity (clipped > 0)."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = xn @ xn.T
    np.fill_diagonal(sim, -np.inf)
    nbr = np.argpartition(-sim, k, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(x)), k)
    w = np.clip(sim[rows, nbr.ravel()], 1e-3, None)
    a = sp.csr_matrix((w, (rows, nbr.ravel())), shape=(len(x), len(x)))
    return a.maximum(a.T).tocsr()


def load_cora(path: Path) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Cora citation adjacency (symmetrised, unweighted), binary word features, class labels."""
    z = np.load(path, allow_pickle=False)
    adj = sp.csr_matrix(
        (z["adj_data"], z["adj_indices"], z["adj_indptr"]), shape=tuple(z["adj_shape"])
    )
    adj = adj.maximum(adj.T).tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    adj.data[:] = 1.0
    attr = sp.csr_matrix(
        (z["attr_data"], z["attr_indices"], z["attr_indptr"]), shape=tuple(z["attr_shape"])
    )
    return adj, attr, z["labels"].astype(np.int64)


def tfidf_rows(attr: sp.csr_matrix) -> np.ndarray:
    """Dense L2-normalised tf-idf rows (idf = log(n / df) + 1) of a binary bag of words."""
    x = attr.toarray().astype(np.float64)
    df = (x > 0).sum(axis=0)
    idf = np.log(x.shape[0] / np.maximum(df, 1)) + 1.0
    x = x * idf
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
