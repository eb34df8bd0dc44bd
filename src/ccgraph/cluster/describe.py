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
from ccgraph.cluster._common import (
    as_knn_graph,
    best_terms,
    cluster_term_counts,
    strength64,
    unique_inverse,
    uploader_codes,
)
from ccgraph.cluster._tokens import token_codes
from ccgraph.containers import Partition, check_same_ids
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    from ccgraph.containers import KnnGraph, TagSet

__all__ = [
    "CLUSTER_COLUMNS",
    "c_tf_idf",
    "describe_clusters",
    "describe_partitions",
    "term_matrix",
    "tokenize",
]

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


def tokenize(texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Split texts into lower-case words of two or more letters, without stop words.

    Short letter runs of codes (``RP-F-F00999-AC.jpg``, ``_MG_2612``) are not words either
    (:mod:`ccgraph.cluster._tokens`).

    Returns
    -------
    rows, words : numpy.ndarray
        ``words[k]`` occurs in ``texts[rows[k]]`` (one entry per occurrence).

    Examples
    --------
    >>> rows, words = tokenize(["A dog runs on the beach", None, "Dog's toy 2024 _MG_2612"])
    >>> rows.tolist(), words.tolist()
    ([0, 0, 0, 2, 2], ['dog', 'runs', 'beach', 'dog', 'toy'])
    """
    rows, codes, words = token_codes(texts)
    return rows, words[codes].astype(str)


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
    words = rows = codes = None
    if texts is not None:
        rows, codes, words = token_codes(texts)
    if tags is None and texts is None:
        return sp.csr_matrix((n_items, 0)), np.zeros(0, dtype=str)
    m = tags.matrix if tags is not None else None
    if (
        tags is not None
        and m is not None
        and not (m.has_canonical_format and m.nnz == np.count_nonzero(np.asarray(m.data) > 0))
    ):
        return _term_matrix_grouped(n_items, m, tags, rows, codes, words)
    tag_cols = (
        np.unique(m.indices) if m is not None else np.zeros(0, dtype=np.int64)
    )  # tags without items stay out of the vocabulary
    tag_names = np.asarray(tags.tags, dtype=str)[tag_cols] if tags is not None else []
    word_list = words if words is not None else np.zeros(0, dtype=object)
    terms = np.concatenate([np.asarray(tag_names, dtype=object), word_list])
    term_codes, vocab = pd.factorize(pd.Series(terms, dtype=object), sort=True)
    shape = (n_items, len(vocab))
    out = sp.csr_matrix(shape, dtype=np.float64)
    if m is not None:
        col_code = np.zeros(m.shape[1], dtype=np.int64)
        col_code[tag_cols] = term_codes[: len(tag_cols)]
        out = sp.csr_matrix(
            (np.array(m.data, dtype=np.float64), col_code[m.indices], m.indptr.copy()), shape=shape
        )
        out.has_sorted_indices = False
        out.sort_indices()
    if rows is not None:
        w = sp.csr_matrix(
            (np.ones(len(rows)), (rows, term_codes[len(tag_cols) :][codes])), shape=shape
        )
        w.sum_duplicates()
        w.data[:] = 1.0  # a word counts once per item
        # a tag that is also a word of the item counts once, with the larger value
        out = sp.csr_matrix(out.maximum(w)) if m is not None else w
    return out, np.asarray(vocab, dtype=str)


def _term_matrix_grouped(
    n_items: int,
    m: sp.csr_matrix,
    tags: TagSet,
    rows: np.ndarray | None,
    codes: np.ndarray | None,
    words: np.ndarray | None,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`term_matrix` for any tag weights (duplicates or non-positive values)."""
    coo = m.tocoo()
    parts_r = [coo.row.astype(np.int64)]
    parts_t = [np.asarray(tags.tags, dtype=str)[coo.col].astype(object)]
    parts_w = [coo.data.astype(np.float64)]
    if rows is not None and codes is not None and words is not None:
        parts_r.append(rows)
        parts_t.append(words[codes])
        parts_w.append(np.ones(len(rows)))
    r = np.concatenate(parts_r)
    terms = np.concatenate(parts_t)
    w = np.concatenate(parts_w)
    term_codes, vocab = pd.factorize(pd.Series(terms, dtype=object), sort=True)
    frame = pd.DataFrame({"r": r, "c": term_codes, "w": w}).groupby(["r", "c"], as_index=False)
    frame = frame["w"].max()
    out = sp.csr_matrix(
        (frame["w"].to_numpy(), (frame["r"].to_numpy(), frame["c"].to_numpy())),
        shape=(n_items, len(vocab)),
    )
    return out, np.asarray(vocab, dtype=str)


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
    uploaders: Sequence[Any] | None = None,
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
    uploaders
        The uploader (creator) of each item (same order), optional; missing or empty values
        are distinct uploaders. Within a cluster the ``n`` items of one uploader that carry
        a term then count ``1 + ln n`` times their mean value instead of ``n`` times
        (:func:`ccgraph.cluster._common.cluster_term_counts`), so one uploader's tag dump
        repeated on many photos does not fill the cluster's top terms.

    Returns
    -------
    pandas.DataFrame
        Columns ``level, cluster, size, label, top_tags, top_tag_scores, representative_ids,
        density, conductance``, one row per cluster in label order:

        - ``top_tags`` / ``top_tag_scores``: the terms (tags and caption words, one vocabulary)
          with the highest c-TF-IDF (:func:`c_tf_idf`) of the per-cluster term counts
          (sublinear per uploader when ``uploaders`` is given), best first, ties alphabetical; a
          term is left out when a better one is the same word but for case, separators or
          a plural ``s`` / ``es`` (``pistols`` after ``pistol``);
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
    if terms is not None and terms[0].shape[0] != n:
        raise InputError(f"`terms` must have one row per item ({n}); got {terms[0].shape[0]}")
    x, vocab = term_matrix(n, tags=tags, texts=texts) if terms is None else terms
    ups = _uploaders(uploaders, n)
    return _describe(
        g, _edges(g), partition, (x, vocab), n_top=n_top, n_rep=n_rep, level=level, uploaders=ups
    )


def describe_partitions(
    graph: KnnGraph,
    partitions: Sequence[Partition],
    terms: tuple[sp.csr_matrix, np.ndarray],
    *,
    top_tags: int = 10,
    n_representatives: int = 5,
    uploaders: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """:func:`describe_clusters` of several partitions of one graph (``level`` = position).

    Equal to concatenating ``describe_clusters(graph, p, terms=terms, level=i, ...)``; the
    edge arrays are built once for all partitions.
    """
    n_top = check_int("top_tags", top_tags, low=1)
    n_rep = check_int("n_representatives", n_representatives, low=1)
    frames = []
    edges = None
    ups = _uploaders(uploaders, terms[0].shape[0])
    for i, part in enumerate(partitions):
        g = as_knn_graph(graph, ids=part.ids, what="describe_partitions(graph, partitions)")
        if terms[0].shape[0] != g.n_items:
            raise InputError(
                f"`terms` must have one row per item ({g.n_items}); got {terms[0].shape[0]}"
            )
        edges = _edges(g) if edges is None else edges
        frames.append(
            _describe(g, edges, part, terms, n_top=n_top, n_rep=n_rep, level=i, uploaders=ups)
        )
    if not frames:
        return pd.DataFrame({c: [] for c in CLUSTER_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _uploaders(uploaders: Sequence[Any] | None, n: int) -> np.ndarray | None:
    """Codes of ``uploaders`` (checked: one per item), or None."""
    if uploaders is None:
        return None
    if len(uploaders) != n:
        raise InputError(f"`uploaders` must hold one value per item ({n}); got {len(uploaders)}")
    return uploader_codes(uploaders, n)


def _edges(g: KnnGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CSR ``indptr``, ``indices``, weights of the stored edges (both ways) and strengths."""
    a = g.adjacency
    return a.indptr, a.indices, a.data, strength64(a)


def _describe(
    g: KnnGraph,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    partition: Partition,
    terms: tuple[sp.csr_matrix, np.ndarray],
    *,
    n_top: int,
    n_rep: int,
    level: int,
    uploaders: np.ndarray | None = None,
) -> pd.DataFrame:
    """The rows of :func:`describe_clusters` (inputs already checked)."""
    labels, codes = unique_inverse(partition.membership)  # dense labels: counted, not sorted
    k = len(labels)
    sizes = np.bincount(codes, minlength=k)

    from ccgraph.cluster._describe_kernels import inner_edges, top_members

    indptr, indices, data, strength = edges
    count_in, weight_in2, inner_strength = inner_edges(
        indptr, indices, data, codes.astype(np.int64, copy=False), k
    )
    edges_in = count_in / 2.0
    pairs = sizes * (sizes - 1) / 2.0
    density = np.divide(edges_in, pairs, out=np.zeros(k), where=pairs > 0)
    vol = np.bincount(codes, weights=strength, minlength=k)
    cut = vol - weight_in2
    denom = np.minimum(vol, vol.sum() - vol)
    conductance = np.divide(cut, denom, out=np.full(k, np.nan), where=denom > 0)

    # the n_rep largest inner strengths per cluster; ties keep the earlier row first
    top = top_members(codes.astype(np.int64, copy=False), inner_strength, k, n_rep)
    rep_lists = [g.ids[t[t >= 0]] for t in top]

    x, vocab = terms
    scores = (
        c_tf_idf(cluster_term_counts(codes, k, x, uploaders))
        if x.shape[1]
        else sp.csr_matrix((k, 0))
    )
    top_terms, top_scores = best_terms(scores, vocab, n_top)
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
    return frame  # its columns are CLUSTER_COLUMNS, in order
