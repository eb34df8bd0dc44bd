"""Turn stage results into the run-directory tables (DESIGN.md section 3)."""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph import __version__
from ccgraph.containers import Catalog, KnnGraph, Partition, Popularity, TagScores

__all__ = [
    "SCHEMA_VERSION",
    "cluster_strength",
    "items_table",
    "manifest",
    "tags_table",
]

SCHEMA_VERSION = 1
_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "igraph",
    "leidenalg",
    "pynndescent",
    "networkx",
    "pydantic",
    "sentence-transformers",
    "torch",
    "pillow",
    "imagehash",
)
_ITEM_EXTRAS = ("title", "provider", "license", "url", "image_path")


def cluster_strength(adjacency: sp.csr_matrix, membership: np.ndarray) -> np.ndarray:
    """Share of each item's edge weight that stays inside its own cluster (1 if isolated)."""
    if len(membership) == adjacency.shape[0]:  # the sums bincount makes, in its order
        from ccgraph._assemble_kernels import inside_share

        return inside_share(adjacency.indptr, adjacency.indices, adjacency.data, membership)
    rows = np.repeat(np.arange(adjacency.shape[0]), np.diff(adjacency.indptr))
    inside = membership[adjacency.indices] == membership[rows]
    total = np.bincount(rows, weights=adjacency.data, minlength=adjacency.shape[0])
    internal = np.bincount(rows, weights=adjacency.data * inside, minlength=adjacency.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, internal / np.where(total > 0, total, 1), 1.0)
    return out.astype(np.float32)


def items_table(
    catalog: Catalog,
    graph: KnnGraph,
    levels: Sequence[Partition],
    default_level: int,
    duplicate_group: np.ndarray,
    is_canonical: np.ndarray,
    popularity: Popularity | None,
) -> pd.DataFrame:
    """The ``items.parquet`` table, one row per item in graph order."""
    ids = graph.ids
    id_column = _strings(ids)
    items = catalog.items.set_index("id")
    if not _same_strings(catalog.items["id"], id_column):
        items = items.reindex(ids)  # (an update's merged catalog is in graph order already)
    df = pd.DataFrame({"id": id_column})
    default = levels[default_level].membership
    df["cluster"] = default.astype(np.int64)
    for i, part in enumerate(levels):
        df[f"cluster_l{i}"] = part.membership.astype(np.int64)
    df["cluster_strength"] = cluster_strength(graph.adjacency, default)
    df["duplicate_group"] = np.asarray(duplicate_group, dtype=np.int64)
    df["is_canonical"] = np.asarray(is_canonical, dtype=bool)
    n = len(ids)
    if popularity is not None:
        df["popularity_observed"] = np.asarray(popularity.observed, dtype=np.float64)
        df["popularity"] = np.asarray(popularity.value, dtype=np.float64)
        df["popularity_source"] = _strings(popularity.source)
        df["popularity_confidence"] = np.asarray(popularity.confidence, dtype=np.float64)
    else:
        raw = pd.to_numeric(items.get("popularity_raw"), errors="coerce")
        df["popularity_observed"] = (
            raw.to_numpy(np.float64) if raw is not None else np.full(n, np.nan)
        )
        df["popularity"] = np.full(n, np.nan)
        df["popularity_source"] = pd.array(["none"] * n, dtype="string")
        df["popularity_confidence"] = np.full(n, np.nan)
    df["degree"] = graph.degree
    for col in _ITEM_EXTRAS:
        if col in items.columns:
            df[col] = _filled_strings(items[col])
    return df


def _strings(values: np.ndarray) -> pd.arrays.ArrowStringArray:
    """``pd.array(values.astype(str), dtype="string")``, without the detour when all are str.

    A numpy string array is converted by :func:`~ccgraph._array_memo.arrow_strings`, which
    reuses the Arrow copy of read-only ids that an update has already looked up.
    """
    import pyarrow as pa

    from ccgraph._array_memo import arrow_strings

    if values.dtype == object:
        try:
            arr = pa.array(values, type=pa.string(), from_pandas=False)
        except (pa.ArrowException, TypeError):
            arr = None
        if arr is not None and arr.null_count == 0:
            return pd.arrays.ArrowStringArray(arr)
        return pd.array(np.asarray(values).astype(str), dtype="string")
    return pd.arrays.ArrowStringArray(arrow_strings(np.asarray(values)))


def _same_strings(column: pd.Series, ids: pd.arrays.ArrowStringArray) -> bool:
    """Whether ``column``, read as ``str``, lists exactly ``ids`` (compared by Arrow if it can)."""
    import pyarrow as pa

    if len(column) != len(ids):
        return False
    arr = column.array
    if isinstance(arr, pd.arrays.ArrowStringArray) and not column.isna().any():
        mine, theirs = arr._pa_array, ids._pa_array
        return bool(mine.cast(pa.large_string()).equals(theirs.cast(pa.large_string())))
    return bool(np.array_equal(column.to_numpy(dtype=str), ids.to_numpy(dtype=str)))


def _filled_strings(column: pd.Series) -> pd.arrays.ArrowStringArray:
    """``column`` with missing values as ``""``, as a ``string`` array.

    The same values as ``pd.array(column.fillna("").astype(str).to_numpy(), dtype="string")``;
    an Arrow-backed string column is filled by Arrow, without a Python string per value.
    """
    import pyarrow as pa

    arr = column.array
    if isinstance(arr, pd.arrays.ArrowStringArray):
        values = arr._pa_array
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        return pd.arrays.ArrowStringArray(values.fill_null(""))
    return pd.array(column.fillna("").astype(str).to_numpy(), dtype="string")


def tags_table(catalog: Catalog, ids: np.ndarray, inferred: TagScores | None) -> pd.DataFrame:
    """The ``tags.parquet`` table: observed tags first, then inferred ones, per item order.

    Within an item, observed tags are sorted by tag and inferred ones by rank (score
    descending, then tag). Sorting works on integer codes and the string columns are built by
    Arrow ``take``, so ten million inferred tags cost seconds, not minutes.
    """
    return tags_frame(catalog, ids, inferred)[0]


def tags_frame(
    catalog: Catalog, ids: np.ndarray, inferred: TagScores | None
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`tags_table` and the position in ``ids`` of each of its rows' item."""
    import pyarrow as pa

    id_strs = np.asarray(ids, dtype=str)
    index = pd.Index(id_strs)
    obs = catalog.tags
    o_pos = index.get_indexer(obs["id"].astype(str).to_numpy())
    known = o_pos >= 0
    o_pos = o_pos[known]
    o_tag = obs["tag"].astype(str).to_numpy()[known]
    o_score = pd.to_numeric(obs["weight"], errors="coerce").fillna(1.0).to_numpy(np.float32)
    o_score = o_score[known]
    o_origin = obs["source"].astype(str).to_numpy()[known]
    o_raw = obs["tag_raw"].astype(str).to_numpy()[known]
    n_obs = len(o_pos)

    if inferred is not None:
        s = sp.csr_matrix(inferred.scores)
        s.sort_indices()
        c = sp.csr_matrix(inferred.confidence)
        c.sort_indices()
        i_row = np.repeat(np.arange(s.shape[0]), np.diff(s.indptr))
        i_col = s.indices.astype(np.int64)
        same = np.array_equal(s.indptr, c.indptr) and np.array_equal(s.indices, c.indices)
        i_conf = c.data if same else np.asarray(c[i_row, i_col]).ravel()
        i_ids = np.asarray(inferred.ids, dtype=str)
        same_ids = len(i_ids) == len(id_strs) and np.array_equal(i_ids, id_strs)
        i_pos = i_row if same_ids else index.get_indexer(i_ids)[i_row]
        i_tags = np.asarray(inferred.tags, dtype=str)
        i_score = s.data.astype(np.float32)
    else:
        i_row = i_col = i_pos = np.zeros(0, dtype=np.int64)
        i_tags = np.zeros(0, dtype=str)
        i_score = i_conf = np.zeros(0, dtype=np.float32)
    vocab, codes = np.unique(np.concatenate([o_tag, i_tags]), return_inverse=True)
    o_code, i_code = codes[:n_obs], codes[n_obs:][i_col]
    i_rank = _rank_within_rows(i_row, i_score, i_code)

    n_inf = len(i_row)
    pos = np.concatenate([o_pos, i_pos]).astype(np.int64)
    inferred_flag = np.r_[np.zeros(n_obs, np.int8), np.ones(n_inf, np.int8)]
    rank = np.r_[np.zeros(n_obs, np.int64), i_rank]
    code = np.r_[o_code, i_code]
    order = _stable_order(pos, inferred_flag, rank, code)

    def strings(values: np.ndarray, take: np.ndarray, mask: np.ndarray | None = None) -> Any:
        taken = pa.array(values, type=pa.string()).take(pa.array(take, mask=mask))
        return pd.arrays.ArrowStringArray(taken)

    srt_flag = inferred_flag[order]
    obs_idx = np.where(srt_flag == 0, order, 0)
    is_inf = srt_flag == 1
    rank_sorted = rank[order]
    pos_sorted = pos[order]
    frame = pd.DataFrame(
        {
            "id": strings(id_strs, pos_sorted),
            "tag": strings(vocab, code[order]),
            "score": np.r_[o_score, i_score][order],
            "confidence": np.r_[np.ones(n_obs, np.float32), i_conf.astype(np.float32)][order],
            "rank": pd.arrays.IntegerArray(rank_sorted, ~is_inf),
            "source": strings(np.array(["observed", "inferred"]), srt_flag.astype(np.int64)),
            "origin": strings(o_origin, obs_idx, is_inf) if n_obs else _nulls(len(order)),
            "tag_raw": strings(o_raw, obs_idx, is_inf) if n_obs else _nulls(len(order)),
        }
    )
    return frame, pos_sorted


def _rank_within_rows(rows: np.ndarray, score: np.ndarray, code: np.ndarray) -> np.ndarray:
    """1-based rank of each entry within its row (``rows`` ascending): score desc, then code.

    Rows hold few entries (top-k), so they are padded to one width and sorted row-wise.
    """
    m = len(rows)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.searchsorted(rows, rows, side="left")
    slot = np.arange(m) - starts
    n_rows = int(rows.max()) + 1
    width = int(slot.max()) + 1
    neg = np.full((n_rows, width), np.inf)
    cod = np.full((n_rows, width), np.iinfo(np.int64).max, dtype=np.int64)
    neg[rows, slot] = -score.astype(np.float64)
    cod[rows, slot] = code
    order = np.lexsort((cod, neg), axis=1)  # per row: score desc, then code
    rank = np.empty((n_rows, width), dtype=np.int64)
    np.put_along_axis(rank, order, np.arange(1, width + 1)[None, :].repeat(n_rows, 0), axis=1)
    return rank[rows, slot]


def _stable_order(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort`` order of non-negative integer keys (first key most significant).

    When the keys fit in 63 bits together they are packed into one integer and sorted once
    (a stable radix sort, several times faster than a multi-key lexsort).
    """
    widths = [max(1, int(k.max(initial=0)).bit_length()) for k in keys]
    if sum(widths) > 63:
        return np.lexsort(keys[::-1])
    packed = np.zeros(len(keys[0]), dtype=np.int64)
    for k, w in zip(keys, widths, strict=True):
        packed = (packed << w) | k.astype(np.int64)
    return np.argsort(packed, kind="stable")


def _nulls(n: int) -> pd.arrays.ArrowStringArray:
    import pyarrow as pa

    return pd.arrays.ArrowStringArray(pa.nulls(n, type=pa.string()))


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the results (without importing them).

    Read once per process (``importlib.metadata`` scans the installed distributions: tens of
    milliseconds a call).
    """
    return dict(_package_versions())


@functools.cache
def _package_versions() -> tuple[tuple[str, str], ...]:
    out = []
    for name in _PACKAGES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)


def manifest(
    config: Mapping[str, Any],
    *,
    seed: int,
    timings: Mapping[str, float],
    counts: Mapping[str, Any],
    stages: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``manifest.json`` content (``created`` is the only time-dependent field)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ccgraph_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "config": dict(config),
        "packages": package_versions(),
        "timings_s": {k: round(float(v), 4) for k, v in timings.items()},
        "counts": dict(counts),
        "stages": dict(stages),
    }
