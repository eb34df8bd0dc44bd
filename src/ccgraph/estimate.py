"""Predict a run's time and memory per stage before starting it (``ccgraph estimate CONFIG``).

The prediction comes from scaling laws fitted by ``benchmarks/e2e.py --fit`` on real pipeline
runs of synthetic catalogs (stored in ``_scaling.json`` beside this module): every stage's wall
time follows ``t = a (N / 1e5) ** b`` on this machine kind, with ``b`` at least 1 (no stage
does less than linear work; a smaller fitted exponent only shows fixed costs being amortised
between the two sizes), and the peak resident memory is ``m0 + m1 N``. Other shapes
are scaled from the benchmark's (``d = 384``, ``k = 15``, 1,000 seeded tags) by the stage's
cost model: kNN search and the vectors in memory grow with ``d``; graph, clustering and
spreading with the edges (``k``); the exact spreading solver with the number of tags.
Embedding text or images is added from measured throughputs.

A run that would not fit in this machine's memory, or would take more than
:data:`SPARK_HOURS` hours, should move to Spark (``execution.engine: spark``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ccgraph._validation import check_int
from ccgraph.exceptions import ConfigError, InputError

logger = logging.getLogger(__name__)

__all__ = ["SPARK_HOURS", "Estimate", "estimate", "estimate_config", "load_model"]

#: Above this predicted wall time (hours) the estimate recommends Spark.
SPARK_HOURS = 6.0
#: Share of the machine's memory a run may plan to use before Spark is recommended.
MEMORY_SHARE = 0.8
_BASE = {"d": 384, "k": 15, "n_tags": 1000}


@dataclass(frozen=True, slots=True)
class Estimate:
    """Predicted cost of one run."""

    n_items: int
    stages_s: Mapping[str, float]
    total_s: float
    peak_gb: float
    available_gb: float | None
    recommendation: str
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def to_text(self) -> str:
        """A small table for the terminal."""
        lines = [f"ccgraph estimate: {self.n_items:,} items ({_shape(self.inputs)})", ""]
        width = max(len(s) for s in self.stages_s) if self.stages_s else 5
        for stage, sec in self.stages_s.items():
            lines.append(f"  {stage:<{width}}  {_duration(sec):>9}")
        lines.append(f"  {'total':<{width}}  {_duration(self.total_s):>9}")
        avail = "" if self.available_gb is None else f" of {self.available_gb:.1f} GB available"
        lines += ["", f"peak memory: {self.peak_gb:.1f} GB{avail}", self.recommendation]
        return "\n".join(lines)


def _shape(inputs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in inputs.items() if k != "n_items")


def _duration(sec: float) -> str:
    if sec < 60:
        return f"{sec:.1f} s"
    if sec < 3600:
        return f"{sec / 60:.1f} min"
    return f"{sec / 3600:.1f} h"


def load_model(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The fitted scaling model (``_scaling.json`` in the package unless ``path`` is given)."""
    try:
        if path is not None:
            text = Path(path).read_text()
        else:
            text = resources.files("ccgraph").joinpath("_scaling.json").read_text()
        model = json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read the scaling model ({exc}); regenerate it with "
            "`python benchmarks/e2e.py --fit 10000 100000`"
        ) from exc
    if "stages" not in model or "memory" not in model:
        raise InputError("the scaling model has no `stages` / `memory`; regenerate it")
    return model


def _available_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def _stage_factor(stage: str, d: int, k: int, n_tags: int, solver: str) -> float:
    """Cost of ``stage`` relative to the benchmark shape (see the module docstring)."""
    rd, rk, rt = d / _BASE["d"], k / _BASE["k"], n_tags / _BASE["n_tags"]
    if stage in ("graph", "duplicates"):
        return rd * rk
    if stage == "embed":
        return rd  # loading precomputed vectors
    if stage in ("cluster", "popularity"):
        return rk
    if stage == "tags":
        return rk * (rt if solver == "exact" else 1.0)
    if stage in ("describe", "assemble", "write"):
        return max(rt, 1.0) ** 0.25  # wider vocabularies, longer tables
    return 1.0


def estimate(
    n_items: int,
    *,
    d: int = 384,
    k: int = 15,
    n_tags: int = 1000,
    solver: str = "pruned",
    embed_rate: float | None = None,
    model: Mapping[str, Any] | None = None,
    available_gb: float | None = None,
) -> Estimate:
    """Predict the wall time per stage and the peak memory of a run over ``n_items`` items.

    Parameters
    ----------
    n_items
        Items in the catalog.
    d, k, n_tags
        Embedding dimension, neighbours per item and seeded tags.
    solver
        Tag-spreading solver the run will use (``"exact"`` costs grow with ``n_tags``).
    embed_rate
        Items per second of the embedding model when vectors must be computed (text or image);
        None when they are precomputed.
    model
        A fitted model (:func:`load_model` by default).
    available_gb
        Memory the run may use; default this machine's available memory.

    Returns
    -------
    Estimate

    Examples
    --------
    >>> m = {"stages": {"graph": {"a": 10.0, "b": 1.0}, "rest": {"a": 2.0, "b": 1.0}},
    ...      "memory": {"m0_mb": 300.0, "m1_mb_per_item": 0.005}}
    >>> e = estimate(1_000_000, model=m, available_gb=24.0)
    >>> round(e.stages_s["graph"]), round(e.total_s), round(e.peak_gb, 1)
    (100, 120, 5.2)
    """
    n = check_int("n_items", n_items, low=1)
    d = check_int("d", d, low=1)
    k = check_int("k", k, low=1)
    n_tags = check_int("n_tags", n_tags, low=0)
    mdl = load_model() if model is None else model
    stages: dict[str, float] = {}
    if embed_rate:
        stages["embed (model)"] = n / float(embed_rate)
    for stage, coef in mdl["stages"].items():
        base = float(coef["a"]) * (n / 1e5) ** float(coef["b"])
        stages[stage] = base * _stage_factor(stage, d, k, n_tags, solver)
    total = sum(stages.values())
    mem = mdl["memory"]
    peak_mb = float(mem["m0_mb"]) + float(mem["m1_mb_per_item"]) * n
    peak_mb += n * max(0, d - _BASE["d"]) * 4 * 3 / 1e6  # vectors: copy, search buffers
    peak_gb = peak_mb / 1024
    avail = _available_gb() if available_gb is None else available_gb
    if avail is not None and peak_gb > MEMORY_SHARE * avail:
        advice = (
            f"move to Spark (`execution.engine: spark`): the run needs ~{peak_gb:.0f} GB, more "
            f"than {MEMORY_SHARE:.0%} of the {avail:.0f} GB this machine has"
        )
    elif total > SPARK_HOURS * 3600:
        advice = f"consider Spark (`execution.engine: spark`): ~{total / 3600:.0f} h on one machine"
    else:
        advice = "fits on this machine"
    return Estimate(
        n, stages, total, peak_gb, avail, advice,
        {"n_items": n, "d": d, "k": k, "n_tags": n_tags, "solver": solver},
    )  # fmt: skip


#: Dimensions and throughputs of the built-in embedders (benchmarks/embed.py, this machine).
_EMBEDDERS = {
    "text": (384, 15.0),  # all-MiniLM-L6-v2 over title + description + tags, items/s
    "cnn": (1280, 3.5),
    "pixels": (3072, 217.0),
    "phash": (64, 267.0),
    "dhash": (64, 224.0),
}


def _count_rows(paths: list[Path]) -> int:
    """Data rows of catalog files (lines less the header; Parquet from its metadata)."""
    import gzip

    total = 0
    for p in paths:
        suffixes = [s.lower() for s in p.suffixes]
        packed = bool(suffixes) and suffixes[-1] == ".gz"
        last = suffixes[-2 if packed else -1] if len(suffixes) > packed else ""
        try:
            if last in (".parquet", ".pq"):
                import pyarrow.parquet as pq

                total += pq.ParquetFile(p).metadata.num_rows
                continue
            with gzip.open(p, "rb") if packed else open(p, "rb") as fh:
                lines = sum(1 for line in fh if line.strip())
        except Exception as exc:  # OSError, gzip.BadGzipFile, EOFError, pyarrow's own errors
            raise InputError(f"{p}: cannot count its rows ({exc}); give --items N") from None
        total += max(0, lines - (0 if last in (".jsonl", ".ndjson") else 1))
    return total


def _precomputed_dim(path: Path, options: Any) -> int:
    """Width of a precomputed vectors file, read from its header or first row."""
    import numpy as np

    if not path.is_file():
        raise InputError(
            f"precomputed vectors file not found: {path}; check `embed.precomputed.path` "
            "(the estimate needs its width)"
        )
    if path.suffix.lower() == ".npy":
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .npy array ({exc})") from None
        if len(shape) != 2:
            raise InputError(f"{path}: expected a 2-d array (items x dimensions); got {shape}")
        return int(shape[1])
    try:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        if options.vector_column in names:
            first = next(pf.iter_batches(batch_size=1, columns=[options.vector_column]), None)
            value = first.column(0)[0].as_py() if first is not None and first.num_rows else None
            if value is not None and hasattr(value, "__len__"):
                return len(value)
        numeric = [n for n in names if n != options.id_column]
        if options.vector_column not in names and numeric:
            return len(numeric)  # one column per dimension
    except Exception as exc:  # pyarrow raises several unrelated types
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    logger.info("%s: vector width unknown; assuming d = %d", path, _BASE["d"])
    return int(_BASE["d"])


def estimate_config(
    cfg: Any,
    *,
    n_items: int | None = None,
    n_tags: int = 1000,
    model: Mapping[str, Any] | None = None,
) -> Estimate:
    """:func:`estimate` for a :class:`~ccgraph.config.Config` (N from its data, d from embedders).

    ``n_items`` overrides the row count of the data files (all their rows are counted, so
    rejected rows make it an upper bound).
    """
    from ccgraph.io._files import expand_paths

    if n_items is None:
        raw = [cfg.data.path] if isinstance(cfg.data.path, str) else list(cfg.data.path)
        try:  # the files read_catalog would read: a directory's catalog files, a glob's matches
            paths = expand_paths([cfg.resolve(p) for p in raw])
        except InputError as exc:
            raise ConfigError(f"`data.path` {raw}: {exc}; or give --items N") from None
        n_items = _count_rows(paths)
        if n_items == 0:
            raise ConfigError(
                f"`data.path` {raw} holds no data rows; add rows to the catalog or give --items N"
            )
    d, rate = 0, 0.0
    e = cfg.embed
    if e.precomputed.path:
        d += _precomputed_dim(Path(cfg.resolve(e.precomputed.path)), e.precomputed)
    if e.text.enabled:
        d += _EMBEDDERS["text"][0]
        rate = _EMBEDDERS["text"][1]
    kind = getattr(e.image, "kind", None)
    if kind and kind in _EMBEDDERS:
        d += _EMBEDDERS[kind][0]
        rate = 1.0 / (1.0 / rate + 1.0 / _EMBEDDERS[kind][1]) if rate else _EMBEDDERS[kind][1]
    solver = cfg.propagate.tags.solver
    if solver == "auto":
        from ccgraph.propagate.spreading import AUTO_PRUNE_WORK

        solver = "pruned" if n_items * n_tags > AUTO_PRUNE_WORK else "exact"
    return estimate(
        n_items, d=max(d, 1), k=cfg.graph.k, n_tags=n_tags, solver=solver,
        embed_rate=rate or None, model=model,
    )  # fmt: skip


def add_commands(subparsers: Any) -> None:
    """Add ``ccgraph estimate CONFIG``."""
    text = "predict a run's time and memory per stage, and whether it needs Spark"
    p = subparsers.add_parser("estimate", help=text, description=text)
    p.add_argument("config", type=Path, help="the YAML config of the run")
    p.add_argument("--items", type=int, default=None, help="items (default: rows of the data)")
    p.add_argument("--tags", type=int, default=1000, help="seeded tags (default 1000)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_estimate)


def _cmd_estimate(args: Any) -> int:
    import sys

    from ccgraph.config import load_config

    cfg = load_config(args.config, overrides=args.set)
    est = estimate_config(cfg, n_items=args.items, n_tags=args.tags)
    if args.json:
        payload = {
            "n_items": est.n_items,
            "stages_s": dict(est.stages_s),
            "total_s": est.total_s,
            "peak_gb": est.peak_gb,
            "available_gb": est.available_gb,
            "recommendation": est.recommendation,
            "inputs": dict(est.inputs),
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write(est.to_text() + "\n")
    return 0
