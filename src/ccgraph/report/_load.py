"""Read a finished run directory for the report (a small private loader).

The report only needs plain tables and the CSR, so it reads the files of DESIGN.md section 3
directly with pandas / numpy. Optional files (``rejects.parquet``, ``evaluation/``) may be absent.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph.exceptions import InputError

__all__ = ["RunData", "load_run_dir"]

log = logging.getLogger(__name__)

_REQUIRED = ("items.parquet", "graph.npz", "manifest.json")


@dataclass(frozen=True, slots=True, eq=False)
class RunData:
    """The parts of a run directory the report shows (row order = ``items`` order)."""

    path: Path
    items: pd.DataFrame
    tags: pd.DataFrame
    clusters: pd.DataFrame
    rejects: pd.DataFrame
    adjacency: sp.csr_matrix
    manifest: dict[str, Any]
    evaluation: dict[str, Any] | None = None
    evaluation_md: str | None = None
    evaluation_figures: list[Path] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.items)


def _read_parquet(path: Path, *, required: bool) -> pd.DataFrame:
    if not path.exists():
        if required:
            raise InputError(f"{path} does not exist; is {path.parent} a ccgraph run directory?")
        return pd.DataFrame()
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise InputError(f"{path} cannot be read as Parquet: {exc}") from exc


def _read_graph(path: Path, ids: np.ndarray) -> sp.csr_matrix:
    try:
        with np.load(path, allow_pickle=False) as z:
            shape = tuple(int(s) for s in z["shape"])
            a = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
            gids = z["ids"].astype(str)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"{path} is not a ccgraph graph (arrays data, indices, indptr, shape, ids): {exc}"
        ) from exc
    if len(gids) != len(ids):
        raise InputError(f"{path} has {len(gids)} ids but items.parquet has {len(ids)} rows")
    if not np.array_equal(gids, ids):
        pos = pd.Index(gids).get_indexer(ids)
        if (pos < 0).any():
            bad = ids[np.flatnonzero(pos < 0)[0]]
            raise InputError(f"{path}: item id {bad!r} of items.parquet is not in the graph")
        a = a[pos][:, pos]
    a = a.astype(np.float32).tocsr()
    a.sort_indices()
    return a


def _check_complete(path: Path, manifest: Any) -> None:
    """Refuse another schema version, and recorded files that are absent or resized.

    A half-written or edited run directory would otherwise give a silently wrong report.
    """
    from ccgraph.io.run import SCHEMA_VERSION

    if not isinstance(manifest, dict):
        return
    version = manifest.get("schema_version")
    if version is not None and version != SCHEMA_VERSION:
        raise InputError(
            f"{path}: run schema_version {version!r} is not supported; this ccgraph reads "
            f"version {SCHEMA_VERSION} (re-run with this version)"
        )
    files = manifest.get("files")
    for name, info in (files if isinstance(files, dict) else {}).items():
        target = path / name
        if not target.is_file():
            raise InputError(
                f"{path} is an incomplete run directory: {name} is recorded in the manifest "
                "but missing (run it again)"
            )
        size = target.stat().st_size
        if isinstance(info, dict) and info.get("bytes") not in (None, size):
            raise InputError(
                f"{target} has {size} bytes but the manifest records {info['bytes']}: the run "
                "directory was modified or is incomplete (run it again)"
            )


def load_run_dir(run_dir: str | Path) -> RunData:
    """Read the run directory ``run_dir`` (raises :class:`InputError` naming a bad file)."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise InputError(f"run directory {path} does not exist or is not a directory")
    for name in _REQUIRED:
        if not (path / name).exists():
            raise InputError(f"{path / name} does not exist; is {path} a ccgraph run directory?")
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path / 'manifest.json'} is not valid JSON: {exc}") from exc
    _check_complete(path, manifest)
    items = _read_parquet(path / "items.parquet", required=True)
    for col in ("id", "cluster"):
        if col not in items.columns:
            raise InputError(f"{path / 'items.parquet'} lacks the column {col!r}")
    items = items.reset_index(drop=True)
    items["id"] = items["id"].astype(str)
    ids = items["id"].to_numpy()
    tags = _read_parquet(path / "tags.parquet", required=False)
    if not tags.empty:
        tags["id"] = tags["id"].astype(str)
    evaluation, md, figures = _read_evaluation(path / "evaluation")
    return RunData(
        path=path,
        items=items,
        tags=tags,
        clusters=_read_parquet(path / "clusters.parquet", required=False),
        rejects=_read_parquet(path / "rejects.parquet", required=False),
        adjacency=_read_graph(path / "graph.npz", ids),
        manifest=manifest if isinstance(manifest, dict) else {},
        evaluation=evaluation,
        evaluation_md=md,
        evaluation_figures=figures,
    )


def _read_evaluation(folder: Path) -> tuple[dict[str, Any] | None, str | None, list[Path]]:
    if not folder.is_dir():
        return None, None, []
    metrics = None
    if (folder / "metrics.json").exists():
        try:
            metrics = json.loads((folder / "metrics.json").read_text())
        except ValueError as exc:
            log.warning("ignoring %s: not valid JSON (%s)", folder / "metrics.json", exc)
    md = (folder / "evaluation.md").read_text() if (folder / "evaluation.md").exists() else None
    figures = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".svg"))
    return (metrics if isinstance(metrics, dict) else None), md, figures
