"""Input files of ``ccgraph experiment``: tables, a run's items and graph, attributes, exposure."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.exceptions import InputError

__all__ = ["join_attributes", "read_exposure", "read_run_graph", "read_run_items", "read_table"]

logger = logging.getLogger(__name__)


def read_table(path: Path) -> pd.DataFrame:
    """Read a .parquet, .csv or .txt (one value per line, column ``unit``) table."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".txt":
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
            return pd.DataFrame({"unit": [ln for ln in lines if ln]})
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    raise InputError(f"{path}: unsupported file type {suffix!r}; use .parquet, .csv or .txt")


def read_run_items(run_dir: Path) -> pd.DataFrame:
    """``items.parquet`` of a run directory."""
    return read_table(Path(run_dir) / "items.parquet")


def read_run_graph(run_dir: Path) -> tuple[sp.csr_matrix, np.ndarray]:
    """``graph.npz`` of a run directory as ``(csr, ids)`` (no pickled objects are loaded)."""
    path = Path(run_dir) / "graph.npz"
    if not path.exists():
        raise InputError(f"{path}: file not found (rule 'closest' needs the run's graph)")
    try:
        with np.load(path, allow_pickle=False) as z:
            shape = tuple(int(v) for v in z["shape"])
            csr = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
            ids = z["ids"].astype(str)
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a ccgraph graph file ({exc})") from exc
    return csr, ids


#: Columns of a run's items table that --attributes may not replace (the run's own results).
_RUN_RESULTS = re.compile(
    r"^(cluster(_l\d+|_strength)?|duplicate_group|is_canonical|degree|popularity\w*)$"
)


def join_attributes(items: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Join ``path``'s columns to the run's items by id; its values win where given."""
    extra = read_table(path)
    if "id" not in extra.columns:
        raise InputError(f"{path}: needs an 'id' column")
    extra = extra.astype({"id": str})
    clash = [str(c) for c in extra.columns if _RUN_RESULTS.match(str(c))]
    if clash:
        raise InputError(
            f"{path}: column(s) {', '.join(map(repr, clash))} would replace the run's own "
            "results; rename or drop them"
        )
    dup = extra["id"].duplicated(keep=False) & ~extra.duplicated(keep=False)
    if dup.any():
        first = extra.loc[dup, "id"].iloc[0]
        raise InputError(
            f"{path}: id {first!r} has rows with different values "
            f"({int(extra.loc[dup, 'id'].nunique())} such ids); keep one row per id"
        )
    extra = extra.drop_duplicates("id")
    matched = int(extra["id"].isin(set(items["id"].astype(str))).sum())
    if matched == 0:
        raise InputError(f"{path}: none of its {len(extra)} ids is an item of the run")
    # The run's catalog columns (license, provider, ...) are often empty: the file's values win
    # where it has one, the run's stay elsewhere.
    shared = [c for c in extra.columns if c != "id" and c in items.columns]
    out = items.merge(extra, on="id", how="left", suffixes=("", "__attributes"))
    for col in shared:
        out[col] = out[f"{col}__attributes"].combine_first(out[col])
    out = out.drop(columns=[f"{c}__attributes" for c in shared])
    logger.info(
        "--attributes: %d of %d ids matched; columns %s%s",
        matched,
        len(extra),
        ", ".join(c for c in extra.columns if c != "id"),
        f" (replacing the run's values of {', '.join(shared)} where given)" if shared else "",
    )
    return out


def read_exposure(path: Path | None, items: pd.DataFrame) -> pd.Series:
    if path is None:
        if "popularity" not in items.columns:
            raise InputError("rule 'least_exposed' needs --exposure (the run has no popularity)")
        logger.info("least_exposed: using the run's popularity as the exposure proxy")
        return pd.Series(items["popularity"].fillna(0.0).to_numpy(), index=items["id"].astype(str))
    table = read_table(path)
    for col in ("id", "impressions"):
        if col not in table.columns:
            raise InputError(f"{path}: needs columns 'id' and 'impressions'; {col!r} is missing")
    return pd.Series(table["impressions"].to_numpy(), index=table["id"].astype(str))
