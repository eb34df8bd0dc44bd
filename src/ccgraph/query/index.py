"""``open_run``: a finished run, opened read-only, answering per-item questions in milliseconds.

For an item of the run: :meth:`RunIndex.clusters` (its cluster at each level, its membership
strength and the secondary clusters its edges reach), :meth:`RunIndex.related` (local
personalized PageRank from the item) and :meth:`RunIndex.tags` (observed and inferred tags).
For a new item: :meth:`RunIndex.query_vector`, :meth:`RunIndex.query_text` and
:meth:`RunIndex.query_image` answer the same questions from its nearest stored items
(:mod:`ccgraph.query.newitems`). Nothing is ever written into the run directory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ccgraph._validation import check_choice, check_float, check_int
from ccgraph.containers import RunResult
from ccgraph.exceptions import InputError
from ccgraph.query._rank import cluster_answer, related_from_seeds
from ccgraph.query._tables import ClusterInfo, IdLookup, TagTable, group_index, level_matrix
from ccgraph.query.answers import ClusterAnswer, ItemAnswer
from ccgraph.query.persist import StoredEmbeddings, stored_embeddings

__all__ = ["DUPLICATES", "RunIndex", "open_run"]

logger = logging.getLogger(__name__)

#: How ``related`` treats the item's near-duplicate group.
DUPLICATES = ("separate", "exclude", "include")


def open_run(path: str | os.PathLike[str]) -> RunIndex:
    """Open a run directory for queries (read-only; stored embeddings are memory-mapped).

    Parameters
    ----------
    path
        A directory written by :func:`ccgraph.run`. It may be on a read-only file system.

    Returns
    -------
    RunIndex

    Raises
    ------
    InputError
        The directory is missing, incomplete or of another schema version.

    Examples
    --------
    >>> index = open_run(run_dir)  # doctest: +SKIP
    >>> index.related("it0001", n=5)  # doctest: +SKIP
    """
    from ccgraph.io import load_run

    return RunIndex(load_run(path))


class RunIndex:
    """Read-only answers about the items of one run, and about new items.

    Parameters
    ----------
    run
        A loaded run (:func:`ccgraph.load_run`) or the result of :func:`ccgraph.run`.

    Notes
    -----
    Opening builds in-memory lookups (id to row, tag slices per item, duplicate groups);
    the graph is the run's CSR. Each query then costs only its own work: a row of the CSR
    for :meth:`clusters`, one local push for :meth:`related`, a slice for :meth:`tags`.
    """

    def __init__(self, run: RunResult) -> None:
        if not isinstance(run, RunResult):
            raise InputError(f"`run` must be a RunResult; got {type(run).__name__}")
        self.run = run
        self.path: Path | None = run.path
        self.manifest: Mapping[str, Any] = run.manifest
        self.graph = run.graph
        items = run.items
        self.ids = np.asarray(items["id"].astype(str).to_numpy(), dtype=str)
        self.lookup = IdLookup(self.ids, str(run.path) if run.path else "(in memory)")
        self.id_objects = self.ids.astype(object)
        self.levels, self.default_level = level_matrix(items, self.manifest)
        self.cluster_info = ClusterInfo(run.clusters, self.levels)
        self.tag_table = TagTable(run.tags, self.lookup)
        n = len(self.ids)
        group = (
            items["duplicate_group"].to_numpy(np.int64)
            if "duplicate_group" in items.columns
            else np.arange(n, dtype=np.int64)
        )
        self.duplicate_group = group
        self._group_order, self._group_ptr, self._group_ids = group_index(group)
        self.titles = (
            items["title"].astype("string").fillna("").to_numpy(dtype=object)
            if "title" in items.columns
            else None
        )
        adj = self.graph.adjacency
        self._indptr, self._indices, self._data = adj.indptr, adj.indices, adj.data
        self._embeddings: dict[str, StoredEmbeddings] | None = None
        self._search_cache: dict[str, Any] = {}
        self._embedders: dict[str, Any] = {}

    # ----------------------------------------------------------------------------- basics
    @property
    def n_items(self) -> int:
        """Number of items in the run."""
        return len(self.ids)

    @property
    def n_levels(self) -> int:
        """Number of cluster levels (``cluster_l0`` .. )."""
        return int(self.levels.shape[0])

    @property
    def config(self) -> Mapping[str, Any]:
        """The resolved config the run was made with (from the manifest)."""
        return self.manifest.get("config", {}) or {}

    @property
    def embeddings(self) -> dict[str, StoredEmbeddings]:
        """The stored embeddings per modality (memory-mapped; empty for older runs)."""
        if self._embeddings is None:
            self._embeddings = stored_embeddings(self.run)
        return self._embeddings

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.lookup

    def __len__(self) -> int:
        return self.n_items

    def __repr__(self) -> str:
        return f"RunIndex({self.n_items} items, {self.n_levels} levels, path={str(self.path)!r})"

    def position(self, item_id: Any) -> int:
        """Row of ``item_id`` in the run; unknown ids raise :class:`InputError` with close ids."""
        return self.lookup.position(item_id)

    def group_members(self, row: int) -> np.ndarray:
        """Rows of the near-duplicate group of ``row`` (itself included)."""
        slot = int(np.searchsorted(self._group_ids, self.duplicate_group[row]))
        return self._group_order[self._group_ptr[slot] : self._group_ptr[slot + 1]]

    # --------------------------------------------------------------------- known items
    def clusters(self, item_id: Any) -> ClusterAnswer:
        """The item's cluster at each level, its membership strength and secondary clusters.

        Parameters
        ----------
        item_id
            The id of an item of the run.

        Returns
        -------
        ClusterAnswer
            ``levels`` (cluster and strength per level) and ``secondary`` (other clusters with
            their share of the item's edge weight).

        Notes
        -----
        With ``w_ij`` the edge weights of item ``i`` and ``c_j`` the cluster of ``j`` at a
        level, the share of cluster ``C`` is ``s_C = sum_{j: c_j = C} w_ij / sum_j w_ij``.
        The strength is the share of the item's own cluster (the run's ``cluster_strength``
        at the default level); every other cluster with ``s_C > 0`` is a secondary cluster.
        An item without edges has strength 1 and no secondary cluster.
        """
        row = self.position(item_id)
        lo, hi = self._indptr[row], self._indptr[row + 1]
        own = self.levels[:, row]
        return cluster_answer(
            self, str(self.ids[row]), self._indices[lo:hi], self._data[lo:hi], own=own
        )

    def related(
        self,
        item_id: Any,
        n: int = 20,
        *,
        epsilon: float = 1e-4,
        alpha: float = 0.85,
        duplicates: str = "separate",
    ) -> pd.DataFrame:
        """Items related to ``item_id``, ranked by local personalized PageRank from it.

        Parameters
        ----------
        item_id
            The id of an item of the run.
        n
            Number of related items (fewer when the item's neighbourhood is smaller).
        epsilon
            Push threshold of the local PageRank: a node is pushed while its residual is at
            least ``epsilon`` times its weighted degree. Smaller is more exact and slower; the
            L1 error is below ``epsilon`` times the volume of the nodes touched.
        alpha
            Probability of following an edge (``1 - alpha`` restarts at the item).
        duplicates
            The item's near-duplicate group (``duplicate_group``): ``"separate"`` lists its
            members first with ``relation == "duplicate"`` and leaves them out of the ``n``
            related items; ``"exclude"`` leaves them out; ``"include"`` ranks them like any
            other item. With ``"separate"`` and ``"exclude"`` the related items also show one
            member (the best ranked) of every other near-duplicate group, so a series of
            near-copies does not fill the list; ``"include"`` lists every item.

        Returns
        -------
        pandas.DataFrame
            ``id, rank, score, relation, cluster, duplicate_group`` (and ``title``), related
            items by decreasing score; ``rank`` counts within each ``relation``.

        Notes
        -----
        The score is the approximate PageRank ``p`` of Andersen-Chung-Lang push
        (:func:`ccgraph.propagate.local_ppr`), with ``p <= ppr`` entrywise; the item itself is
        never listed.

        References
        ----------
        .. [1] R. Andersen, F. Chung, K. Lang, "Local graph partitioning using PageRank
           vectors", FOCS 2006.
        """
        n, epsilon, alpha = self._check_related(n, epsilon, alpha, duplicates)
        row = self.position(item_id)
        group = self.group_members(row)
        dup_rows = group[group != row]
        return related_from_seeds(
            self,
            np.array([row]),
            np.ones(1),
            n=n,
            epsilon=epsilon,
            alpha=alpha,
            duplicates=duplicates,
            drop=np.array([row]),
            dup_rows=dup_rows,
        )

    def tags(self, item_id: Any) -> pd.DataFrame:
        """The item's observed and inferred tags.

        Returns
        -------
        pandas.DataFrame
            ``tag, source, score, confidence, rank, origin``: observed tags first
            (``confidence`` 1), then inferred tags by rank with their calibrated confidence.
        """
        return self.tag_table.of(self.position(item_id))

    def query(
        self,
        item_id: Any,
        n: int = 20,
        *,
        epsilon: float = 1e-4,
        alpha: float = 0.85,
        duplicates: str = "separate",
    ) -> ItemAnswer:
        """All three answers about an item of the run (see :meth:`clusters`, :meth:`related`)."""
        related = self.related(item_id, n, epsilon=epsilon, alpha=alpha, duplicates=duplicates)
        return ItemAnswer(str(item_id), self.clusters(item_id), related, self.tags(item_id))

    # ----------------------------------------------------------------------- new items
    def query_vector(self, vector: Any, **options: Any) -> ItemAnswer:
        """Answers for a new item given as a precomputed vector of one modality.

        See :func:`ccgraph.query.newitems.query_vectors` for the options (``modality``, ``k``,
        ``n``, ``epsilon``, ``alpha``, ``duplicates``, ``exclude``).
        """
        from ccgraph.query.newitems import query_vectors

        try:
            shape = np.shape(vector)
        except ValueError:  # ragged: query_vectors names it
            shape = ()
        if len(shape) == 2 and shape[0] != 1:
            raise InputError(
                f"`vector` must be one vector [d] (or [1, d]); got shape {shape}: for several "
                "new items use ccgraph.query.newitems.query_vectors or query_batch"
            )
        return query_vectors(self, vector, **options)[0]

    def query_text(self, text: str, **options: Any) -> ItemAnswer:
        """Answers for a new item described by ``text``, embedded with the run's text model."""
        from ccgraph.query.newitems import embed_texts, query_vectors

        if not isinstance(text, str) or not text.strip():
            raise InputError("`text` must be a non-empty string")
        self._check_new_options(options)  # before the (slow) model load
        vec = embed_texts(self, [text])
        return query_vectors(self, vec, modality="text", labels=[text], **options)[0]

    def query_image(self, path: str | os.PathLike[str], **options: Any) -> ItemAnswer:
        """Answers for a new image file, embedded with the run's image embedder."""
        from ccgraph.query.newitems import embed_images, query_vectors

        self._check_new_options(options)  # before the (slow) model load
        vec = embed_images(self, [path])
        return query_vectors(self, vec, modality="image", labels=[str(path)], **options)[0]

    def query_batch(self, queries: Any, **options: Any) -> pd.DataFrame:
        """Answers for many items at once, one row per query (see :mod:`ccgraph.query.batch`)."""
        from ccgraph.query.batch import query_batch

        return query_batch(self, queries, **options)

    # --------------------------------------------------------------------- shared parts
    def _check_related(
        self, n: Any, epsilon: Any, alpha: Any, duplicates: Any
    ) -> tuple[int, float, float]:
        n = check_int("n", n, low=1)
        epsilon = check_float("epsilon", epsilon, low=0.0, high=1.0, low_inclusive=False)
        alpha = check_float(
            "alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
        )
        check_choice("duplicates", duplicates, DUPLICATES)
        return n, epsilon, alpha

    def _check_new_options(self, options: Mapping[str, Any]) -> None:
        """Validate a new item's ``n``, ``epsilon``, ``alpha``, ``duplicates`` and ``k``."""
        self._check_related(
            options.get("n", 20),
            options.get("epsilon", 1e-4),
            options.get("alpha", 0.85),
            options.get("duplicates", "separate"),
        )
        if options.get("k") is not None:
            check_int("k", options["k"], low=1)
