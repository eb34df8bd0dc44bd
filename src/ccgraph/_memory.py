"""Memory guard: estimate each stage's peak before allocating, refuse when it will not fit.

The estimates are simple linear models in the sizes that drive each stage (items ``n``,
dimension ``d``, neighbours ``k``, tags ``t``, tag block ``b``), with constants measured by
``benchmarks/memory.py`` on this project's machine kind (the benchmark prints the estimate
beside the measured peak so the factors can be checked and refitted).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ccgraph.exceptions import MemoryBudgetError

__all__ = [
    "StageEstimate",
    "available_bytes",
    "budget_bytes",
    "check_budget",
    "check_stages",
    "current_rss_bytes",
    "estimate_run",
]

log = logging.getLogger(__name__)

_GIB = 1024**3
# Bytes per stored directed edge of a symmetric float32 CSR (data + indices) plus the
# int64 triplets used while the mutual rule and the repair build it.
_EDGE_BUILD_BYTES = 40
# igraph's peak for Leiden on a weighted graph (measured: 104 B per undirected edge).
_IGRAPH_EDGE_BYTES = 104
# Fixed interpreter + libraries (numpy, scipy, pandas, pyarrow, igraph).
_BASELINE_BYTES = 350 * 1024**2


@dataclass(frozen=True, slots=True)
class StageEstimate:
    """Estimated peak bytes of one stage and what to change when it does not fit."""

    stage: str
    bytes: int
    advice: str

    @property
    def gib(self) -> float:
        """The estimate in GiB."""
        return self.bytes / _GIB


def available_bytes() -> int:
    """Memory the process can still use: ``MemAvailable`` (Linux) or the physical total."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * _GIB


def estimate_run(
    *, n: int, d: int, k: int, t: int, tag_block: int | None = None, backend: str = "auto"
) -> list[StageEstimate]:
    """Peak-memory estimates for each heavy stage of a local run.

    Parameters
    ----------
    n, d, k, t
        Items, embedding dimension, neighbours per item, inferable tags.
    tag_block
        Tags spread at once (``None``: all).
    backend
        kNN backend (``exact`` holds a block of similarities; ``pynndescent`` its index).
    """
    emb = n * d * 4
    edges = n * k  # directed edges before the mutual rule (an upper bound after it)
    block_rows = max(1, min(n, (256 * 1024**2) // max(1, 4 * n)))
    exact = emb + block_rows * n * 4 + n * k * 8
    nnd = emb * 2 + n * k * 24 * 3
    knn_bytes = exact if backend == "exact" or (backend == "auto" and n <= 50_000) else nnd
    b = t if tag_block is None else min(t, tag_block)
    spread = n * b * 4 * 4 + edges * 2 * 8
    return [
        StageEstimate(
            "knn",
            _BASELINE_BYTES + knn_bytes,
            "use `graph.backend: pynndescent`, lower `graph.k`, or `execution.engine: spark`",
        ),
        StageEstimate(
            "graph",
            _BASELINE_BYTES + emb + edges * _EDGE_BUILD_BYTES,
            "lower `graph.k` or move to `execution.engine: spark`",
        ),
        StageEstimate(
            "cluster",
            _BASELINE_BYTES + edges * _IGRAPH_EDGE_BYTES,
            "lower `graph.k` or use Spark's coarsen-then-refine clustering",
        ),
        StageEstimate(
            "tags",
            _BASELINE_BYTES + spread,
            "set a smaller `propagate.tags.tag_block` (e.g. 64) or raise `data.tags.min_count`",
        ),
    ]


def current_rss_bytes() -> int:
    """Resident memory of this process now (Linux ``/proc/self/statm``; 0 where unknown)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def budget_bytes(memory_limit_gb: float | None = None) -> tuple[int, str]:
    """The memory budget of a stage's peak and where it comes from.

    An explicit ``memory_limit_gb`` (config ``execution.memory_limit_gb``) wins; otherwise the
    memory still available to the system plus what this process already holds (the estimates
    are of the whole process's peak, which includes its current use).
    """
    if memory_limit_gb is not None:
        return int(memory_limit_gb * _GIB), "`execution.memory_limit_gb`"
    return available_bytes() + current_rss_bytes(), "available memory"


def check_budget(
    estimate: StageEstimate, *, limit_bytes: int | None = None, source: str = "available memory"
) -> None:
    """Raise :class:`MemoryBudgetError` before a stage whose estimate exceeds the budget.

    Examples
    --------
    >>> est = estimate_run(n=1000, d=384, k=15, t=100)[0]
    >>> check_budget(est, limit_bytes=64 * 1024**3)  # fits: returns None
    >>> check_budget(est, limit_bytes=1024)
    Traceback (most recent call last):
    ...
    ccgraph.exceptions.MemoryBudgetError: stage 'knn' needs about 0.3 GiB ...
    """
    limit = limit_bytes if limit_bytes is not None else available_bytes() + current_rss_bytes()
    log.debug(
        "stage %s: estimated peak %.2f GiB of %.2f GiB", estimate.stage, estimate.gib, limit / _GIB
    )
    if estimate.bytes > limit:
        raise MemoryBudgetError(
            f"stage {estimate.stage!r} needs about {estimate.gib:.1f} GiB "
            f"({estimate.bytes / 1024**2:,.0f} MiB) but the budget is {limit / _GIB:.1f} GiB "
            f"({source}); {estimate.advice}"
        )


def check_stages(
    estimates: list[StageEstimate], stages: tuple[str, ...], *, memory_limit_gb: float | None
) -> None:
    """Check the named stages of ``estimates`` against the budget (see :func:`budget_bytes`)."""
    limit, source = budget_bytes(memory_limit_gb)
    for est in estimates:
        if est.stage in stages:
            check_budget(est, limit_bytes=limit, source=source)
