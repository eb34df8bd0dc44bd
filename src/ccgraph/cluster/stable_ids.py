"""Keep cluster IDs stable across reruns by optimal matching on the contingency table."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from ccgraph._validation import check_float, check_int
from ccgraph.cluster._common import check_membership, unique_inverse
from ccgraph.containers import Partition
from ccgraph.exceptions import InputError

__all__ = ["match_labels", "stabilize", "stabilize_aligned", "warm_start"]

logger = logging.getLogger(__name__)


def match_labels(
    new_membership: Any,
    old_membership: Any,
    *,
    min_overlap: float = 0.1,
    next_id: int | None = None,
) -> tuple[np.ndarray, float, dict[int, int]]:
    """Renumber new clusters to the old IDs they overlap most.

    Parameters
    ----------
    new_membership
        Cluster label of each item in the new run (non-negative ints).
    old_membership
        The previous label of the same items, in the same order; ``-1`` marks items that were
        not in the previous run (they take part in no match and in no churn count).
    min_overlap
        A new cluster ``N`` may inherit old ID ``O`` only if their Jaccard index
        ``|N & O| / |N | O|`` (over items present in both runs) is at least this, in [0, 1].
    next_id
        Smallest ID a genuinely new cluster may get; the default is one above the largest old
        ID. Pass the previous run's ``params["next_id"]`` so retired IDs are never reused.

    Returns
    -------
    membership : numpy.ndarray
        The new membership expressed in the final IDs (int64).
    churn : float
        Share of items present in both runs whose cluster ID changed (NaN if none overlap).
    mapping : dict
        ``{new label: final ID}`` for every new label.

    Notes
    -----
    With the sparse contingency table ``C[n, o] = |N_n & O_o|``, the matching maximises
    ``sum C[n, o]`` over matched pairs, which is exactly the number of items that keep their
    ID, so it minimises churn. Only overlapping pairs that pass ``min_overlap`` are candidate
    edges; each new cluster also gets a private "unmatched" column, so a full matching always
    exists and scipy's sparse LAPJVsp solver (:func:`min_weight_full_bipartite_matching`) runs
    on ``O(nnz(C) + n_new)`` entries rather than a dense ``n_new x n_old`` table. Unmatched
    new clusters get fresh IDs ``next_id, next_id + 1, ...`` in the order of their labels.

    References
    ----------
    .. [1] Kuhn, H. W. (1955). The Hungarian method for the assignment problem. Naval Research
       Logistics Quarterly 2, 83-97.

    Examples
    --------
    >>> mem, churn, mapping = match_labels([0, 0, 1, 1, 2], [7, 7, 3, 3, 3])
    >>> mem.tolist(), churn, mapping
    ([7, 7, 3, 3, 8], 0.2, {0: 7, 1: 3, 2: 8})
    """
    new = check_membership("new_membership", new_membership, len(np.asarray(new_membership)))
    old = np.asarray(old_membership)
    if old.shape != new.shape:
        raise InputError(
            f"`old_membership` must have one label per item ({new.shape}); got {old.shape}"
        )
    old = old.astype(np.int64)
    if (old < -1).any():
        raise InputError("`old_membership` labels must be >= 0, or -1 for new items")
    threshold = check_float("min_overlap", min_overlap, low=0.0, high=1.0)
    present = old >= 0
    old_max = int(old[present].max()) if present.any() else -1
    start = old_max + 1 if next_id is None else max(old_max + 1, check_int("next_id", next_id))
    if new.size == 0:
        return new, float("nan"), {}

    new_labels, new_codes = unique_inverse(new)
    old_labels, old_codes = unique_inverse(old[present])
    n_new, n_old = len(new_labels), len(old_labels)

    mapping_codes = np.full(n_new, -1, dtype=np.int64)
    if n_old:
        c_row, c_col, c_data = _contingency(new_codes[present], old_codes, n_new, n_old)
        size_new = np.bincount(new_codes[present], minlength=n_new)
        size_old = np.bincount(old_codes, minlength=n_old)
        jaccard = c_data / (size_new[c_row] + size_old[c_col] - c_data)
        keep = jaccard >= threshold
        rows, cols, overlap = c_row[keep], c_col[keep], c_data[keep]
        if len(rows):
            mapping_codes = _max_overlap_matching(rows, cols, overlap, n_new, n_old)

    mapping: dict[int, int] = {}
    fresh = start
    for code, label in enumerate(new_labels.tolist()):
        if mapping_codes[code] >= 0:
            mapping[int(label)] = int(old_labels[mapping_codes[code]])
        else:
            mapping[int(label)] = fresh
            fresh += 1
    final_of_code = np.array([mapping[int(x)] for x in new_labels.tolist()], dtype=np.int64)
    out = final_of_code[new_codes]
    churn = float(np.mean(out[present] != old[present])) if present.any() else float("nan")
    return out, churn, mapping


def _contingency(
    a: np.ndarray, b: np.ndarray, n_a: int, n_b: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nonzero cells of the ``n_a x n_b`` contingency table of codes ``a`` and ``b``.

    Row-major (the order of a canonical CSR table), counts as float64.
    """
    if n_a * n_b <= 4 * len(a) + 2**20:  # a dense count is cheaper than building a CSR
        counts = np.bincount(a * n_b + b, minlength=n_a * n_b)
        cells = np.flatnonzero(counts)
        return cells // n_b, cells % n_b, counts[cells].astype(np.float64)
    cont = sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(n_a, n_b))
    cont.sum_duplicates()
    coo = cont.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data


def _max_overlap_matching(
    rows: np.ndarray, cols: np.ndarray, overlap: np.ndarray, n_new: int, n_old: int
) -> np.ndarray:
    """Old code matched to each new code (-1: none), maximising the summed overlap."""
    big = float(overlap.max()) + 1.0
    # cost big - overlap (> 0) for real pairs, big for a row's private dummy column: minimising
    # the total cost of a full row matching maximises the overlap of the real pairs chosen.
    r = np.concatenate([rows, np.arange(n_new)])
    c = np.concatenate([cols, n_old + np.arange(n_new)])
    w = np.concatenate([big - overlap, np.full(n_new, big)])
    cost = sp.csr_matrix((w, (r, c)), shape=(n_new, n_old + n_new))
    row_ind, col_ind = min_weight_full_bipartite_matching(cost)
    out = np.full(n_new, -1, dtype=np.int64)
    real = col_ind < n_old
    out[row_ind[real]] = col_ind[real]
    return out


def stabilize(
    new: Partition,
    old_membership: pd.Series,
    *,
    min_overlap: float = 0.1,
    next_id: int | None = None,
) -> Partition:
    """Give ``new``'s clusters the IDs of a previous run where they match.

    Parameters
    ----------
    new
        This run's partition.
    old_membership
        Previous cluster ID per item, indexed by item id (e.g. the ``cluster`` column of the old
        ``items.parquet`` indexed by ``id``). Items missing from it are new items; old items
        missing from ``new`` are ignored.
    min_overlap, next_id
        As in :func:`match_labels`; ``next_id`` defaults to the old run's largest ID + 1.

    Returns
    -------
    Partition
        Same clusters with stable IDs (no longer ordered by size); ``params`` adds ``churn``,
        ``n_matched``, ``n_fresh``, ``n_new_items`` and ``next_id`` (to pass to the next rerun).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> p = Partition(np.array([0, 0, 1, 1]), ["a", "b", "c", "d"])
    >>> old = pd.Series([5, 5, 9], index=["a", "b", "c"])
    >>> s = stabilize(p, old)
    >>> s.membership.tolist(), s.params["churn"], s.params["n_new_items"]
    ([5, 5, 9, 9], 0.0, 1)
    """
    values = _validated_old(old_membership)
    old = values.reindex(pd.Index(new.ids)).fillna(-1).to_numpy(np.int64)
    old_max = int(values.max()) if len(values) else -1
    floor = old_max + 1 if next_id is None else max(old_max + 1, check_int("next_id", next_id))
    return stabilize_aligned(new, old, min_overlap=min_overlap, next_id=floor)


def stabilize_aligned(
    new: Partition, old: np.ndarray, *, min_overlap: float = 0.1, next_id: int | None = None
) -> Partition:
    """:func:`stabilize` with the previous IDs already aligned to ``new.ids`` (``-1``: new item).

    For callers that hold the positions of the old items (an update), so no id lookup is
    needed.

    Examples
    --------
    >>> p = Partition(np.array([0, 0, 1, 1]), ["a", "b", "c", "d"])
    >>> stabilize_aligned(p, np.array([5, 5, 9, -1])).membership.tolist()
    [5, 5, 9, 9]
    """
    old = np.asarray(old, dtype=np.int64)
    old_max = int(old.max()) if len(old) else -1
    floor = old_max + 1 if next_id is None else max(old_max + 1, check_int("next_id", next_id))
    mem, churn, mapping = match_labels(new.membership, old, min_overlap=min_overlap, next_id=floor)
    old_ids = set(unique_inverse(old[old >= 0])[0].tolist())
    n_matched = sum(1 for v in mapping.values() if v in old_ids)
    params = {
        **dict(new.params),
        "stable_ids": True,
        "churn": churn,
        "min_overlap": float(min_overlap),
        "n_matched": n_matched,
        "n_fresh": len(mapping) - n_matched,
        "n_new_items": int(np.sum(old < 0)),
        "next_id": max(floor, int(mem.max()) + 1 if mem.size else floor),
    }
    logger.info(
        "stable IDs: %d clusters kept their ID, %d new; churn %.3f",
        n_matched,
        params["n_fresh"],
        churn,
    )
    return Partition(mem, new.ids, new.quality, params)


def warm_start(ids: Any, old_membership: pd.Series) -> np.ndarray:
    """Return a rerun's initial membership: old cluster per item, singletons for new items.

    Passing it as ``leiden(..., initial_membership=warm_start(graph.ids, old))`` and then
    :func:`stabilize` keeps far more IDs than a cold start when the graph's clusters are
    ambiguous: Leiden improves the old partition locally instead of wandering to another
    optimum of similar quality (see ``docs/benchmarks.md``, cluster section).

    Parameters
    ----------
    ids
        Item ids of the new run, in row order.
    old_membership
        Previous cluster ID per item, indexed by item id.

    Returns
    -------
    numpy.ndarray
        int64 labels: the old ID where known, else a fresh label per new item (above the old
        maximum).

    Examples
    --------
    >>> import pandas as pd
    >>> warm_start(["a", "b", "c"], pd.Series([4, 4], index=["a", "c"])).tolist()
    [4, 5, 4]
    """
    old = _validated_old(old_membership)
    ids_arr = np.asarray(ids, dtype=str)
    aligned = old.reindex(pd.Index(ids_arr)).to_numpy(np.float64)
    missing = np.isnan(aligned)
    start = int(old.max()) + 1 if len(old) else 0
    out = np.where(missing, 0, aligned).astype(np.int64)
    out[missing] = start + np.arange(int(missing.sum()))
    return out


def _validated_old(old_membership: Any) -> pd.Series:
    """Return the previous IDs as int64 with a string index, or raise naming the problem."""
    if not isinstance(old_membership, pd.Series):
        raise InputError(
            "`old_membership` must be a pandas Series of cluster IDs indexed by item id; "
            f"got {type(old_membership).__name__}"
        )
    if old_membership.index.has_duplicates:
        dup = old_membership.index[old_membership.index.duplicated()][:3].tolist()
        raise InputError(f"`old_membership` has repeated ids: {dup}")
    values = pd.to_numeric(old_membership, errors="coerce")
    bad = values.isna() | (values < 0) | (values != values.round())
    if bad.any():
        first = old_membership.index[bad.to_numpy()][0]
        raise InputError(
            f"`old_membership` must hold non-negative integer IDs; got "
            f"{old_membership.loc[first]!r} for id {first!r}"
        )
    out = values.astype(np.int64)
    out.index = out.index.astype(str)
    return out
