"""Cluster metrics: agreement with known classes and tag coherence within clusters."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator
from ccgraph.exceptions import InputError

__all__ = ["cluster_agreement", "tag_coherence"]


def cluster_agreement(membership: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """NMI (arithmetic), adjusted Rand index and purity of a clustering against classes.

    Items whose class is negative (unknown) are left out.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    m = np.asarray(membership).ravel()
    c = np.asarray(classes).ravel()
    if m.shape != c.shape:
        raise InputError(f"`membership` has {m.size} entries but `classes` has {c.size}")
    keep = c >= 0
    m, c = m[keep], c[keep]
    _, mi = np.unique(m, return_inverse=True)
    _, ci = np.unique(c, return_inverse=True)
    table = sp.coo_matrix((np.ones(len(mi)), (mi, ci))).tocsr()
    purity = float(table.max(axis=1).toarray().sum() / max(len(mi), 1))
    return {
        "nmi": float(normalized_mutual_info_score(c, m)),
        "ari": float(adjusted_rand_score(c, m)),
        "purity": purity,
        "n": len(m),
    }


def tag_coherence(
    membership: np.ndarray, tags: sp.spmatrix, *, rng: RngLike = None
) -> dict[str, float]:
    r"""Mean cosine similarity of tag vectors between members of the same cluster.

    Parameters
    ----------
    membership
        Cluster of each item.
    tags
        ``[n, T]`` tag matrix; untagged items are ignored.
    rng
        Seeds the shuffled-membership reference.

    Returns
    -------
    dict
        ``coherence`` (pair-weighted mean within-cluster cosine), ``shuffled`` (the same for a
        random permutation of the membership, i.e. what cluster sizes alone give) and ``lift``
        (their ratio).

    Notes
    -----
    With unit tag vectors :math:`u_i` and :math:`s_c = \sum_{i \in c} u_i`, the sum of cosines
    over ordered pairs in cluster :math:`c` is :math:`\lVert s_c \rVert^2 - n_c`, so the
    statistic is :math:`\sum_c (\lVert s_c\rVert^2 - n_c) / \sum_c n_c (n_c - 1)`.
    """
    m = np.asarray(membership).ravel()
    t = sp.csr_matrix(tags, dtype=np.float64)
    if t.shape[0] != m.size:
        raise InputError(f"`tags` has {t.shape[0]} rows but `membership` has {m.size}")
    tagged = np.diff(t.indptr) > 0
    norms = np.sqrt(np.asarray(t.multiply(t).sum(axis=1)).ravel())
    u = sp.diags(np.where(tagged, 1.0 / np.where(tagged, norms, 1.0), 0.0)) @ t
    u = u[tagged]

    def stat(labels: np.ndarray) -> float:
        if labels.size == 0:  # no tagged item: nothing to compare
            return float("nan")
        _, inv = np.unique(labels, return_inverse=True)
        onehot = sp.csr_matrix(
            (np.ones(len(inv)), (inv, np.arange(len(inv)))), shape=(int(inv.max()) + 1, len(inv))
        )
        s = onehot @ u
        sizes = np.bincount(inv).astype(np.float64)
        pairs = (sizes * (sizes - 1)).sum()
        if pairs == 0:
            return float("nan")
        return float((s.multiply(s).sum() - sizes.sum()) / pairs)

    labels = m[tagged]
    coh = stat(labels)
    shuffled = stat(as_generator(rng).permutation(labels))
    return {"coherence": coh, "shuffled": shuffled, "lift": coh / shuffled if shuffled else np.nan}
