r"""Finding catalog files and reading each into a raw table, with errors that name the file.

Delimited text is decoded as strict UTF-8 and every value is kept as a string (``""`` for a
missing value, including PostgreSQL's ``\N``); Parquet and JSON Lines keep their native values.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ccgraph.exceptions import DataQualityWarning, InputError, ParameterError

__all__ = [
    "CATALOG_SUFFIXES",
    "RawTable",
    "check_id_cells",
    "expand_paths",
    "iter_records",
    "read_raw",
]

#: A ``csv.QUOTE_*`` mode (``QUOTE_MINIMAL`` .. ``QUOTE_NONE``), as csv and pandas accept it.
_Quoting = Literal[0, 1, 2, 3]

CATALOG_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "text",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_DIRECTORY_KINDS = {"csv", "tsv", "parquet", "jsonl"}
_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class RawTable:
    """One file's rows before any interpretation."""

    path: Path
    kind: str
    frame: pd.DataFrame
    #: JSON Lines: the line number of each row (blank lines are skipped); None otherwise.
    lines: tuple[int, ...] | None = None

    def where(self, row: int) -> str:
        """``line N`` (JSON Lines) or ``row N`` (1-based) of the 0-based ``row``."""
        return f"line {self.lines[row]}" if self.lines is not None else f"row {row + 1}"


def check_id_cells(raw: RawTable, column: str) -> None:
    """Refuse ids that are lists or objects (JSON Lines, Parquet): ``str()`` is no id.

    Raises
    ------
    InputError
        Naming the file, the line (or row), the column and the value.
    """
    if column not in raw.frame.columns or raw.frame[column].dtype != object:
        return
    values = raw.frame[column].tolist()
    bad = [i for i, v in enumerate(values) if isinstance(v, (list, dict, tuple, np.ndarray))]
    if bad:
        value = values[bad[0]]
        kind = "an object" if isinstance(value, dict) else "a list"
        raise InputError(
            f"{raw.path}: {raw.where(bad[0])}: the id (column {column!r}) is {kind} "
            f"({str(value)[:60]}); an id must be a string or a number: write each item's id "
            f"as one ({len(bad)} rows have such ids)"
        )


def iter_records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Yield the rows of ``frame`` as dicts (faster than ``DataFrame.to_dict("records")``)."""
    names = [str(c) for c in frame.columns]
    for values in zip(*(frame[c].tolist() for c in frame.columns), strict=True):
        yield dict(zip(names, values, strict=True))


def _kind(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return CATALOG_SUFFIXES.get(suffixes[-1]) if suffixes else None


def _directory_files(root: Path) -> list[Path]:
    """Catalog files under ``root`` and its sub-directories, in path order.

    Hidden entries and ccgraph run directories (which hold Parquet outputs) are skipped.
    """
    from ccgraph.io.atomic import is_run_directory

    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not is_run_directory(here / d)
        )
        found += [
            here / f
            for f in filenames
            if not f.startswith(".") and _kind(Path(f)) in _DIRECTORY_KINDS
        ]
    return sorted(found, key=lambda f: f.relative_to(root).parts)


def expand_paths(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Turn a file, directory, glob or list of them into a sorted list of catalog files.

    A directory contributes every ``.csv``, ``.tsv``, ``.parquet`` and ``.jsonl`` file in it
    and its sub-directories (optionally ``.gz``-compressed; hidden entries and ccgraph run
    directories skipped), in path order; a glob its matches in name order.
    """
    items: list[str | os.PathLike[str]] | None = None
    if isinstance(path, (str, os.PathLike)):
        items = [path]
    elif isinstance(path, (list, tuple)):
        items = list(path)
    if items is None or not all(isinstance(p, (str, os.PathLike)) for p in items):
        raise ParameterError(
            f"`path` must be a file, directory or glob (a str or Path), or a list of them; "
            f"got {type(path).__name__} {path!r}"
        )
    if not items:
        raise InputError("no catalog path given: `path` is an empty list")
    out: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        text = os.fspath(item)
        if _GLOB_CHARS.search(text) and not p.exists():
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(text)))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise InputError(
                    f"no file matches the catalog pattern {text!r}; check `data.path` (relative "
                    "paths resolve against the config file's directory)"
                )
            out.extend(files)
        elif p.is_dir():
            files = _directory_files(p)
            if not files:
                raise InputError(
                    f"no catalog files (.csv, .tsv, .parquet, .jsonl) in the directory {p}; "
                    "point `data.path` at the catalog file(s) or a folder that holds them"
                )
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"catalog file not found: {p} (give a file, a directory or a glob)")
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the file ({exc})") from exc


def _decode(path: Path, data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(
            f"{path}: the file is UTF-16 text (it starts with a UTF-16 byte-order mark); "
            f"re-save it as UTF-8, e.g. `iconv -f utf-16 -t utf-8 {path.name} > fixed.csv`"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}: not UTF-8 text at line {line} (data row {line - 1}), byte {exc.start} "
            f"(byte value 0x{data[exc.start]:02x}); re-save the file as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > fixed.csv`"
        ) from None


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _check_quoting(path: Path, text: str, sep: str) -> None:
    """Refuse a quoted field closed mid-way (``"a"b``), which pandas silently accepts.

    One unbalanced quote otherwise turns the following rows into part of a single field and
    they vanish from the catalog without a reject; Python's strict csv reader catches it.
    """
    reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
    except csv.Error as exc:
        if "expected after" not in str(exc):
            return
        raise InputError(
            f"{path}: malformed CSV in the record that starts at line {start} (found at line "
            f"{reader.line_num}: {exc}); a quote opened in it is not closed where the field "
            "ends, so the rows after it would be read as part of one field: "
            "fix the quoting (a field that holds the delimiter, quotes or line breaks must be "
            'wrapped in double quotes, with inner quotes doubled: "")'
        ) from None


def _refuse_extra_fields(path: Path, text: str, sep: str, quoting: _Quoting) -> None:
    """Name the first row with more fields than the header (pandas would drop the extras)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting)
    width = len(next(reader, []))
    for row in reader:
        if len(row) > width:
            fix = (
                "a TSV field cannot hold a tab (TSV has no quoting): replace the tab in that "
                "row by a space"
                if sep == "\t"
                else f"a field holding {sep!r} must be wrapped in double quotes: fix that row"
            )
            raise InputError(
                f"{path}: line {reader.line_num} has {len(row)} fields but the header has "
                f"{width}; {fix}"
            )


def _warn_short_rows(
    path: Path, text: str, sep: str, quoting: _Quoting, shape: tuple[int, int]
) -> None:
    """Warn about rows with fewer fields than the header (pandas pads them with empty cells).

    A line break inside an unquoted field splits a row in two short rows, the second of which
    would become an item whose id is a piece of text. Counting separators first keeps the
    common case cheap: delimiters inside quoted fields only add to the count, so fewer than
    ``rows x (width - 1)`` proves a short row, and only then is the file parsed row by row.
    """
    n_rows, width = shape
    if width < 2 or n_rows == 0 or text.count(sep) >= (n_rows + 1) * (width - 1):
        return
    reader = csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting)
    next(reader, None)
    short = [(reader.line_num, len(row)) for row in reader if row and len(row) < width]
    if short:
        line, got = short[0]
        warnings.warn(
            f"{path}: {len(short)} rows have fewer fields than the header's {width} (first: "
            f"line {line}, {got} fields); their missing fields are read as empty. If a field "
            "holds a line break, wrap it in double quotes, or the row is split in two",
            DataQualityWarning,
            stacklevel=2,
        )


def _refuse_repeated_columns(path: Path, text: str, sep: str, quoting: _Quoting) -> None:
    """Refuse a header naming a column twice (pandas would rename the second ``name.1``)."""
    names = [n.strip() for n in next(csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting))]
    repeated = sorted(n for n, c in Counter(names).items() if n and c > 1)
    if repeated:
        raise InputError(
            f"{path}: the header names the column(s) {repeated} more than once; only one of "
            "them would be read: rename or drop the others"
        )


def _read_delimited(path: Path, kind: str) -> pd.DataFrame:
    text = _decode(path, _read_bytes(path))
    if not text.strip():
        raise InputError(f"{path}: the file is empty; a catalog needs a header line and rows")
    header = text.split("\n", 1)[0]
    if kind == "text":
        sep = _sniff_delimiter(header)
        kind = "tsv" if sep == "\t" else "csv"
    else:
        sep = "\t" if kind == "tsv" else ","
    others = [name for d, name in _DELIMITERS.items() if d != sep and d in header]
    if others and sep not in header:
        # checked before parsing: commas inside the rows would otherwise give a ragged-row error
        raise InputError(
            f"{path}: only one column found ({header[:80]!r}); the file looks "
            f"{others[0]}-separated, but a {path.suffix} file is read as "
            f"{_DELIMITERS[sep]}-separated: save it with {_DELIMITERS[sep]}s or use the "
            f"matching extension (.csv comma, .tsv tab, .txt any)"
        )
    # TSV (as written by PostgreSQL COPY and most tools) has no quoting.
    quoting: _Quoting = csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                dtype=object,  # plain Python strings: much faster to iterate than Arrow strings
                keep_default_na=False,
                na_filter=False,
                quoting=quoting,
                engine="c",
                skip_blank_lines=True,
                index_col=False,  # else extra fields in row 1 silently become the index
            )
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; a catalog needs a header line") from None
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise InputError(
            f"{path}: malformed {'TSV' if sep == chr(9) else 'CSV'}: {detail} "
            "(check the quoting of fields that hold the delimiter, quotes or line breaks)"
        ) from None
    _refuse_repeated_columns(path, text, sep, quoting)
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        _refuse_extra_fields(path, text, sep, quoting)
    if quoting == csv.QUOTE_MINIMAL and text.count("\n") > len(frame) + 1:
        _check_quoting(path, text, sep)  # some field spans lines: was it opened by mistake?
    _refuse_repeated_header(path, frame)
    _warn_short_rows(path, text, sep, quoting, frame.shape)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.replace({"\\N": ""}) if len(frame) else frame


def _refuse_repeated_header(path: Path, frame: pd.DataFrame) -> None:
    """Refuse a data row that repeats the header (files joined with ``cat``, say).

    Read as data it would become an item whose id is the id column's name.
    """
    if not len(frame) or frame.shape[1] < 2:
        return
    names = [str(c) for c in frame.columns]
    for row in np.flatnonzero((frame.iloc[:, 0] == names[0]).to_numpy()):
        if [str(v) for v in frame.iloc[row].tolist()] == names:
            raise InputError(
                f"{path}: row {row + 1} repeats the header line; the file looks like several "
                "files joined together: delete the repeated header lines (or keep the files "
                "apart and give the folder or a list of files)"
            )


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); it is not a Parquet file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(
            f"{path}: not a readable Parquet file ({exc}); it may be truncated or another "
            "format: write it again (e.g. pandas.DataFrame.to_parquet)"
        ) from None
    return table.to_pandas()


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, tuple[int, ...]]:
    text = _decode(path, _read_bytes(path))
    if not text.strip():
        raise InputError(f"{path}: the file is empty; JSON Lines needs one object a line")
    records = []
    numbers = []
    # Split on \n only: str.splitlines() would also break at U+0085 or U+2028 inside values.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: line {lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "each line must hold one JSON object"
            ) from None
        except RecursionError:
            raise InputError(
                f"{path}: line {lineno}: JSON nested too deeply to read; each line must hold "
                "one JSON object of an item's fields"
            ) from None
        if not isinstance(obj, dict):
            raise InputError(
                f"{path}: line {lineno}: a JSON {type(obj).__name__} where an object "
                "(one item's fields) was expected"
            )
        records.append(obj)
        numbers.append(lineno)
    return pd.DataFrame.from_records(records), tuple(numbers)


def read_raw(path: Path) -> RawTable:
    """Read one catalog file into a :class:`RawTable`; errors name the file and row."""
    kind = _kind(path)
    if kind is None:
        raise InputError(
            f"{path}: unknown catalog file type {path.suffix!r}; use .csv, .tsv, .txt, "
            ".parquet or .jsonl (optionally .gz)"
        )
    lines = None
    if kind == "parquet":
        frame = _read_parquet(path)
    elif kind == "jsonl":
        frame, lines = _read_jsonl(path)
    else:
        frame = _read_delimited(path, kind)
    return RawTable(path, kind, frame.reset_index(drop=True), lines)
