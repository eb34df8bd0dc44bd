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
_MIB = 1024**2
# Constants fitted by benchmarks/memory.py (d=384, k=15, 1,000 tags; 10k, 50k and 200k items;
# every stage in a fresh process that has imported what a pipeline process has).
# Interpreter + numpy, scipy, pandas, pyarrow, scikit-learn, igraph and ccgraph (measured RSS
# before a stage, minus the embeddings: 220-233 MiB).
_BASELINE_BYTES = 225 * _MIB
# Exact kNN: its reusable score buffers (~2.3 x graph._exact.BLOCK_BYTES, measured 150 MiB at
# 10k and 50k) plus the int32 / float32 result lists and their sort scratch.
_EXACT_FIXED_BYTES = 150 * _MIB
_EXACT_PAIR_BYTES = 16
# pynndescent: numba import and compilation plus its forest (measured 805 MiB above the
# embeddings at 200k); it also keeps a normalised copy of the vectors.
_NND_FIXED_BYTES = 450 * _MIB
_NND_PAIR_BYTES = 40
# Cells backend (the `auto` choice above 20k dense items): numba runtime and kernels, cell
# assignment tables (fixed), a unit-length and a cell-ordered copy of the vectors, and per
# listed pair the candidate lists (3 cells per item) and their merge and refine buffers
# (measured 368 / 928 MiB above the embeddings at 50k / 200k).
_CELLS_FIXED_BYTES = 180 * _MIB
_CELLS_PAIR_BYTES = 56
# Mutual rule, repair and weights: pair table, sort keys and triplets per listed pair
# (measured 99-108 B), plus the kNN lists themselves (8 B).
_GRAPH_PAIR_BYTES = 118
# Leiden (igraph, three levels): the numba runtime and quality kernels it loads (fixed), and
# per undirected edge the igraph copy and the CSR itself (measured 107 MiB above the graph at
# 10k items, 230 MiB at 200k).
_CLUSTER_FIXED_BYTES = 95 * _MIB
_CLUSTER_EDGE_BYTES = 195
# Undirected edges per listed pair when the graph is not built yet (measured 0.28-0.35 for the
# mutual graph with repair; 1.0 is the bound without the mutual rule).
_EDGES_PER_PAIR = 0.5
# Tag spreading: numba kernels and calibration (fixed), three n x block work arrays, and per
# item the top-k lists, masses and the calibration hold-out (measured ~850 B).
_TAGS_FIXED_BYTES = 100 * _MIB
_TAGS_ITEM_BYTES = 850
_CSR_EDGE_BYTES = 16


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
    *,
    n: int,
    d: int,
    k: int,
    t: int,
    tag_block: int | None = None,
    backend: str = "auto",
    n_edges: int | None = None,
) -> list[StageEstimate]:
    """Peak-memory estimates (whole process) for each heavy stage of a local run.

    Parameters
    ----------
    n, d, k, t
        Items, embedding dimension (float32 columns), neighbours per item, inferable tags.
    tag_block
        Tags spread at once (``None``: the automatic width of ``spread_tags``).
    backend
        kNN backend (``exact`` holds a fixed block of similarities; ``cells`` its candidate
        lists and two copies of the vectors; ``pynndescent`` its compiled code, forest and a
        copy of the vectors).
    n_edges
        Undirected edges of the graph when it is already built (else ``k / 2`` per item).

    Returns
    -------
    list of StageEstimate
        ``knn``, ``graph``, ``cluster`` and ``tags``, each with the advice to give when it does
        not fit.

    Notes
    -----
    With ``E`` the embeddings (``4 n d`` bytes), ``P = n k`` the listed pairs, ``M`` the
    undirected edges and ``b`` the tag block, the models are (constants in the module,
    fitted by ``benchmarks/memory.py``; each includes the fixed baseline and ``E``, which the
    pipeline holds throughout)::

        knn (exact)       base + E + 150 MiB + 16 P
        knn (cells)       base + 3 E + 180 MiB + 56 P
        knn (pynndescent) base + 2 E + 450 MiB + 40 P
        graph             base + E + 118 P
        cluster           base + E + 95 MiB + 195 M
        tags              base + E + 16 M + 100 MiB + n (12 b + 850)

    Examples
    --------
    >>> [round(e.bytes / 2**30, 2) for e in estimate_run(n=200_000, d=384, k=15, t=1000)]
    [1.41, 0.84, 0.87, 0.94]
    """
    from ccgraph.graph.knn import choose_backend
    from ccgraph.propagate.spreading import auto_block

    emb = n * d * 4
    pairs = n * k
    edges = n_edges if n_edges is not None else int(_EDGES_PER_PAIR * pairs)
    base = _BASELINE_BYTES + emb
    chosen = choose_backend(n, "cosine", backend)
    if chosen == "exact":
        knn = base + _EXACT_FIXED_BYTES + pairs * _EXACT_PAIR_BYTES
        knn_advice = (
            f"the embeddings alone take {emb / _GIB:.2f} GiB: use fewer items (`data.limit`) "
            "or dimensions, or `execution.engine: spark`"
        )
    elif chosen == "cells":
        knn = base + 2 * emb + _CELLS_FIXED_BYTES + pairs * _CELLS_PAIR_BYTES
        knn_advice = (
            "use `graph.backend: exact` (memory bounded by one block, slower), lower "
            "`graph.k`, or `execution.engine: spark`"
        )
    else:
        knn = base + emb + _NND_FIXED_BYTES + pairs * _NND_PAIR_BYTES
        knn_advice = (
            "use `graph.backend: exact` (memory bounded by one block, slower), lower "
            "`graph.k`, or `execution.engine: spark`"
        )
    b = min(t, tag_block) if tag_block is not None else auto_block(n, t, 4)
    tags = base + edges * _CSR_EDGE_BYTES + _TAGS_FIXED_BYTES + n * (3 * 4 * b + _TAGS_ITEM_BYTES)
    return [
        StageEstimate("knn", int(knn), knn_advice),
        StageEstimate(
            "graph",
            int(base + pairs * _GRAPH_PAIR_BYTES),
            "lower `graph.k` or move to `execution.engine: spark`",
        ),
        StageEstimate(
            "cluster",
            int(base + _CLUSTER_FIXED_BYTES + edges * _CLUSTER_EDGE_BYTES),
            "lower `graph.k`, keep fewer `cluster.resolutions`, or use Spark's "
            "coarsen-then-refine clustering",
        ),
        StageEstimate(
            "tags",
            int(tags),
            f"set a smaller `propagate.tags.tag_block` (now {b} tags at once; e.g. "
            f"{max(1, b // 4)}) or raise `data.tags.min_count`",
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
    >>> check_budget(est, limit_bytes=1024)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ccgraph.exceptions.MemoryBudgetError: stage 'knn' needs about 0.4 GiB ...
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
            + ("; or raise the limit" if "memory_limit_gb" in source else "")
        )


def check_stages(
    estimates: list[StageEstimate], stages: tuple[str, ...], *, memory_limit_gb: float | None
) -> None:
    """Check the named stages of ``estimates`` against the budget (see :func:`budget_bytes`)."""
    limit, source = budget_bytes(memory_limit_gb)
    for est in estimates:
        if est.stage in stages:
            check_budget(est, limit_bytes=limit, source=source)
