"""Vectors computed elsewhere: ``.npy`` with ids, or Parquet with an id column."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ccgraph._validation import row_norms
from ccgraph.containers import Embeddings
from ccgraph.exceptions import InputError

__all__ = ["load_precomputed"]

logger = logging.getLogger(__name__)


def _read_ids_file(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the ids file {path}: {exc}; check `embed.precomputed.ids_path`"
        ) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}: not UTF-8 text at line {line} (byte value 0x{data[exc.start]:02x}); "
            "re-save the ids file as UTF-8"
        ) from None
    lines = [line.strip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    blank = [i + 1 for i, line in enumerate(lines) if not line]
    if blank:
        raise InputError(
            f"{path}: line {blank[0]} is empty ({len(blank)} empty lines); line i must hold the "
            "id of row i of the vectors: remove the empty lines or write the missing ids"
        )
    return lines


def _from_npy(path: Path, ids: Sequence[str] | None, ids_path: str | Path | None) -> tuple:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)  # read once, by the copy below
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(
            f"{path}: not a readable .npy array ({exc}); write it with numpy.save "
            "(a 2-D float array [n_items, dim])"
        ) from exc
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 2-D array [n_items, dim]; got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{path}: expected numbers; got dtype {arr.dtype}")
    if ids_path is not None:
        id_list = _read_ids_file(Path(ids_path))
        source = f"ids file {ids_path}"
    elif ids is not None:
        id_list = [str(i) for i in ids]
        source = "the given ids"
    else:
        raise InputError(
            f"{path}: a .npy file has no ids; pass `ids` (the row order) or `ids_path` "
            "(a text file with one id a line)"
        )
    if len(id_list) != arr.shape[0]:
        raise InputError(
            f"{path}: {arr.shape[0]} rows but {source} lists {len(id_list)} ids; "
            "they must match one to one (without an ids file, row i is taken to be the "
            "catalog's item i): give `ids_path` (config `embed.precomputed.ids_path`), a text "
            "file with the id of each row, one a line"
        )
    return arr, np.asarray(id_list, dtype=str)


def _from_parquet(path: Path, id_column: str, vector_column: str) -> tuple:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    if id_column not in frame.columns:
        raise InputError(
            f"{path}: no id column {id_column!r}; columns are {list(frame.columns)}: name the "
            "id column with `id_column` (config `embed.precomputed.id_column`)"
        )
    missing = frame[id_column].isna().to_numpy(bool)
    if missing.any():
        rows = np.flatnonzero(missing)[:5].tolist()
        raise InputError(
            f"{path}: column {id_column!r} is null in {int(missing.sum())} rows, e.g. rows "
            f"{rows}; give every vector an id (or drop those rows)"
        )
    ids = frame[id_column].astype(str).to_numpy()
    if vector_column in frame.columns:
        col = frame[vector_column]
        scalar = col.map(
            lambda v: isinstance(v, (str, bytes)) or (v is not None and not hasattr(v, "__len__"))
        ).to_numpy(bool)
        if scalar.any():
            row = int(np.flatnonzero(scalar)[0])
            raise InputError(
                f"{path}: column {vector_column!r} must hold one list of numbers per row; row "
                f"{row} (id {ids[row]!r}) holds {type(col.iloc[row]).__name__} "
                f"{str(col.iloc[row])[:40]!r}: write the vectors as lists (e.g. "
                "pandas.DataFrame({'id': ids, 'vector': list(array)}).to_parquet(...))"
            )
        lengths = col.map(lambda v: -1 if v is None else len(v)).to_numpy()
        if len(lengths) and (lengths != lengths[0]).any():
            dims = pd.Series(lengths).value_counts()
            bad = np.flatnonzero(lengths != dims.index[0])[:5]
            raise InputError(
                f"{path}: column {vector_column!r} has vectors of different lengths "
                f"({ {int(k): int(v) for k, v in dims.head(4).items()} }); e.g. rows "
                f"{bad.tolist()} (ids {ids[bad].tolist()}): every vector must have the same "
                "length (recompute those rows, or drop them)"
            )
        if len(lengths) and lengths[0] <= 0:
            raise InputError(
                f"{path}: column {vector_column!r} holds empty or null vectors; give every id a "
                "vector (or drop the ids without one)"
            )
        try:
            arr = np.array(col.tolist(), dtype=np.float64) if len(col) else np.zeros((0, 0))
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"{path}: column {vector_column!r} must hold flat lists of numbers ({exc}); "
                "write one list of floats per row"
            ) from None
        if arr.ndim != 2:
            raise InputError(
                f"{path}: column {vector_column!r} must hold flat lists of numbers; got nested "
                f"values (array of shape {arr.shape}): write one list of floats per row"
            )
    else:
        num = frame.drop(columns=[id_column]).select_dtypes("number")
        if num.shape[1] == 0:
            raise InputError(
                f"{path}: no vector column {vector_column!r} and no numeric columns; "
                f"columns are {list(frame.columns)}"
            )
        arr = num.to_numpy(dtype=np.float64)
    return arr, ids


def _float32_copy(arr: np.ndarray, rows: int = 65_536) -> np.ndarray:
    """A C-contiguous float32 copy, made block by block.

    One whole-array copy out of a memory map page-faults into a fresh multi-GB allocation and
    runs ~10x slower (6 s against 0.6 s for 1M x 384 here) than copying 64k rows at a time.
    """
    out = np.empty(arr.shape, dtype=np.float32)
    for start in range(0, arr.shape[0], rows):
        out[start : start + rows] = arr[start : start + rows]
    return out


def load_precomputed(
    path: str | Path,
    *,
    ids: Sequence[str] | np.ndarray | None = None,
    ids_path: str | Path | None = None,
    id_column: str = "id",
    vector_column: str = "vector",
    catalog_ids: Sequence[str] | np.ndarray | None = None,
    normalize: bool = True,
) -> Embeddings:
    """Read vectors computed elsewhere as dense :class:`~ccgraph.Embeddings`.

    Parameters
    ----------
    path
        ``.npy`` (a 2-D numeric array) or ``.parquet`` / ``.pq``.
    ids
        For ``.npy``: the id of each row, in order.
    ids_path
        For ``.npy``: a text file with one id a line (wins over ``ids``).
    id_column
        Parquet: the id column.
    vector_column
        Parquet: a column of equal-length lists; if absent, every other numeric column is one
        dimension.
    catalog_ids
        When given, every id must be in it, and the rows come back in catalog order (items
        without a vector are simply absent).
    normalize
        Scale rows to unit length.

    Raises
    ------
    InputError
        Naming the file: unreadable, NaN/inf rows, all-zero rows (with ``normalize``),
        mismatched dimensions or row counts, repeated ids, ids not in the catalog.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "v.npy"), np.eye(2))
    >>> load_precomputed(os.path.join(d, "v.npy"), ids=["a", "b"]).shape
    (2, 2)
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(
            f"precomputed vectors file not found: {p}; check `embed.precomputed.path` (a "
            "relative path resolves against the config file's folder, or against the working "
            "directory when given with `ccgraph update --set`)"
        )
    suffix = p.suffix.lower()
    if suffix == ".npy":
        arr, id_arr = _from_npy(p, None if ids is None else list(ids), ids_path)
    elif suffix in (".parquet", ".pq"):
        arr, id_arr = _from_parquet(p, id_column, vector_column)
    else:
        raise InputError(f"{p}: unsupported extension {suffix!r}; use .npy or .parquet")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{p}: no vectors (shape {arr.shape})")
    arr = _float32_copy(arr)  # the one in-memory copy (from a memory map for .npy)
    # A float64 row sum of float32 values is finite exactly when every value is (no overflow).
    bad = ~np.isfinite(arr.sum(axis=1, dtype=np.float64))
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raise InputError(
            f"{p}: {int(bad.sum())} rows hold NaN or infinite values, e.g. rows {rows.tolist()} "
            f"(ids {id_arr[rows].tolist()}); fix or drop those rows (items without a vector "
            "are simply absent from this modality)"
        )
    uniq, counts = np.unique(id_arr, return_counts=True)
    if (counts > 1).any():
        raise InputError(
            f"{p}: repeated ids, e.g. {uniq[counts > 1][:5].tolist()}; keep one vector per id"
        )
    if normalize:
        norms = row_norms(arr)
        zero = norms == 0
        if zero.any():
            rows = np.flatnonzero(zero)[:5]
            raise InputError(
                f"{p}: {int(zero.sum())} all-zero rows have no direction, e.g. rows "
                f"{rows.tolist()} (ids {id_arr[rows].tolist()}); drop them"
            )
        arr /= norms[:, None]
    if catalog_ids is not None:
        cat = pd.Index(np.asarray(catalog_ids, dtype=str))
        where = cat.get_indexer(id_arr)
        known = where >= 0
        if not known.all():
            missing = id_arr[~known][:5].tolist()
            raise InputError(
                f"{p}: {int((~known).sum())} ids are not in the catalog, e.g. {missing}; "
                "remove them from the vectors file, add them to the catalog, or check that "
                "both use the same ids (and that no catalog row was rejected: see rejects)"
            )
        if not (len(where) == len(cat) and (where == np.arange(len(cat))).all()):
            order = np.argsort(where, kind="stable")
            arr, id_arr = arr[order], id_arr[order]
        if len(id_arr) < len(cat):
            logger.info("%s: vectors for %d of %d catalog items", p, len(id_arr), len(cat))
    params = {"embedder": "precomputed", "path": str(p), "normalize": normalize}
    return Embeddings(np.ascontiguousarray(arr), id_arr, "dense", params)
