"""Nearest stored items of new vectors: exact, or pruned by the run's own clusters.

The stored embeddings of a modality (memory-mapped) are searched either exactly (one matrix
product over all of them) or, for large runs, only within the clusters whose centroids are
closest to the query: the run's finest cluster level acts as the coarse quantiser of an
inverted-file index, so no extra index has to be trained or stored.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from ccgraph._validation import check_choice, check_int
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    from ccgraph.query.persist import StoredEmbeddings

__all__ = ["EXACT_MAX_N", "METHODS", "MIN_WEIGHT", "VectorSearch"]

#: Smallest neighbour weight (as the graph's smallest edge weight).
MIN_WEIGHT = 1e-6
#: ``method="auto"`` searches exactly up to this many stored vectors, else by clusters.
EXACT_MAX_N = 20_000
#: Queries scored together in one exact matrix product (bounds the ``[n, block]`` buffer).
QUERY_BLOCK = 64
METHODS = ("auto", "exact", "clusters")


class VectorSearch:
    """``k`` nearest stored items of query vectors, with their similarities.

    Parameters
    ----------
    stored
        One modality's stored vectors and the item rows they cover.
    metric
        ``"cosine"``, ``"euclidean"`` or ``"hamming"`` (packed codes).
    partition
        Cluster label of every item of the run (its finest level), for ``method="clusters"``.
    min_candidates
        Pruned search: probe the closest clusters until they hold at least this many items.
    min_probes
        Pruned search: probe at least this many clusters.

    Notes
    -----
    Similarity is the cosine for ``cosine``, ``1 - hamming / bits`` for codes, and
    ``exp(-(d / sigma)^2)`` for ``euclidean`` with ``sigma`` the query's distance to its
    ``ceil(k / 2)``-th neighbour; all are floored at :data:`MIN_WEIGHT`.

    The pruned search scores the query against each cluster's centroid (mean of its members'
    vectors; normalised for cosine) and searches exactly within the best clusters. Its
    recall against the exact search is measured in ``benchmarks/query.py``.

    References
    ----------
    .. [1] J. Sivic, A. Zisserman, "Video Google: a text retrieval approach to object matching
       in videos", ICCV 2003 (the inverted-file index).
    """

    def __init__(
        self,
        stored: StoredEmbeddings,
        *,
        metric: str,
        partition: np.ndarray | None = None,
        min_candidates: int = 2048,
        min_probes: int = 8,
    ) -> None:
        self.stored = stored
        self.metric = metric
        self.partition = partition
        self.min_candidates = check_int("min_candidates", min_candidates, low=1)
        self.min_probes = check_int("min_probes", min_probes, low=1)
        self._norms: np.ndarray | None = None
        self._positions: np.ndarray | None = None
        self._ivf: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._nn: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._lists: tuple[np.ndarray, np.ndarray] | None = None
        normalize = bool(stored.params.get("normalize", True))
        self._unit = metric == "cosine" and normalize and stored.kind == "dense"

    @property
    def n(self) -> int:
        """Number of stored vectors."""
        return int(self.stored.vectors.shape[0])

    def norms(self) -> np.ndarray:
        """L2 norm of every stored vector (one pass, cached)."""
        if self._norms is None:
            self._norms = np.linalg.norm(np.asarray(self.stored.vectors, dtype=np.float32), axis=1)
        return self._norms

    def positions(self, rows: np.ndarray, n_items: int) -> np.ndarray:
        """Stored positions of the item ``rows`` that have a vector."""
        if self._positions is None:
            pos = np.full(n_items, -1, dtype=np.int64)
            pos[self.stored.rows] = np.arange(len(self.stored.rows))
            self._positions = pos
        p = self._positions[rows]
        return np.unique(p[p >= 0])

    def _score(self, data: np.ndarray, q: np.ndarray, norms: np.ndarray | None) -> np.ndarray:
        """``[len(data), len(q)]`` scores, larger is closer."""
        if self.metric == "hamming":
            return -np.stack(
                [np.bitwise_count(np.bitwise_xor(data, row)).sum(axis=1) for row in q], axis=1
            ).astype(np.float64)
        if len(q) == 1:
            # one query: a plain single-threaded loop; a threaded BLAS gemv on a busy machine
            # waits for its threads (measured 0.3 ms vs 68 ms for 4k x 384 under load)
            s = np.einsum("ij,j->i", data, q[0]).astype(np.float64)[:, None]
        else:
            with _blas_threads(len(data) * len(q) * data.shape[1]):
                s = np.asarray(data @ q.T, dtype=np.float64)
        if self.metric == "cosine" and norms is not None:
            s /= np.maximum(norms, 1e-30)[:, None]
        elif self.metric == "euclidean":
            assert norms is not None
            sq = norms.astype(np.float64) ** 2
            s = -np.sqrt(np.maximum(sq[:, None] + (q.astype(np.float64) ** 2).sum(1) - 2 * s, 0))
        return s

    def _index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Centroids, their norms, members sorted by cluster and the cluster pointer."""
        if self._ivf is None:
            import scipy.sparse as sp

            assert self.partition is not None
            labels = self.partition[self.stored.rows]
            uniq, inv = np.unique(labels, return_inverse=True)
            one_hot = sp.csr_matrix(
                (np.ones(self.n, dtype=np.float32), (inv, np.arange(self.n))),
                shape=(len(uniq), self.n),
            )
            sums = np.asarray(one_hot @ np.asarray(self.stored.vectors, dtype=np.float32))
            counts = np.bincount(inv, minlength=len(uniq)).astype(np.float32)
            cent = (sums / counts[:, None]).astype(np.float32)
            if self.metric == "cosine":
                cent /= np.maximum(np.linalg.norm(cent, axis=1), 1e-30)[:, None]
            order = np.argsort(inv, kind="stable")
            ptr = np.concatenate([[0], np.cumsum(counts.astype(np.int64))])
            self._ivf = (cent, np.linalg.norm(cent, axis=1), order, ptr)
        return self._ivf

    def search(
        self,
        queries: np.ndarray,
        *,
        k: int,
        exclude: np.ndarray | None = None,
        n_items: int,
        method: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Item rows ``[m, k]`` and similarities ``[m, k]`` of each query's neighbours.

        ``exclude`` item rows are never returned. Rows are sorted by similarity, ties by the
        lower stored position.
        """
        skip = self.positions(exclude, n_items) if exclude is not None and len(exclude) else None
        pos, raw = self.search_positions(queries, k=k, skip=skip, method=method)
        return self.stored.rows[pos], self.similarity(raw, pos.shape[1])

    def search_positions(
        self,
        queries: np.ndarray,
        *,
        k: int,
        skip: np.ndarray | None = None,
        method: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored positions ``[m, k']`` and raw scores (larger is closer), ``k' <= k``."""
        check_choice("method", method, METHODS)
        k = min(k, self.n - (0 if skip is None else len(skip)))
        if k < 1:
            raise InputError(f"the run's {self.stored.modality} embeddings hold no other item")
        if method == "auto":
            method = "exact" if self.n <= EXACT_MAX_N or self.metric == "hamming" else "clusters"
        if method == "clusters" and self.partition is None:
            method = "exact"
        norms = None if self._unit or self.metric == "hamming" else self.norms()
        idx = np.empty((len(queries), k), dtype=np.int64)
        val = np.empty((len(queries), k), dtype=np.float64)
        if method == "exact":
            for start in range(0, len(queries), QUERY_BLOCK):
                q = queries[start : start + QUERY_BLOCK]
                score = self._score(self.stored.vectors, q, norms)
                if skip is not None:
                    score[skip] = -np.inf
                for j in range(score.shape[1]):
                    idx[start + j], val[start + j] = _top(np.arange(self.n), score[:, j], k)
        else:
            cent, cnorm, members, ptr = self._index()
            cscore = self._score(cent, queries, None if self.metric == "cosine" else cnorm)
            for start in range(0, len(queries), QUERY_BLOCK):
                # one product over the union of the block's candidates (queries of one
                # neighbourhood share most of them)
                stop = min(len(queries), start + QUERY_BLOCK)
                parts = [
                    self._candidates(cscore[:, j], members, ptr, k) for j in range(start, stop)
                ]
                cand = np.unique(np.concatenate(parts))
                if skip is not None:
                    cand = cand[~np.isin(cand, skip)]
                if len(cand) < k:  # too few left after exclusion: search everything
                    cand = np.setdiff1d(np.arange(self.n), [] if skip is None else skip)
                data = np.asarray(self.stored.vectors[cand])
                nrm = None if norms is None else norms[cand]
                score = self._score(data, queries[start:stop], nrm)
                for j in range(stop - start):
                    idx[start + j], val[start + j] = _top(cand, score[:, j], k)
        return idx, val

    def use_knn_lists(self, rows: np.ndarray, indices: np.ndarray, distances: np.ndarray) -> None:
        """Take each item's ``k``-th score from the kNN lists the run's graph was built from.

        ``rows`` (item rows), ``indices`` (``[n_g, k]`` positions into ``rows``, -1 unfilled)
        and ``distances`` as a run keeps them (``knn_<modality>_*``). Items the lists do not
        cover, or whose listed neighbours include a skipped item, are searched instead.
        """
        k = int(indices.shape[1])
        pos = np.full(int(rows.max(initial=-1)) + 1, -1, dtype=np.int64)
        pos[self.stored.rows[self.stored.rows < len(pos)]] = np.flatnonzero(
            self.stored.rows < len(pos)
        )
        at = pos[rows]  # stored position of each listed item (-1: no stored vector)
        ok = at >= 0
        nb = np.where(indices >= 0, at[np.maximum(indices, 0)], -1)
        d = np.asarray(distances, dtype=np.float64)[:, k - 1]
        raw = 1.0 - d if self.metric == "cosine" else -d
        neighbours = np.full((self.n, k), -1, dtype=np.int64)
        kth = np.full(self.n, np.nan)
        neighbours[at[ok]] = nb[ok]
        kth[at[ok]] = np.where(np.isfinite(raw[ok]), raw[ok], -np.inf)
        self._lists = (neighbours, kth)

    def kth_scores(
        self, positions: np.ndarray, k: int, *, skip: np.ndarray | None = None
    ) -> np.ndarray:
        """Raw score of each stored item's ``k``-th nearest other stored item.

        ``skip`` positions count as removed from the index. Taken from the run's kNN lists
        when given (:meth:`use_knn_lists`); otherwise each item's ``k + 1`` nearest are
        searched once and cached, so later calls cost a lookup.
        """
        out = np.full(len(positions), -np.inf)
        if self.n - 1 < k:
            return out  # fewer stored items than k: every neighbour is within anyone's k
        todo = np.ones(len(positions), dtype=bool)
        if self._lists is not None and self._lists[0].shape[1] == k:
            listed, kth = self._lists
            p = np.asarray(positions, dtype=np.int64)
            todo = np.isnan(kth[p])
            if skip is not None and len(skip):
                todo |= np.isin(listed[p], skip).any(axis=1)
            out[~todo] = kth[p[~todo]]
            if not todo.any():
                return out
        rest = self._searched_kth(np.asarray(positions)[todo], k, skip)
        out[todo] = rest
        return out

    def _searched_kth(self, positions: np.ndarray, k: int, skip: np.ndarray | None) -> np.ndarray:
        """:meth:`kth_scores` by searching (each item's ``k + 1`` nearest, cached)."""
        out = np.full(len(positions), -np.inf)
        if self._nn is None or self._nn[0].shape[1] != k + 1:
            self._nn = (
                np.zeros((self.n, k + 1), dtype=np.int32),
                np.zeros((self.n, k + 1)),
                np.zeros(self.n, dtype=bool),
            )
        nn_pos, nn_raw, known = self._nn
        missing = np.unique(positions)
        missing = missing[~known[missing]]
        if len(missing):
            q = np.asarray(self.stored.vectors[missing])
            pos, raw = self.search_positions(q, k=k + 2)
            nn_pos[missing], nn_raw[missing] = -1, -np.inf
            for j, p in enumerate(missing):
                own = pos[j] != p
                m = min(k + 1, int(own.sum()))
                nn_pos[p, :m], nn_raw[p, :m] = pos[j][own][:m], raw[j][own][:m]
            known[missing] = True
        for i, p in enumerate(positions):
            near, score = nn_pos[p], nn_raw[p]
            if skip is not None and len(skip):
                keep = ~np.isin(near, skip) & (near >= 0)
                near, score = near[keep], score[keep]
            if len(score) < k:  # more than one removed item among them: search again
                drop = np.union1d([] if skip is None else skip, [p]).astype(np.int64)
                q = np.asarray(self.stored.vectors[int(p) : int(p) + 1])
                _, score = self.search_positions(q, k=k, skip=drop)
                score = score[0]
            out[i] = score[k - 1]
        return out

    def graph_edges(
        self,
        pos: np.ndarray,
        raw: np.ndarray,
        *,
        k: int,
        min_degree: int,
        skip: np.ndarray | None = None,
    ) -> np.ndarray:
        """Which neighbours the run's graph rule would link to the query (bool ``[m, k']``).

        The mutual-kNN rule: the query is at least as close to neighbour ``j`` as ``j``'s
        ``k``-th nearest stored item; plus repair: the query's ``min_degree`` nearest.
        """
        kth = self.kth_scores(pos.ravel(), k, skip=skip).reshape(pos.shape)
        mutual = raw >= kth - 1e-6 * np.maximum(1.0, np.abs(kth))
        return mutual | (np.arange(pos.shape[1]) < min_degree)[None, :]

    def _candidates(
        self, cscore: np.ndarray, members: np.ndarray, ptr: np.ndarray, k: int
    ) -> np.ndarray:
        """Stored positions in the best clusters: at least ``min_candidates`` and ``k + 1``."""
        order = np.argsort(-cscore, kind="stable")
        sizes = np.diff(ptr)[order]
        need = max(self.min_candidates, 2 * k + 1)
        reach = int(np.searchsorted(np.cumsum(sizes), need)) + 1
        take = order[: max(self.min_probes, reach)]
        return np.concatenate([members[ptr[c] : ptr[c + 1]] for c in take])

    def similarity(self, val: np.ndarray, k: int) -> np.ndarray:
        """Similarities (see the class notes) of raw scores sorted best first."""
        if self.metric == "hamming":
            sim = 1.0 + val / (8.0 * self.stored.dim)
        elif self.metric == "euclidean":
            col = max(1, math.ceil(k / 2)) - 1
            sigma = np.maximum(-val[:, col : col + 1], 1e-12)
            sim = np.exp(-((val / sigma) ** 2))
        else:
            sim = val
        return np.maximum(np.where(np.isfinite(sim), sim, MIN_WEIGHT), MIN_WEIGHT)


#: Products below this many multiply-adds run on one BLAS thread.
SMALL_PRODUCT = 1 << 26


def _blas_threads(size: int) -> AbstractContextManager[object]:
    """One BLAS thread for a small product (threads that wait for a busy CPU cost more)."""
    if size >= SMALL_PRODUCT:
        return nullcontext()
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            _CONTROLLER = False
        else:
            _CONTROLLER = ThreadpoolController()
    if _CONTROLLER is False:
        return nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER: Any = None


def _top(cand: np.ndarray, score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of ``score`` (over positions ``cand``), ties by the lower position."""
    if k < len(score):
        part = np.argpartition(-score, k - 1)[:k]
        kth = score[part].min()
        part = np.flatnonzero(score >= kth)  # every tie of the k-th score, for determinism
    else:
        part = np.arange(len(score))
    order = np.lexsort((cand[part], -score[part]))[:k]
    return cand[part][order], score[part][order]
