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
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ccgraph._logging import StageTimer
from ccgraph._random import RngLike
from ccgraph.config import Config, apply_overrides, config_from_mapping
from ccgraph.containers import Catalog, Embeddings, RunResult
from ccgraph.exceptions import ConfigError, InputError, OutputError, ParameterError

__all__ = ["update_run"]

logger = logging.getLogger(__name__)

#: Modules of the numba kernels an update calls, in the order it first needs them (loaded on
#: a thread while the run and the batch are read: :mod:`ccgraph._kernel_preload`).
KERNEL_MODULES = (
    "ccgraph.update._knn_kernels",
    "ccgraph.update._edge_kernels",
    "ccgraph.update._move_kernels",
    "ccgraph.cluster._metric_kernels",
    "ccgraph.update._pop_kernels",
    "ccgraph.propagate._kernels",
    "ccgraph.update._tag_kernels",
    "ccgraph._assemble_kernels",
    "ccgraph.cluster._describe_kernels",
)


def _config(
    manifest: Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] | None
) -> Config:
    raw = dict(manifest.get("config", {}))
    if not raw:
        raise InputError("the run's manifest.json holds no config; it cannot be updated")
    if isinstance(overrides, Mapping):
        overrides = [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    base = manifest.get("stages", {}).get("persist", {}).get("base_dir")
    recorded = config_from_mapping(raw, base_dir=base, source="the run's config")
    if recorded.propagate.tags.tagprop_weight is not None:
        raise InputError(
            "the run was made with `propagate.tags.tagprop_weight` "
            f"({recorded.propagate.tags.tagprop_weight!r}): an update cannot refresh TagProp's "
            "blend incrementally. Rebuild instead with `ccgraph run CONFIG` (the run's config "
            "with the new items), adding `--set cluster.previous_run=RUN_DIR` to keep the "
            "cluster IDs"
        )
    source = "the run's config with the overrides (--set)" if overrides else "the run's config"
    cfg = config_from_mapping(
        apply_overrides(raw, list(overrides or [])), base_dir=base, source=source
    )
    _check_kept_settings(recorded, cfg)
    return cfg


#: Config sections an update inherits from the run: changing them would mix two settings in
#: one graph, partition or tag solution.
FIXED_SECTIONS = ("graph", "cluster", "propagate", "embed")
#: Keys inside those sections that only say where the batch is or how fast to work.
FREE_KEYS = re.compile(
    r"^embed\.(precomputed\.\w+|cache_dir|\w+\.(batch_size|max_pixels))$"
    r"|^graph\.backend$"
    r"|^cluster\.(backend|n_iterations|previous_run|warm_start|min_overlap|top_tags"
    r"|n_representatives)$"
    r"|^propagate\.tags\.(tag_block|dtype|reorder|solver|prune|freeze|max_iter|explain)$"
    r"|^propagate\.\w+\.enabled$"
)


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def _check_kept_settings(recorded: Config, cfg: Config) -> None:
    """Refuse overrides of settings the run's graph, clusters and tags were made with."""
    before = _flat(recorded.model_dump(mode="json"))
    after = _flat(cfg.model_dump(mode="json"))
    changed = sorted(
        key
        for key in set(before) | set(after)
        if key.split(".")[0] in FIXED_SECTIONS
        and not FREE_KEYS.match(key)
        and before.get(key) != after.get(key)
    )
    if changed:
        key = changed[0]
        raise ConfigError(
            f"an update keeps the run's `{key}` ({before.get(key)!r}); got {after.get(key)!r}"
            + (f" (and {len(changed) - 1} more changed keys)" if len(changed) > 1 else "")
            + ": the updated graph, clusters and tags would mix both settings. Rebuild "
            "instead with `ccgraph run CONFIG --set "
            f"{key}=...`, adding `--set cluster.previous_run=RUN_DIR` to keep the cluster IDs"
        )


def _check_rng(rng: RngLike) -> None:
    """Refuse a bad seed before any work (the stages would only refuse it after the graph)."""
    if rng is None or isinstance(rng, np.random.Generator):
        return
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or int(rng) < 0:
        raise ParameterError(
            "`rng` (`ccgraph update --seed`) must be None, a non-negative int or a numpy "
            f"Generator, as the config's `seed` (>= 0); got {rng!r}"
        )


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
        The new run directory (neither ``run_dir`` nor inside it or around it).
    overrides
        ``["update.strategy=local", ...]`` (or a mapping) applied to the run's recorded config;
        paths in them resolve against the run's config folder, so give absolute ones.
    remove
        More ids to remove (e.g. a table format without a removal flag).
    embeddings
        Vectors of the batch per modality (the names of the run's modalities), instead of
        embedding it here. As with a vectors file (``embed.precomputed``), every id must be
        in the batch or in the run, and an item of the run sent again needs its vector.
    rng
        Seed; default the run's ``seed``.
    overwrite
        Replace an existing run at ``out``.
    show_progress
        Progress bars while embedding.

    Returns
    -------
    RunResult
        The updated run (``path`` = ``out``); ``manifest["stages"]["update"]`` holds a summary
        of the drift report (changes, churn, splits, merges, the rebuild advice), which is
        written whole as ``drift.json`` and ``drift.md`` in ``out``.

    Raises
    ------
    InputError
        The run lacks the stored embeddings or kNN lists (made before they were kept), or the
        batch cannot be read or embedded as the run was: a vectors file lists ids in neither
        the batch nor the run, or lacks an item of the run that the batch sends again.

    Warns
    -----
    DataQualityWarning
        Items of the batch without any embedding (isolated, as :func:`ccgraph.run` warns), or
        ids of ``remove`` that are not in the run.
    ParameterError
        ``rng`` is not None, a non-negative int or a Generator.
    OutputError
        ``out`` is ``run_dir``, or holds a run and ``overwrite`` is false.
    """
    from ccgraph.io import load_run

    _check_rng(rng)
    src = Path(run_dir).expanduser().resolve()
    dst = Path(out).expanduser().resolve()
    if src == dst:
        raise OutputError(
            f"`out` must differ from `run_dir` ({src}): an update never rewrites its input"
        )
    if src in dst.parents or dst in src.parents:
        inner, outer = (dst, src) if src in dst.parents else (src, dst)
        raise OutputError(
            f"`out` ({dst}) and `run_dir` ({src}) must not hold one another: {inner} lies "
            f"inside {outer}, so writing the update would "
            + ("add to its input run" if inner == dst else "replace the folder of its input run")
            + "; choose an output directory beside the run"
        )
    from ccgraph.io.atomic import refuse_existing_run

    refuse_existing_run(  # before any work
        dst,
        overwrite=overwrite,
        hint="pass overwrite=True (`ccgraph update --overwrite`) to replace it, or choose "
        "another output directory",
    )
    from ccgraph._kernel_preload import preload_kernels

    preload_kernels(KERNEL_MODULES)
    timer = StageTimer()
    with timer.stage("load"):
        old = load_run(src)
        cfg = _config(old.manifest, overrides)
    with timer.stage("read"):
        from ccgraph.update._catalog import plan_changes, read_batch

        batch = read_batch(
            new_catalog if isinstance(new_catalog, Catalog) else Path(new_catalog), cfg
        )
        changes = plan_changes(old.items["id"], batch, remove)
    import shutil

    from ccgraph._blas import one_blas_thread
    from ccgraph._lane import use_lane
    from ccgraph.io.atomic import make_temp_dir
    from ccgraph.io.run import RunWriter
    from ccgraph.update._steps import run_update

    # private folder for the merged embeddings (moved into the run when it is written); named
    # like write_run's temporary folders, so a later write removes it if this process dies
    stage = make_temp_dir(dst)
    try:
        # the run's files are written as they are made (the merged embeddings while the
        # clusters are refined); an error removes what was written. The update's products
        # are small and its own threads fill the cores: one BLAS thread (measured: 3 % faster
        # at 100k items, without the spinning of idle OpenBLAS workers). Its background jobs
        # (files, popularity, ...) take turns on the cores the main thread leaves free
        with (
            use_lane(),
            RunWriter(dst, overwrite=overwrite, adopt=[stage]) as writer,
            one_blas_thread(),
        ):
            return run_update(
                old,
                batch,
                changes,
                cfg,
                out=dst,
                writer=writer,
                timer=timer,
                embeddings=embeddings,
                rng=cfg.seed if rng is None else rng,
                show_progress=show_progress,
                stage=stage,
            )
    finally:
        shutil.rmtree(stage, ignore_errors=True)
