"""Describe clusters for people: top terms by c-TF-IDF, representatives, density, conductance.

Produces the rows of ``clusters.parquet``. Everything is computed with sparse indicator
matrices over items and edges; the only Python loop is over clusters, to format their lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._validation import check_int
from ccgraph.cluster._common import as_knn_graph, indicator, strength64
from ccgraph.cluster._stopwords import ENGLISH_STOP_WORDS
from ccgraph.containers import Partition, check_same_ids
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    from ccgraph.containers import KnnGraph, TagSet

__all__ = ["CLUSTER_COLUMNS", "c_tf_idf", "describe_clusters", "term_matrix", "tokenize"]

CLUSTER_COLUMNS = (
    "level",
    "cluster",
    "size",
    "label",
    "top_tags",
    "top_tag_scores",
    "representative_ids",
    "density",
    "conductance",
)
_TOKEN = r"[^\W\d_]{2,}"


def tokenize(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Split texts into lower-case words of two or more letters, without English stop words.

    Returns
    -------
    rows, words : numpy.ndarray
        ``words[k]`` occurs in ``texts[rows[k]]`` (one entry per occurrence).

    Examples
    --------
    >>> rows, words = tokenize(["A dog runs on the beach", None, "Dog's toy 2024"])
    >>> rows.tolist(), words.tolist()
    ([0, 0, 0, 2, 2], ['dog', 'runs', 'beach', 'dog', 'toy'])
    """
    s = pd.Series(list(texts), dtype=object).fillna("").astype(str).str.lower()
    tokens = s.str.findall(_TOKEN).explode().dropna()
    tokens = tokens[~tokens.isin(ENGLISH_STOP_WORDS)]
    return tokens.index.to_numpy(np.int64), tokens.to_numpy(dtype=str)


def term_matrix(
    n_items: int,
    *,
    tags: TagSet | None = None,
    texts: Sequence[str | None] | None = None,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Items x terms matrix over tags and caption words, and the sorted vocabulary.

    A tag counts with its weight; a word counts 1 per item however often it is repeated;
    a tag that is also a word of the same item counts once (the larger value).
    """
    parts_r, parts_t, parts_w = [], [], []
    if tags is not None:
        coo = tags.matrix.tocoo()
        parts_r.append(coo.row.astype(np.int64))
        parts_t.append(np.asarray(tags.tags, dtype=str)[coo.col])
        parts_w.append(coo.data.astype(np.float64))
    if texts is not None:
        rows, words = tokenize(texts)
        parts_r.append(rows)
        parts_t.append(words)
        parts_w.append(np.ones(len(rows)))
    if not parts_r:
        return sp.csr_matrix((n_items, 0)), np.zeros(0, dtype=str)
    r = np.concatenate(parts_r)
    terms = np.concatenate([t.astype(object) for t in parts_t])
    w = np.concatenate(parts_w)
    codes, vocab = pd.factorize(pd.Series(terms, dtype=object), sort=True)
    frame = pd.DataFrame({"r": r, "c": codes, "w": w}).groupby(["r", "c"], as_index=False)["w"]
    frame = frame.max()
    m = sp.csr_matrix(
        (frame["w"].to_numpy(), (frame["r"].to_numpy(), frame["c"].to_numpy())),
        shape=(n_items, len(vocab)),
    )
    return m, np.asarray(vocab, dtype=str)


def c_tf_idf(class_term_counts: sp.spmatrix) -> sp.csr_matrix:
    r"""Class-based TF-IDF of a clusters x terms count matrix (BERTopic's c-TF-IDF).

    Notes
    -----
    .. math:: W_{t,c} = \frac{n_{t,c}}{\sum_{t'} n_{t',c}}\,
              \log\Big(1 + \frac{A}{f_t}\Big)

    where ``n_{t,c}`` is the count of term ``t`` in cluster ``c``, ``f_t = sum_c n_{t,c}`` and
    ``A`` the average number of term occurrences per cluster. BERTopic truncates ``A`` to an
    integer; it is kept as a float here. Clusters without terms get an empty row.

    References
    ----------
    .. [1] Grootendorst, M. (2022). BERTopic: Neural topic modeling with a class-based TF-IDF
       procedure. arXiv:2203.05794.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> w = c_tf_idf(sp.csr_matrix(np.array([[2.0, 0.0], [1.0, 1.0]])))
    >>> np.round(w.toarray(), 4).tolist()
    [[0.5108, 0.0], [0.2554, 0.5493]]
    """
    counts = sp.csr_matrix(class_term_counts, dtype=np.float64)
    counts.eliminate_zeros()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    freq = np.asarray(counts.sum(axis=0)).ravel()
    avg = float(totals.mean()) if len(totals) else 0.0
    idf = np.log1p(np.divide(avg, freq, out=np.zeros_like(freq), where=freq > 0))
    inv_total = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    out = sp.diags(inv_total) @ counts @ sp.diags(idf)
    return sp.csr_matrix(out)


def describe_clusters(
    graph: KnnGraph | Any,
    partition: Partition,
    *,
    tags: TagSet | None = None,
    texts: Sequence[str | None] | None = None,
    top_tags: int = 10,
    n_representatives: int = 5,
    level: int = 0,
    terms: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> pd.DataFrame:
    r"""One row per cluster with the columns of ``clusters.parquet``.

    Parameters
    ----------
    graph
        The graph the partition was computed on (``KnnGraph`` or sparse adjacency).
    partition
        The clusters (any non-negative labels, e.g. stable IDs).
    tags
        Observed tags of the items (same ids, same order), optional.
    texts
        A caption / title per item (same order), optional; tokenised into words.
    top_tags
        Number of top terms kept per cluster.
    n_representatives
        Number of representative item ids per cluster.
    level
        Value of the ``level`` column (0 = coarsest level).
    terms
        ``term_matrix(n_items, tags=tags, texts=texts)`` computed once by the caller (e.g. for
        several levels of the same items); ``tags`` and ``texts`` are then not read.

    Returns
    -------
    pandas.DataFrame
        Columns ``level, cluster, size, label, top_tags, top_tag_scores, representative_ids,
        density, conductance``, one row per cluster in label order:

        - ``top_tags`` / ``top_tag_scores``: the terms (tags and caption words, one vocabulary)
          with the highest c-TF-IDF (:func:`c_tf_idf`), best first, ties alphabetical;
        - ``label``: the first three top terms joined by ``", "`` (``"cluster <id>"`` if none);
        - ``representative_ids``: the items with the largest weighted degree inside the cluster
          (ties: earlier row first);
        - ``density``: internal edges / ``n (n - 1) / 2``, unweighted, as ``networkx.density``
          of the induced subgraph (0 for one item);
        - ``conductance``: weighted ``cut(C) / min(vol(C), vol(V \ C))`` as
          ``networkx.conductance``; NaN when that minimum is 0 (an isolated cluster without
          edges or a cluster holding the whole graph's volume).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from ccgraph.containers import Partition
    >>> a = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    >>> p = Partition(np.array([0, 0, 1]), ["a", "b", "c"])
    >>> d = describe_clusters(a, p, texts=["red car", "red bus", "blue sky"])
    >>> d[["cluster", "size", "label", "density"]].to_dict("records")[0]
    {'cluster': 0, 'size': 2, 'label': 'red, bus, car', 'density': 1.0}
    """
    g = as_knn_graph(graph, ids=partition.ids, what="describe_clusters(graph, partition)")
    n_top = check_int("top_tags", top_tags, low=1)
    n_rep = check_int("n_representatives", n_representatives, low=1)
    level = check_int("level", level, low=0)
    if tags is not None:
        check_same_ids(g.ids, tags.ids, what="describe_clusters(graph, tags)")
    if texts is not None and len(texts) != g.n_items:
        raise InputError(f"`texts` must hold one text per item ({g.n_items}); got {len(texts)}")
    n = g.n_items
    labels, codes = np.unique(partition.membership, return_inverse=True)
    codes = codes.ravel()
    k = len(labels)
    sizes = np.bincount(codes, minlength=k)

    coo = g.adjacency.tocoo()
    same = codes[coo.row] == codes[coo.col]
    edges_in = np.bincount(codes[coo.row[same]], minlength=k) / 2.0
    pairs = sizes * (sizes - 1) / 2.0
    density = np.divide(edges_in, pairs, out=np.zeros(k), where=pairs > 0)
    strength = strength64(g.adjacency)
    vol = np.bincount(codes, weights=strength, minlength=k)
    weight_in2 = np.bincount(codes[coo.row[same]], weights=coo.data[same], minlength=k)
    cut = vol - weight_in2
    denom = np.minimum(vol, vol.sum() - vol)
    conductance = np.divide(cut, denom, out=np.full(k, np.nan), where=denom > 0)

    inner_strength = np.bincount(coo.row[same], weights=coo.data[same], minlength=n)
    order = np.lexsort((np.arange(n), -inner_strength, codes))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rank = np.arange(n) - starts[codes[order]]
    chosen = order[rank < n_rep]
    rep_lists = np.split(g.ids[chosen], np.cumsum(np.minimum(sizes, n_rep))[:-1])

    if terms is not None and terms[0].shape[0] != n:
        raise InputError(f"`terms` must have one row per item ({n}); got {terms[0].shape[0]}")
    x, vocab = term_matrix(n, tags=tags, texts=texts) if terms is None else terms
    scores = c_tf_idf(indicator(codes, k).T @ x) if x.shape[1] else sp.csr_matrix((k, 0))
    top_terms: list[list[str]] = []
    top_scores: list[list[float]] = []
    for c in range(k):
        lo, hi = scores.indptr[c], scores.indptr[c + 1]
        cols, vals = scores.indices[lo:hi], scores.data[lo:hi]
        best = np.lexsort((cols, -vals))[:n_top]
        top_terms.append(vocab[cols[best]].tolist())
        top_scores.append(vals[best].astype(float).tolist())
    label_text = [
        ", ".join(t[:3]) if t else f"cluster {int(lab)}"
        for t, lab in zip(top_terms, labels, strict=True)
    ]
    frame = pd.DataFrame(
        {
            "level": np.full(k, level, dtype=np.int64),
            "cluster": labels.astype(np.int64),
            "size": sizes.astype(np.int64),
            "label": label_text,
            "top_tags": top_terms,
            "top_tag_scores": top_scores,
            "representative_ids": [r.tolist() for r in rep_lists],
            "density": density,
            "conductance": conductance,
        }
    )
    return frame.loc[:, list(CLUSTER_COLUMNS)]
