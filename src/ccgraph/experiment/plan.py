"""Plan a cluster-substitution experiment: an alternate from the same cluster for each result.

For every row of a search result list (query, position, id) the plan names an *alternate*: an item
of the same cluster that the treatment arm shows instead. Rows without a usable alternate are kept,
marked ``skipped`` with the reason, so the plan accounts for every impression.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._random import RngLike, as_generator
from ccgraph._validation import check_choice
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.experiment._search import closest_lists, cluster_lists, walk

__all__ = ["PLAN_COLUMNS", "REASONS", "RULES", "plan_substitutions"]

logger = logging.getLogger(__name__)

RULES = ("random", "closest", "least_exposed")
PLAN_COLUMNS = (
    "query",
    "position",
    "id",
    "alternate_id",
    "cluster",
    "rule",
    "skipped",
    "reason",
    "score",
    "hops",
)
#: Why a row has no alternate, in the order the checks run.
REASONS = {
    "unknown id": "the id is not in the items table",
    "no cluster": "the item has no cluster label",
    "singleton cluster": "the item is alone in its cluster",
    "only duplicates in cluster": "every other cluster member is in the item's duplicate group",
    "filtered": "no non-duplicate cluster member passes the filters",
    "no eligible alternate": "every passing non-duplicate member is in the query's results "
    "or a duplicate of one",
    "alternates used at other positions": "the remaining candidates were chosen for other "
    "positions of the same query",
    "no graph neighbour in cluster": "(closest) no eligible item within two hops in the graph",
}


def plan_substitutions(
    items: pd.DataFrame,
    results: pd.DataFrame,
    *,
    rule: str = "random",
    graph: Any = None,
    exposure: pd.Series | None = None,
    filters: Mapping[str, Any] | None = None,
    cluster_column: str = "cluster",
    rng: RngLike = None,
) -> pd.DataFrame:
    """Choose an alternate from the same cluster for each row of a result list.

    Parameters
    ----------
    items
        Items of a run: ``id``, the cluster column, optionally ``duplicate_group`` (null = no
        duplicates) and any columns the filters name (e.g. ``license``, ``provider`` merged
        from the catalog, ``cluster_strength``).
    results
        Result lists: ``query``, ``position`` (non-negative integer), ``id``; one row per
        (query, position).
    rule
        ``"random"``: uniform over the eligible candidates. ``"closest"``: the eligible direct
        graph neighbour with the highest edge weight, else the two-hop neighbour with the
        highest ``(A^2)_ij = sum_k w_ik w_kj``; within the cluster. ``"least_exposed"``: the
        eligible candidate with the fewest impressions in ``exposure`` (ids absent from it count
        0). Ties are broken uniformly at random.
    graph
        For ``"closest"``: a :class:`~ccgraph.containers.KnnGraph`, a ``(csr, ids)`` pair, or a
        CSR whose rows follow ``items`` order.
    exposure
        For ``"least_exposed"``: impressions per id (a Series indexed by id).
    filters
        Conditions on the alternate. ``{"license": ["by", "cc0"]}`` keeps listed values,
        a scalar means equality, ``"min_<col>"`` / ``"max_<col>"`` are inclusive bounds on a
        numeric column (``min_confidence`` means ``min_cluster_strength`` when there is no
        ``confidence`` column). Missing values fail every filter.
    cluster_column
        The cluster level to substitute within (``cluster`` or ``cluster_l0`` ...).
    rng
        Seed or Generator for the random choices.

    Returns
    -------
    pandas.DataFrame
        In ``results`` order: ``query, position, id, alternate_id, cluster, rule, skipped,
        reason, score, hops``. ``score`` is the edge weight (``hops == 1``) or two-hop score
        (``hops == 2``) for ``closest`` and the alternate's impressions for ``least_exposed``.
        ``reason`` is one of :data:`REASONS` for skipped rows, else null.

    Notes
    -----
    An alternate ``j`` for row ``(q, p, i)`` satisfies: ``cluster(j) == cluster(i)``; ``j`` passes
    the filters; ``dup(j)`` is neither ``dup(i)`` nor the duplicate group of any item in query
    ``q``'s results (so ``j != i`` and ``j`` is not already shown); and ``dup(j)`` differs from
    the alternates chosen for the query's earlier positions. An item without a duplicate group
    forms its own group. Each query's rows choose in increasing position, each taking the
    best-ranked eligible candidate under the rule (ties uniformly at random), so the plan equals
    the sequential one; rows of different queries are processed together (vectorised).

    Examples
    --------
    >>> items = pd.DataFrame({"id": list("abcde"), "cluster": [0, 0, 0, 1, 1],
    ...                       "duplicate_group": [None, None, None, 7, 7]})
    >>> results = pd.DataFrame({"query": ["q", "q", "q"], "position": [0, 1, 2],
    ...                         "id": ["a", "d", "z"]})
    >>> plan = plan_substitutions(items, results, rng=0)
    >>> plan["alternate_id"].isin(["b", "c"]).tolist()[0], plan["reason"].tolist()[1:]
    (True, ['only duplicates in cluster', 'unknown id'])
    """
    check_choice("rule", rule, RULES)
    gen = as_generator(rng)
    table = _encode_items(items, cluster_column)
    passing = _filter_mask(items, filters or {})
    rows = _encode_results(results, table["index"])
    code, cl, dup, n_dup = rows["code"], table["cluster"], table["dup"], table["n_dup"]
    known = code >= 0
    rcl = np.where(known, cl[np.maximum(code, 0)], -1)
    rdup = np.where(known, dup[np.maximum(code, 0)], -1)
    q = rows["query"]

    n_clusters = table["n_clusters"]
    size_all = np.bincount(cl[cl >= 0], minlength=n_clusters)
    size_pass = np.bincount(cl[(cl >= 0) & passing], minlength=n_clusters)
    cd_all = _pair_counts(cl, dup, n_dup, np.ones(len(cl), dtype=bool))
    cd_pass = _pair_counts(cl, dup, n_dup, passing)
    row_key = np.where(rcl >= 0, rcl.astype(np.int64) * n_dup + rdup, -1)
    blocked = _query_blocked(q, rdup, cd_pass, n_dup, rcl)

    reason = np.full(len(code), None, dtype=object)
    checks = [
        ("unknown id", ~known),
        ("no cluster", rcl < 0),
        ("singleton cluster", _at(size_all, rcl) == 1),
        ("only duplicates in cluster", _at(size_all, rcl) - _lookup(cd_all, row_key) == 0),
        ("filtered", _at(size_pass, rcl) - _lookup(cd_pass, row_key) == 0),
        ("no eligible alternate", _at(size_pass, rcl) - blocked == 0),
    ]
    for name, hit in checks:
        reason[pd.isna(reason) & hit] = name
    todo = np.flatnonzero(pd.isna(reason))
    todo = todo[np.lexsort((rows["position"][todo], q[todo]))]  # priority: query, position

    excluded = np.unique(q[known].astype(np.int64) * n_dup + rdup[known])
    if rule == "closest":
        adjacency = _graph_adjacency(graph, table["ids"])
        owners, row_owner = np.unique(code[todo], return_inverse=True)
        lists = closest_lists(adjacency, owners, cl, passing)
        fail = "no graph neighbour in cluster"
    else:
        value = None
        if rule == "least_exposed":
            value = _exposure(exposure, table["ids"])
        elif exposure is not None:
            logger.info("`exposure` is only used by rule='least_exposed'; ignored")
        lists = cluster_lists(cl, passing, n_clusters, value)
        row_owner = rcl[todo]
        fail = "alternates used at other positions"
    pos = walk(lists, row_owner, q[todo], dup, excluded, n_dup, gen)
    found = pos >= 0
    reason[todo[~found]] = fail

    alt = np.full(len(code), None, dtype=object)
    alt[todo[found]] = table["ids"][lists.cand[pos[found]]]
    score = np.full(len(code), np.nan)
    hops = pd.array(np.full(len(code), pd.NA), dtype="Int8")
    if rule != "random":
        score[todo[found]] = lists.score[pos[found]]
    if rule == "closest":
        hops[todo[found]] = lists.hops[pos[found]]
    cluster_vals = items[cluster_column].to_numpy(dtype=object)
    out = pd.DataFrame(
        {
            "query": results["query"].to_numpy(),
            "position": results["position"].to_numpy(),
            "id": results["id"].astype(str).to_numpy(),
            "alternate_id": alt,
            "cluster": np.where(known, cluster_vals[np.maximum(code, 0)], None),
            "rule": rule,
            "skipped": ~pd.isna(reason),
            "reason": reason,
            "score": score,
            "hops": hops,
        }
    )
    logger.info("planned %d of %d rows (%s)", int(found.sum()), len(out), rule)
    return out


def _encode_items(items: pd.DataFrame, cluster_column: str) -> dict[str, Any]:
    if not isinstance(items, pd.DataFrame):
        raise InputError(f"`items` must be a pandas DataFrame; got {type(items).__name__}")
    for col in ("id", cluster_column):
        if col not in items.columns:
            levels = [str(c) for c in items.columns if str(c).startswith("cluster")]
            raise InputError(
                f"`items` is missing column {col!r}"
                + (f"; cluster columns present: {', '.join(levels)}" if levels else "")
            )
    ids = items["id"].astype(str).to_numpy()
    index = pd.Index(ids)
    if not index.is_unique:
        dup_ids = index[index.duplicated()].unique()[:3].tolist()
        raise InputError(f"`items` column 'id' must be unique; repeated: {dup_ids}")
    cl, cl_names = pd.factorize(items[cluster_column])
    if "duplicate_group" in items.columns:
        dcodes, dnames = pd.factorize(items["duplicate_group"])
        lone = dcodes < 0
        dcodes = dcodes.astype(np.int64)
        dcodes[lone] = len(dnames) + np.arange(int(lone.sum()))
    else:
        dcodes = np.arange(len(ids), dtype=np.int64)
    return {
        "ids": ids,
        "index": index,
        "cluster": cl.astype(np.int64),
        "n_clusters": len(cl_names),
        "dup": dcodes,
        "n_dup": int(dcodes.max(initial=-1)) + 1,
    }


def _encode_results(results: pd.DataFrame, index: pd.Index) -> dict[str, np.ndarray]:
    if not isinstance(results, pd.DataFrame):
        raise InputError(f"`results` must be a pandas DataFrame; got {type(results).__name__}")
    for col in ("query", "position", "id"):
        if col not in results.columns:
            raise InputError(f"`results` is missing column {col!r}; expected query, position, id")
        na = results[col].isna().to_numpy()
        if na.any():
            raise InputError(
                f"`results` column {col!r} has a missing value at row {int(np.flatnonzero(na)[0])}"
            )
    pos = pd.to_numeric(results["position"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(pos) | (pos < 0) | (pos != np.floor(pos))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"`results` column 'position' must hold non-negative integers; row "
            f"{row} has {_plain(results['position'].iloc[row])!r}"
        )
    qcodes, _ = pd.factorize(results["query"])
    order = np.lexsort((pos, qcodes))
    same = (qcodes[order][1:] == qcodes[order][:-1]) & (pos[order][1:] == pos[order][:-1])
    if same.any():
        row = int(order[1:][same].min())
        raise InputError(
            f"`results` has two rows for query {results['query'].iloc[row]!r} at "
            f"position {int(pos[row])} (row {row})"
        )
    code = index.get_indexer(results["id"].astype(str).to_numpy()).astype(np.int64)
    return {"code": code, "query": qcodes.astype(np.int64), "position": pos}


def _filter_mask(items: pd.DataFrame, filters: Mapping[str, Any]) -> np.ndarray:
    mask = np.ones(len(items), dtype=bool)
    if not isinstance(filters, Mapping):
        raise ParameterError(f"`filters` must be a mapping; got {type(filters).__name__}")
    for key, value in filters.items():
        bound = key[:4] if key[:4] in ("min_", "max_") else None
        col = key[4:] if bound else key
        if col == "confidence" and col not in items.columns:
            col = "cluster_strength"
        if col not in items.columns:
            raise ParameterError(
                f"filter {key!r} names column {col!r}, which `items` lacks; "
                f"columns: {', '.join(map(str, items.columns))}"
            )
        series = items[col]
        if bound:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ParameterError(f"filter {key!r} needs a number; got {value!r}")
            vals = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                ok = vals >= value if bound == "min_" else vals <= value
            mask &= ok & ~np.isnan(vals)
        elif isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
            mask &= series.isin(list(value)).to_numpy() & series.notna().to_numpy()
        else:
            mask &= (series == value).fillna(False).to_numpy(dtype=bool)
    return mask


def _pair_counts(cl: np.ndarray, dup: np.ndarray, n_dup: int, sel: np.ndarray) -> pd.Series:
    """Count selected items per (cluster, duplicate group) key ``cluster * n_dup + dup``."""
    keep = sel & (cl >= 0)
    keys, counts = np.unique(cl[keep].astype(np.int64) * n_dup + dup[keep], return_counts=True)
    return pd.Series(counts, index=keys)


def _lookup(counts: pd.Series, keys: np.ndarray) -> np.ndarray:
    return counts.reindex(keys).fillna(0).to_numpy(dtype=np.int64)


def _at(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    padded = np.append(values, -1)  # index -1 (no cluster) reads the sentinel
    return padded[np.where(idx >= 0, idx, len(values))]


def _query_blocked(
    q: np.ndarray, rdup: np.ndarray, cd_pass: pd.Series, n_dup: int, rcl: np.ndarray
) -> np.ndarray:
    """Per row: passing members of its cluster whose duplicate group the query already shows."""
    known = rdup >= 0
    qd = np.unique(q[known].astype(np.int64) * n_dup + rdup[known])
    qd_q, qd_d = qd // n_dup, qd % n_dup
    keys = cd_pass.index.to_numpy(dtype=np.int64)
    by_d = np.argsort(keys % n_dup, kind="stable")
    cd_c, cd_d, cd_n = keys[by_d] // n_dup, keys[by_d] % n_dup, cd_pass.to_numpy()[by_d]
    lo = np.searchsorted(cd_d, qd_d, side="left")
    hi = np.searchsorted(cd_d, qd_d, side="right")
    reps = hi - lo
    idx = np.repeat(lo, reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
    n_cl = int(max(rcl.max(initial=-1), cd_c.max(initial=-1))) + 1
    qc = np.repeat(qd_q, reps) * n_cl + cd_c[idx]
    uniq, inv = np.unique(qc, return_inverse=True)
    if len(uniq) == 0:
        return np.zeros(len(q), dtype=np.int64)
    sums = np.bincount(inv, weights=cd_n[idx])
    want = q.astype(np.int64) * n_cl + rcl
    at = np.minimum(np.searchsorted(uniq, want), len(uniq) - 1)
    hit = (rcl >= 0) & (uniq[at] == want)
    return np.where(hit, sums[at], 0).astype(np.int64)


def _graph_adjacency(graph: Any, ids: np.ndarray) -> sp.csr_matrix:
    """Re-index the graph to ``items`` order (nodes absent from items dropped)."""
    if graph is None:
        raise ParameterError("rule='closest' needs `graph` (a KnnGraph, (csr, ids) or a CSR)")
    if hasattr(graph, "adjacency") and hasattr(graph, "ids"):
        adj, gids = graph.adjacency, np.asarray(graph.ids).astype(str)
    elif isinstance(graph, tuple) and len(graph) == 2:
        adj, gids = graph[0], np.asarray(graph[1]).astype(str)
    else:
        adj, gids = graph, ids
    if not sp.issparse(adj) or adj.shape[0] != adj.shape[1] or adj.shape[0] != len(gids):
        raise InputError(
            f"`graph` must be a square sparse matrix with one id per row; got "
            f"{type(adj).__name__} of shape {getattr(adj, 'shape', None)} and "
            f"{len(gids)} ids"
        )
    coo = sp.coo_matrix(adj)
    where = pd.Index(ids).get_indexer(gids)
    r, c = where[coo.row], where[coo.col]
    ok = (r >= 0) & (c >= 0)
    return sp.csr_matrix(
        (coo.data[ok].astype(np.float64), (r[ok], c[ok])), shape=(len(ids), len(ids))
    )


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (messages show ``-1``, not ``np.int64(-1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _exposure(exposure: pd.Series | None, ids: np.ndarray) -> np.ndarray:
    if exposure is None:
        raise ParameterError("rule='least_exposed' needs `exposure` (impressions per id)")
    if not isinstance(exposure, pd.Series):
        raise ParameterError(
            f"`exposure` must be a pandas Series indexed by id; got {type(exposure).__name__}"
        )
    vals = pd.to_numeric(exposure, errors="coerce")
    bad = vals.isna() | (vals < 0)
    if bad.any():
        raise InputError(
            f"`exposure` must hold non-negative numbers; id {bad.idxmax()!r} has "
            f"{_plain(exposure[bad].iloc[0])!r}"
        )
    vals.index = vals.index.astype(str)
    vals = vals.groupby(level=0).sum()
    return vals.reindex(ids).fillna(0.0).to_numpy(dtype=np.float64)
