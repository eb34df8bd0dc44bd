"""Frozen result objects that carry data between the pipeline stages.

Each object carries the item ``ids`` (row order is the contract) and the ``params`` that made
it. Arrays are set read-only on construction; nothing here is mutated after it is built.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._array_memo import ArrayMemo
from ccgraph._validation import row_norms
from ccgraph.exceptions import DataQualityWarning, IdMismatchError, InputError, ParameterError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "Catalog",
    "Embeddings",
    "KnnGraph",
    "Partition",
    "Popularity",
    "RunResult",
    "TagScores",
    "TagSet",
    "as_ids",
    "check_same_ids",
]

ITEM_COLUMNS = (
    "id",
    "title",
    "description",
    "provider",
    "source",
    "license",
    "url",
    "image_path",
    "popularity_raw",
    "popularity_metric",
    "created_on",
    "removed",
)
TAG_COLUMNS = ("id", "tag", "tag_raw", "source", "provider", "weight")
REJECT_COLUMNS = ("file", "row", "id", "stage", "reason")


#: Arrays :func:`as_ids` returned: read-only and already checked, so passing one again
#: costs no sort.
_CHECKED: ArrayMemo[bool] = ArrayMemo()


def as_ids(ids: Any, n: int | None = None, *, name: str = "ids") -> np.ndarray:
    """Return ``ids`` as a read-only unicode array, checking length and uniqueness.

    An array this function returned (still read-only) is returned as it is: results pass
    their ids on, and checking 100k ids again costs a sort each time.
    """
    if _CHECKED.get(ids):
        if n is not None and len(ids) != n:
            raise IdMismatchError(f"`{name}` has {len(ids)} entries but the data has {n} rows")
        return ids
    src = np.asarray(ids if ids is not None else np.arange(n or 0))
    arr = src.astype(str)
    if isinstance(ids, (list, tuple)) and src.dtype.kind == "U" and (arr == "nan").any():
        src = np.asarray(ids, dtype=object)  # numpy made ["a", nan] the strings "a", "nan"
    if arr.ndim != 1:
        raise InputError(f"`{name}` must be one-dimensional; got shape {arr.shape}")
    _check_present(src, arr, name)
    if n is not None and len(arr) != n:
        raise IdMismatchError(f"`{name}` has {len(arr)} entries but the data has {n} rows")
    if not _distinct_hashes(arr):  # a repeated hash: sort the strings to be sure
        uniq, counts = np.unique(arr, return_counts=True)
        if len(uniq) != len(arr):
            dup = uniq[counts > 1][:3].tolist()
            raise InputError(f"`{name}` must be unique; repeated: {dup}")
    arr.setflags(write=False)
    _CHECKED.put(arr, True)
    return arr


def _check_present(src: np.ndarray, arr: np.ndarray, name: str) -> None:
    """Refuse missing (None, NaN) or empty ids: as strings they would read ``"None"``, ``""``.

    ``src`` is the array as given, ``arr`` its strings.
    """
    if src.dtype.kind == "O":
        bad = pd.isna(src) | (arr == "")
    elif src.dtype.kind == "f":
        bad = np.isnan(src)
    elif src.dtype.kind in "US":
        bad = arr == ""
    else:
        return
    if bad.any():
        where = np.flatnonzero(bad)
        raise InputError(
            f"`{name}` has {len(where)} missing or empty ids (first at position "
            f"{int(where[0])}: {_plain(src[where[0]])!r}); every item needs a non-empty id"
        )


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for messages: ``-1.0``, not ``np.float64(-1.0)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _distinct_hashes(arr: np.ndarray) -> bool:
    """Whether the fixed-width strings of ``arr`` have pairwise distinct 64-bit hashes.

    Equal strings have equal bytes, hence equal hashes: distinct hashes prove the strings
    distinct. Sorting 64-bit integers costs a fraction of sorting the strings; a repeated
    hash (a repeated string, or rarely a collision) says nothing, and the caller sorts.

    Examples
    --------
    >>> _distinct_hashes(np.array(["a", "bb", "c"])), _distinct_hashes(np.array(["a", "a"]))
    (True, False)
    """
    n = len(arr)
    if n < 2:
        return True
    if arr.dtype.itemsize == 0:
        return False
    word: type[np.unsignedinteger[Any]] = np.uint64 if arr.dtype.itemsize % 8 == 0 else np.uint32
    columns = np.ascontiguousarray(arr).view(word).reshape(n, -1)
    h = np.zeros(n, dtype=np.uint64)
    for j in range(columns.shape[1]):  # FNV-style: multiply, add the next word (mod 2**64)
        h *= np.uint64(0x100000001B3)
        h += columns[:, j]
    h.sort()
    return bool((h[1:] != h[:-1]).all())


def check_same_ids(a: np.ndarray, b: np.ndarray, *, what: str) -> None:
    """Raise :class:`IdMismatchError` unless ``a`` and ``b`` list the same ids in the same order."""
    if a is b:  # results built on one id array pass that very array on
        return
    if len(a) != len(b) or not np.array_equal(a, b):
        raise IdMismatchError(
            f"{what}: the item ids differ (lengths {len(a)} and {len(b)}); "
            "build both results from the same catalog, in the same row order"
        )


def _has_repeats(column: pd.Series) -> bool:
    """``column.duplicated().any()``; an Arrow-backed string column counts its distinct values.

    Arrow's ``unique`` keeps one missing value, as ``duplicated`` counts a second one as a
    repeat, so both give the same answer.
    """
    arr = column.array
    if isinstance(arr, pd.arrays.ArrowStringArray):
        import pyarrow.compute as pc

        return len(pc.unique(arr._pa_array)) != len(arr)
    return bool(column.duplicated().any())


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def freeze_rows(obj: Any, names: Sequence[str]) -> None:
    """Give a frozen result read-only copies of its per-row arrays and checked ``ids``.

    For use in ``__post_init__``: the first of ``names`` sets the row count, every other named
    array must have as many entries (:class:`InputError` naming ``Class.field`` otherwise).
    """
    n = len(getattr(obj, names[0]))
    object.__setattr__(obj, "ids", as_ids(obj.ids, n))
    for name in names:
        arr = np.array(getattr(obj, name), copy=True)
        if len(arr) != n:
            what = f"{type(obj).__name__}.{name}"
            raise InputError(f"{what} has {len(arr)} entries, expected {n}")
        object.__setattr__(obj, name, _readonly(arr))


def _freeze_csr(m: sp.csr_matrix) -> None:
    # Canonical form first: scipy caches the flag and would later try to sort frozen arrays.
    if not m.has_canonical_format:
        m.sum_duplicates()
    for arr in (m.data, m.indices, m.indptr):
        arr.setflags(write=False)


@dataclass(frozen=True, slots=True, eq=False)
class Catalog:
    """Items read from one or more catalog files.

    Attributes
    ----------
    items
        One row per item: ``id`` (unique string) and the columns of ``ITEM_COLUMNS`` that the
        source has (missing text is ``""``, missing numbers are NaN).
    tags
        Long table ``id, tag, tag_raw, source, provider, weight``; ``tag`` is normalised,
        ``tag_raw`` as written, ``source`` is ``user`` or ``machine``, ``weight`` in (0, 1].
    rejects
        Rows that could not be used: ``file, row, id, stage, reason``.
    params
        How the catalog was read (paths, format, hygiene options).
    """

    items: pd.DataFrame
    tags: pd.DataFrame
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "id" not in self.items.columns:
            raise InputError("Catalog.items needs an `id` column")
        if _has_repeats(self.items["id"]):
            dup = self.items.loc[self.items["id"].duplicated(), "id"].head(3).tolist()
            raise InputError(f"Catalog.items has repeated ids: {dup}")

    @property
    def ids(self) -> np.ndarray:
        """Item ids in row order (a fresh read-only array)."""
        return _readonly(self.items["id"].to_numpy(dtype=str))

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, mask: np.ndarray | Sequence[bool]) -> Catalog:
        """Return a new catalog with the items where ``mask`` is true (and their tags)."""
        keep = self.items.loc[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        tags = self.tags[self.tags["id"].isin(set(keep["id"]))].reset_index(drop=True)
        return Catalog(keep, tags, self.rejects, dict(self.params))

    def __repr__(self) -> str:
        return f"Catalog({self.n_items} items, {len(self.tags)} tags, {len(self.rejects)} rejects)"


@dataclass(frozen=True, slots=True, eq=False)
class Embeddings:
    """Item vectors (float32 ``[n, d]``) or packed binary codes (uint8 ``[n, bytes]``).

    ``kind`` is ``"dense"`` or ``"binary"``; binary codes are compared by Hamming distance.
    """

    vectors: np.ndarray
    ids: np.ndarray
    kind: str = "dense"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("dense", "binary"):
            raise ParameterError(f"`kind` must be 'dense' or 'binary'; got {self.kind!r}")
        if self.vectors.ndim != 2:
            raise InputError(f"embeddings must be 2-D [n, d]; got shape {self.vectors.shape}")
        object.__setattr__(self, "ids", as_ids(self.ids, self.vectors.shape[0]))
        if self.vectors.flags.writeable:
            self.vectors.setflags(write=False)

    @classmethod
    def from_array(
        cls,
        vectors: Any,
        ids: Any = None,
        *,
        normalize: bool = True,
        params: Mapping[str, Any] | None = None,
    ) -> Embeddings:
        """Build dense embeddings from an array, validating shape and values.

        Parameters
        ----------
        vectors
            Array-like ``[n, d]`` of finite numbers.
        ids
            Item ids, one per row (default ``"0" .. "n-1"``).
        normalize
            Scale each row to unit L2 norm (rows of zeros are refused).
        params
            Extra parameters to record (e.g. the model that made the vectors).

        Examples
        --------
        >>> import numpy as np
        >>> emb = Embeddings.from_array(np.eye(3), ["a", "b", "c"])
        >>> emb.shape
        (3, 3)
        """
        arr = _as_float32(vectors)
        if arr.ndim != 2:
            raise InputError(f"`vectors` must be 2-D [n, d]; got shape {arr.shape}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise InputError(f"`vectors` is empty (shape {arr.shape}); nothing to embed")
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise InputError(
                f"`vectors` has NaN or infinite values in {int(bad.sum())} rows "
                f"(first rows {rows}); fix or drop them"
            )
        if normalize:
            norms = row_norms(arr)
            zero = norms == 0
            if zero.any():
                rows = np.flatnonzero(zero)[:5].tolist()
                raise InputError(
                    f"`vectors` has {int(zero.sum())} all-zero rows (first rows {rows}); a zero "
                    "vector has no direction for cosine similarity: drop those items"
                )
            arr /= norms[:, None]
        ids_arr = as_ids(ids, arr.shape[0]) if ids is not None else as_ids(np.arange(arr.shape[0]))
        p = {"normalize": normalize, **(params or {})}
        return cls(arr, ids_arr, "dense", p)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_items, dim)``."""
        return (int(self.vectors.shape[0]), int(self.vectors.shape[1]))

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self.vectors.shape[0])

    def take(self, index: np.ndarray) -> Embeddings:
        """Return the rows at ``index`` (integer positions) as new embeddings."""
        return Embeddings(
            np.ascontiguousarray(self.vectors[index]), self.ids[index], self.kind, dict(self.params)
        )

    def align(self, ids: Sequence[str] | np.ndarray) -> Embeddings:
        """Return the rows for ``ids`` in that order; raises if an id is missing."""
        pos = pd.Index(self.ids).get_indexer(np.asarray(ids, dtype=str))
        if (pos < 0).any():
            missing = np.asarray(ids, dtype=str)[pos < 0][:3].tolist()
            raise IdMismatchError(f"{int((pos < 0).sum())} ids have no embedding, e.g. {missing}")
        return self.take(pos)

    def __repr__(self) -> str:
        return f"Embeddings({self.kind}, n={self.shape[0]}, d={self.shape[1]})"


def _as_float32(vectors: Any) -> np.ndarray:
    """A float32 copy of ``vectors``; text, dates or ragged rows are refused naming the dtype."""
    try:
        given = np.asarray(vectors)
    except ValueError as exc:  # ragged nested lists
        raise InputError(
            f"`vectors` must be a 2-D array of numbers [n, d]; its rows differ in length ({exc})"
        ) from exc
    if given.dtype.kind not in "biufO":
        raise InputError(
            f"`vectors` must hold numbers; got dtype {given.dtype} (e.g. "
            f"{given.ravel()[:2].tolist()}): convert the vectors to floats first"
        )
    try:
        return np.array(given, dtype=np.float32, copy=True)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"`vectors` must hold numbers; got dtype {given.dtype} with a value that is not "
            f"one ({exc}): convert the vectors to floats first"
        ) from exc


@dataclass(frozen=True, slots=True, eq=False)
class KnnGraph:
    """A weighted undirected similarity graph: symmetric CSR, zero diagonal, float32 weights."""

    adjacency: sp.csr_matrix
    ids: np.ndarray
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = self.adjacency
        if not sp.isspmatrix_csr(a):
            raise InputError("KnnGraph.adjacency must be a scipy CSR matrix")
        if a.shape[0] != a.shape[1]:
            raise InputError(f"adjacency must be square; got shape {a.shape}")
        object.__setattr__(self, "ids", as_ids(self.ids, a.shape[0]))
        _freeze_csr(a)

    @classmethod
    def from_adjacency(
        cls,
        adjacency: Any,
        ids: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        symmetrize: str = "max",
    ) -> KnnGraph:
        """Build a graph from any square (sparse or dense) non-negative adjacency.

        The matrix is copied, made symmetric (``symmetrize="max"`` keeps the larger of
        ``w_ij`` and ``w_ji``; ``"error"`` refuses an asymmetric input), its diagonal dropped and
        its weights cast to float32.

        Examples
        --------
        >>> import numpy as np
        >>> g = KnnGraph.from_adjacency(np.array([[0, 1], [1, 0]]), ["a", "b"])
        >>> g.n_edges
        1
        """
        m = sp.csr_matrix(adjacency, dtype=np.float32, copy=True)
        if m.shape[0] != m.shape[1]:
            raise InputError(f"`adjacency` must be square; got shape {m.shape}")
        if m.nnz and (not np.isfinite(m.data).all() or (m.data < 0).any()):
            raise InputError("`adjacency` weights must be finite and non-negative")
        m.setdiag(0)
        m.eliminate_zeros()
        asym = abs(m - m.T)
        if asym.nnz and asym.max() > 1e-6:
            if symmetrize == "error":
                raise InputError("`adjacency` is not symmetric")
            m = m.maximum(m.T).tocsr()
        m.sort_indices()
        ids_arr = ids if ids is not None else np.arange(m.shape[0])
        return cls(m, as_ids(ids_arr, m.shape[0]), dict(params or {}))

    @property
    def n_items(self) -> int:
        """Number of nodes."""
        return int(self.adjacency.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return int(self.adjacency.nnz // 2)

    @property
    def degree(self) -> np.ndarray:
        """Number of neighbours of each node."""
        return np.diff(self.adjacency.indptr).astype(np.int64)

    @property
    def strength(self) -> np.ndarray:
        """Weighted degree of each node."""
        return np.asarray(self.adjacency.sum(axis=1)).ravel()

    def __repr__(self) -> str:
        return f"KnnGraph(n={self.n_items}, edges={self.n_edges})"


@dataclass(frozen=True, slots=True, eq=False)
class Partition:
    """A clustering: ``membership[i]`` is item ``i``'s cluster, labels 0.. ordered by size."""

    membership: np.ndarray
    ids: np.ndarray
    quality: float = float("nan")
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = np.asarray(self.membership, dtype=np.int64)
        object.__setattr__(self, "membership", _readonly(m.copy()))
        object.__setattr__(self, "ids", as_ids(self.ids, len(m)))

    @property
    def n_clusters(self) -> int:
        """Number of distinct clusters."""
        m = self.membership
        if m.size and 0 <= m.min() and m.max() < 4 * m.size + 1024:
            return int(np.count_nonzero(np.bincount(m)))  # dense labels: count, no sort
        return int(np.unique(m).size)

    @property
    def sizes(self) -> np.ndarray:
        """Size of each cluster label ``0 .. max``."""
        if self.membership.size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.bincount(self.membership)

    def __repr__(self) -> str:
        return f"Partition(n={len(self.membership)}, clusters={self.n_clusters})"


@dataclass(frozen=True, slots=True, eq=False)
class TagSet:
    """Sparse items x tags seed matrix with weights in (0, 1] and the tag vocabulary."""

    matrix: sp.csr_matrix
    ids: np.ndarray
    tags: np.ndarray
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.matrix
        if m.shape != (len(self.ids), len(self.tags)):
            raise InputError(
                f"TagSet matrix shape {m.shape} does not match {len(self.ids)} ids x "
                f"{len(self.tags)} tags"
            )
        object.__setattr__(self, "ids", as_ids(self.ids, m.shape[0]))
        object.__setattr__(self, "tags", as_ids(self.tags, m.shape[1], name="tags"))
        _freeze_csr(m)

    @classmethod
    def from_frame(
        cls,
        tags_long: pd.DataFrame,
        ids: Sequence[str] | np.ndarray,
        *,
        weight_column: str | None = "weight",
        min_count: int = 1,
    ) -> TagSet:
        """Build a seed matrix from a long table with columns ``id``, ``tag`` (and ``weight``).

        Rows whose id is not in ``ids`` are ignored with a
        :class:`~ccgraph.exceptions.DataQualityWarning` (how many, which); a weight is a
        confidence in ``(0, 1]`` (:class:`~ccgraph.exceptions.InputError` names the row
        otherwise: a weight-0 row seeds nothing, drop it first, as the readers and
        :func:`~ccgraph.propagate.build_seeds` do); a repeated (id, tag) keeps its largest
        weight; tags used by fewer than ``min_count`` items are left out of the vocabulary.

        Examples
        --------
        >>> import pandas as pd
        >>> t = pd.DataFrame({"id": ["a", "b", "b"], "tag": ["x", "x", "y"]})
        >>> ts = TagSet.from_frame(t, ["a", "b", "c"], weight_column=None)
        >>> ts.matrix.toarray().tolist()
        [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
        """
        ids_arr = as_ids(ids)
        for col in ("id", "tag"):
            if col not in tags_long.columns:
                raise InputError(
                    f"the tags table needs a {col!r} column; got {list(tags_long.columns)}"
                )
        null = tags_long["tag"].isna().to_numpy(bool) | tags_long["id"].isna().to_numpy(bool)
        if null.any():
            raise InputError(
                f"the tags table has {int(null.sum())} rows with a null id or tag (first rows "
                f"{np.flatnonzero(null)[:5].tolist()}); drop them"
            )
        pos = _positions_in(ids_arr, tags_long["id"])
        keep = pos >= 0
        if not keep.all():
            _warn_unknown(tags_long["id"][~keep], len(keep))
        rows = pos[keep]
        if weight_column and weight_column in tags_long.columns:
            w = _tag_weights(tags_long[weight_column], weight_column)
            outside = np.flatnonzero((w <= 0) | (w > 1))
            if len(outside):
                first = _plain(tags_long[weight_column].iloc[outside[0]])
                raise InputError(
                    f"the tags table's {weight_column!r} column has {len(outside)} weights "
                    f"outside (0, 1] (first at row {int(outside[0])}: {first!r}); a weight is a "
                    "confidence: drop rows of weight 0 (they seed nothing), rescale the others, "
                    "or pass weight_column=None to weigh every tag 1"
                )
            w = w if keep.all() else w[keep]
        else:
            w = np.ones(len(rows), dtype=np.float32)
        tag = tags_long["tag"] if keep.all() else tags_long["tag"][keep]
        codes, vocab = pd.factorize(tag.astype(str), sort=True)
        r, c, w = _max_per_pair(rows, codes, w, len(vocab))
        counts = np.bincount(c, minlength=len(vocab))
        keep_tags = np.flatnonzero(counts >= max(1, min_count))
        remap = -np.ones(len(vocab), dtype=np.int64)
        remap[keep_tags] = np.arange(len(keep_tags))
        c = remap[c]
        ok = c >= 0
        m = sp.csr_matrix(
            (w[ok], (r[ok], c[ok])),
            shape=(len(ids_arr), len(keep_tags)),
            dtype=np.float32,
        )
        m.sort_indices()
        vocab_arr = np.asarray(vocab, dtype=str)[keep_tags]
        return cls(m, ids_arr, vocab_arr, {"min_count": min_count, "weight_column": weight_column})

    @property
    def n_tags(self) -> int:
        """Vocabulary size."""
        return int(self.matrix.shape[1])

    @property
    def is_tagged(self) -> np.ndarray:
        """Boolean mask of items with at least one seed tag."""
        return np.diff(self.matrix.indptr) > 0

    def to_frame(self) -> pd.DataFrame:
        """Long table ``id, tag, weight``."""
        coo = self.matrix.tocoo()
        return pd.DataFrame(
            {"id": self.ids[coo.row], "tag": self.tags[coo.col], "weight": coo.data}
        )

    def __repr__(self) -> str:
        return f"TagSet({len(self.ids)} items, {self.n_tags} tags, {self.matrix.nnz} seeds)"


def _warn_unknown(unknown: pd.Series, n_rows: int) -> None:
    """Warn that the tag rows of ``unknown`` ids (not among the items) are ignored."""
    names = pd.unique(unknown.astype(str))
    warnings.warn(
        f"{len(unknown)} of {n_rows} tag rows belong to {len(names)} ids that are not among "
        f"the items (e.g. {names[:3].tolist()}) and are ignored; check that the tags and the "
        "items use the same ids",
        DataQualityWarning,
        stacklevel=3,
    )


def _tag_weights(column: pd.Series, name: str) -> np.ndarray:
    """The float32 weights of ``column``; a missing, non-numeric, infinite or negative one raises.

    Examples
    --------
    >>> _tag_weights(pd.Series([0.5, 1]), "weight").tolist()
    [0.5, 1.0]
    """
    w = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(
            f"the tags table's {name!r} column has {len(rows)} weights that are not finite "
            f"numbers >= 0 (first at row {int(rows[0])}: {_plain(column.iloc[rows[0]])!r}); fix or "
            f"drop those rows, or pass weight_column=None to weigh every tag 1"
        )
    return w.astype(np.float32)


def _positions_in(ids: np.ndarray, column: pd.Series) -> np.ndarray:
    """Position in ``ids`` (unique) of each value of ``column`` (``-1``: absent).

    An Arrow-backed string column is looked up with Arrow's hash kernel (``ids``' Arrow copy
    is kept per read-only array), other columns as strings through a pandas index.
    """
    arr = getattr(column.array, "_pa_array", None)
    if isinstance(column.dtype, pd.StringDtype) and arr is not None:
        import pyarrow.compute as pc

        from ccgraph._array_memo import arrow_strings

        found = pc.index_in(arr, value_set=arrow_strings(ids))
        return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return pd.Index(ids).get_indexer(column.astype(str))


def _max_per_pair(
    rows: np.ndarray, cols: np.ndarray, w: np.ndarray, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (row, col) pairs sorted by row then col, each with its largest ``w``."""
    key = rows.astype(np.int64) * max(n_cols, 1) + cols
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, int)
    top = np.maximum.reduceat(w[order], first) if len(key) else w[:0]
    return rows[order][first], cols[order][first].astype(np.int64), top


@dataclass(frozen=True, slots=True, eq=False)
class TagScores:
    """Inferred tags: top-k sparse scores per item with calibrated confidences.

    ``scores`` and ``confidence`` are CSR items x tags matrices with the same sparsity
    pattern; an item's stored entries are its top-k inferred tags (seed tags excluded).
    """

    scores: sp.csr_matrix
    confidence: sp.csr_matrix
    ids: np.ndarray
    tags: np.ndarray
    params: Mapping[str, Any] = field(default_factory=dict)
    converged: bool = True
    n_iter: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", as_ids(self.ids, self.scores.shape[0]))
        object.__setattr__(self, "tags", as_ids(self.tags, self.scores.shape[1], name="tags"))
        if self.confidence.shape != self.scores.shape:
            raise InputError("TagScores: `confidence` and `scores` shapes differ")
        _freeze_csr(self.scores)
        _freeze_csr(self.confidence)

    def to_frame(self) -> pd.DataFrame:
        """Long table ``id, tag, score, confidence, rank`` (rank 1 = best per item)."""
        s = self.scores.tocoo()
        c = self.confidence.tocsr()
        conf = np.asarray(c[s.row, s.col]).ravel() if s.nnz else np.zeros(0, np.float32)
        df = pd.DataFrame(
            {
                "id": self.ids[s.row],
                "tag": self.tags[s.col],
                "score": s.data.astype(np.float32),
                "confidence": conf.astype(np.float32),
                "_row": s.row,
            }
        )
        df = df.sort_values(["_row", "score", "tag"], ascending=[True, False, True], kind="stable")
        df["rank"] = df.groupby("_row").cumcount().astype(np.int64) + 1
        return df.drop(columns="_row").reset_index(drop=True)

    def __repr__(self) -> str:
        return f"TagScores({len(self.ids)} items, {self.scores.nnz} inferred tags)"


#: The values of :attr:`Popularity.source`.
POPULARITY_SOURCES = ("observed", "inferred", "none")


@dataclass(frozen=True, slots=True, eq=False)
class Popularity:
    """Observed and inferred popularity on Openverse's 0..1 scale.

    ``source[i]`` is ``"observed"``, ``"inferred"`` or ``"none"``; ``observed`` keeps the raw
    signal (NaN where absent); ``confidence`` is 1 for observed values.
    """

    value: np.ndarray
    observed: np.ndarray
    source: np.ndarray
    confidence: np.ndarray
    ids: np.ndarray
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        freeze_rows(self, ("value", "observed", "source", "confidence"))

    def __repr__(self) -> str:
        counts = {s: int(np.count_nonzero(self.source == s)) for s in POPULARITY_SOURCES}
        return "Popularity({} items: {} observed, {} inferred, {} none)".format(
            len(self.value), *counts.values()
        )


@dataclass(frozen=True, slots=True, eq=False)
class RunResult:
    """What a run produced: the tables of the run directory plus the graph and the manifest."""

    items: pd.DataFrame
    tags: pd.DataFrame
    clusters: pd.DataFrame
    rejects: pd.DataFrame
    graph: KnnGraph
    manifest: Mapping[str, Any]
    path: Path | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> np.ndarray:
        """Item ids in row order."""
        return self.graph.ids

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"RunResult({len(self.items)} items, {len(self.tags)} tag rows{where})"
