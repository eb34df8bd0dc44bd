"""``update_run``: add, replace and remove items of a finished run without recomputing the world.

read the run (tables, stored embeddings and kNN lists) -> read the batch -> embed only the new
and changed items -> update the kNN lists and rebuild the edges -> duplicates -> Leiden from the
previous clusters with stable IDs -> cluster descriptions -> tag spreading -> popularity with
the run's constants -> a new run directory plus a drift report. The input run is never touched.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ccgraph._logging import StageTimer
from ccgraph._random import RngLike
from ccgraph.config import Config, apply_overrides, config_from_mapping
from ccgraph.containers import Catalog, Embeddings, RunResult
from ccgraph.exceptions import InputError, OutputError

__all__ = ["update_run"]

logger = logging.getLogger(__name__)


def _config(
    manifest: Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] | None
) -> Config:
    raw = dict(manifest.get("config", {}))
    if not raw:
        raise InputError("the run's manifest.json holds no config; it cannot be updated")
    if isinstance(overrides, Mapping):
        overrides = [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    raw = apply_overrides(raw, list(overrides or []))
    base = manifest.get("stages", {}).get("persist", {}).get("base_dir")
    return config_from_mapping(raw, base_dir=base, source="the run's config")


def update_run(
    run_dir: str | os.PathLike[str],
    new_catalog: Catalog | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
    remove: Iterable[str] = (),
    embeddings: Mapping[str, Embeddings] | None = None,
    rng: RngLike = None,
    overwrite: bool = False,
    show_progress: bool = False,
) -> RunResult:
    """Add, replace and remove items of a run and write the updated run to ``out``.

    Parameters
    ----------
    run_dir
        A run directory written by :func:`ccgraph.run` (or by an earlier update).
    new_catalog
        The batch: a catalog file (read with the run's ``data`` options) or a
        :class:`~ccgraph.containers.Catalog`. Rows with a new id are added; rows whose id is in
        the run replace that item (re-embedded if its vectors change); rows flagged
        ``removed_from_source`` remove their item.
    out
        The new run directory (must differ from ``run_dir``).
    overrides
        ``["update.strategy=local", ...]`` (or a mapping) applied to the run's recorded config;
        paths in them resolve against the run's config folder, so give absolute ones.
    remove
        More ids to remove (e.g. a table format without a removal flag).
    embeddings
        Vectors of the batch per modality (the names of the run's modalities), instead of
        embedding it here.
    rng
        Seed; default the run's ``seed``.
    overwrite
        Replace an existing run at ``out``.
    show_progress
        Progress bars while embedding.

    Returns
    -------
    RunResult
        The updated run (``path`` = ``out``); ``manifest["stages"]["update"]`` holds the drift
        report, also written as ``drift.json`` and ``drift.md`` in ``out``.

    Raises
    ------
    InputError
        The run lacks the stored embeddings or kNN lists (made before they were kept), or the
        batch cannot be read or embedded as the run was.
    OutputError
        ``out`` is ``run_dir``, or holds a run and ``overwrite`` is false.
    """
    from ccgraph.io import load_run

    src = Path(run_dir).expanduser().resolve()
    dst = Path(out).expanduser().resolve()
    if src == dst:
        raise OutputError(
            f"`out` must differ from `run_dir` ({src}): an update never rewrites its input"
        )
    timer = StageTimer()
    with timer.stage("load"):
        old = load_run(src)
        cfg = _config(old.manifest, overrides)
    with timer.stage("read"):
        from ccgraph.update._catalog import plan_changes, read_batch

        batch = read_batch(
            new_catalog if isinstance(new_catalog, Catalog) else Path(new_catalog), cfg
        )
        changes = plan_changes(old.ids, batch, remove)
    from ccgraph.update._steps import run_update

    return run_update(
        old,
        batch,
        changes,
        cfg,
        out=dst,
        timer=timer,
        embeddings=embeddings,
        rng=cfg.seed if rng is None else rng,
        overwrite=overwrite,
        show_progress=show_progress,
    )
