"""k-nearest-neighbour search: exact blocked search, overlapping cells, or pynndescent.

``knn_search`` is the one entry point; the backends live in ``_exact``, ``_ivf`` (``"cells"``)
and ``_nndescent``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ccgraph._random import RngLike, derive_seed
from ccgraph._validation import check_choice, check_finite_matrix, check_int, row_norms
from ccgraph.containers import Embeddings
from ccgraph.exceptions import InputError, ParameterError
from ccgraph.graph._collapse import expand_lists, identical_rows

__all__ = [
    "AUTO_EXACT_MAX_N",
    "AUTO_EXACT_MAX_N_HAMMING",
    "METRICS",
    "check_knn_lists",
    "choose_backend",
    "estimate_recall",
    "knn_search",
    "prepare_vectors",
    "unit_rows",
]

logger = logging.getLogger(__name__)

METRICS = ("cosine", "euclidean", "hamming")
BACKENDS = ("auto", "exact", "cells", "pynndescent")

#: ``backend="auto"`` searches exactly up to this many dense items. Measured by
#: ``benchmarks/graph.py`` (d=384, k=15, 2 idle cores): exact costs 6.0 cpu-s (3.1 s wall) at
#: 20k and 166 cpu-s at 100k (n^2); the cells backend 1.5 / 6.4 cpu-s (recall@15 0.97) plus
#: 0.5-0.7 s to load its cached kernels. Cells are cheaper from about 8k items, but up to 20k
#: the exact search costs at most ~3 s and returns the true neighbours, so it is kept there.
AUTO_EXACT_MAX_N = 20_000

#: The same threshold for 64-bit Hamming codes: exact XOR + popcount costs 2.8 cpu-s at 20k
#: and 70 cpu-s at 100k, pynndescent ``bit_hamming`` 11 cpu-s at 100k plus its own compilation.
AUTO_EXACT_MAX_N_HAMMING = 100_000


def choose_backend(n: int, metric: str, backend: str = "auto") -> str:
    """Return the backend ``knn_search`` uses for ``n`` items (exact, cells or pynndescent).

    Examples
    --------
    >>> choose_backend(1_000, "cosine")
    'exact'
    >>> choose_backend(1_000_000, "cosine")
    'cells'
    >>> choose_backend(1_000_000, "hamming")
    'pynndescent'
    """
    if backend != "auto":
        return backend
    limit = AUTO_EXACT_MAX_N_HAMMING if metric == "hamming" else AUTO_EXACT_MAX_N
    if n <= limit:
        return "exact"
    # Dense vectors: the cells backend (BLAS + a numba kernel cached on disk) needs no
    # per-process compilation; codes: pynndescent's bit_hamming.
    return "pynndescent" if metric == "hamming" else "cells"


def prepare_vectors(vectors: Any, metric: str) -> np.ndarray:
    """Validate ``vectors`` for ``metric``; return float32 rows (unit length for cosine) or codes.

    Binary :class:`~ccgraph.containers.Embeddings` (packed ``uint8`` codes) go with
    ``metric="hamming"`` only, dense ones with ``cosine`` / ``euclidean`` only.
    """
    check_choice("metric", metric, METRICS)
    if isinstance(vectors, Embeddings):
        arr = vectors.vectors
        binary = vectors.kind == "binary"
        if binary != (metric == "hamming"):
            raise ParameterError(
                f"`metric` {metric!r} does not fit {vectors.kind} embeddings: packed binary "
                "codes (pHash) use metric='hamming', dense vectors 'cosine' or 'euclidean'"
            )
    else:
        arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"`vectors` must be a non-empty 2-D array [n, d]; got shape {arr.shape}")
    if metric == "hamming":
        if arr.dtype != np.uint8:
            raise InputError(
                "`vectors` for metric='hamming' must be packed bit codes (uint8 [n, bytes], e.g. "
                f"np.packbits); got dtype {arr.dtype}"
            )
        return np.ascontiguousarray(arr)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"`vectors` must be numeric; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if metric != "cosine":
        check_finite_matrix("vectors", arr)
        return arr
    norms = row_norms(arr)
    if not np.isfinite(norms).all():
        # a row's norm is finite exactly when all its values are (row_norms recomputes
        # overflowing rows in float64), so only then is the finite check's pass needed
        check_finite_matrix("vectors", arr)
    if (norms == 0).any():
        row = int(np.flatnonzero(norms == 0)[0])
        raise InputError(
            f"`vectors` row {row} is all zeros: it has no direction for cosine similarity"
        )
    return unit_rows(arr, norms)


def check_knn_lists(knn: Any, n: int, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return a precomputed ``knn = (indices, distances)`` pair as arrays, or raise.

    Both must have shape ``(n, k)`` (any ``k`` when ``k`` is None), the indices must be
    integers in ``[0, n)`` or ``-1`` for a missing slot, and the distances of the filled slots
    finite (a NaN distance would become a NaN edge weight).
    """
    try:
        indices, dist = (np.asarray(a) for a in knn)
    except (TypeError, ValueError) as exc:
        raise InputError(f"`knn` must be a pair (indices, distances) of arrays; got {exc}") from exc
    want = f"({n}, {k})" if k is not None else f"(n, k) with n={n}"
    if (
        indices.ndim != 2
        or indices.shape[0] != n
        or (k is not None and indices.shape[1] != k)
        or dist.shape != indices.shape
    ):
        raise InputError(
            f"`knn` arrays must both have shape {want}; got {indices.shape} and {dist.shape}"
        )
    if indices.size and indices.dtype.kind not in "iu":
        raise InputError(f"`knn` indices must be integers; got dtype {indices.dtype}")
    if indices.size and (indices.max() >= n or indices.min() < -1):
        raise InputError(f"`knn` indices must lie in [0, {n}) (or -1 for a missing slot)")
    if dist.size and dist.dtype.kind not in "iuf":
        raise InputError(f"`knn` distances must be numeric; got dtype {dist.dtype}")
    bad = (indices >= 0) & ~np.isfinite(dist)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise InputError(
            f"`knn` distances must be finite for every listed neighbour; row {row} has "
            f"{dist[row][bad[row]][0]}: recompute the search or mark the slot with index -1"
        )
    return indices, dist


def unit_rows(arr: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
    """float32 rows scaled to unit length, unless all are already within ``1e-4`` of it.

    Rows that are unit length up to rounding (model outputs) are left bit for bit, so every
    engine that calls this (the Spark backend does, per batch) searches the same numbers; an
    all-zero row stays zero.

    Examples
    --------
    >>> unit_rows(np.array([[3.0, 4.0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    if norms is None:
        norms = row_norms(arr)
    if len(norms) and np.abs(norms - 1.0).max() > 1e-4:
        arr = (arr / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32, copy=False)
    return arr


def knn_search(
    vectors: Any,
    *,
    k: int,
    metric: str = "cosine",
    backend: str = "auto",
    rng: RngLike = None,
    n_jobs: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Find each item's ``k`` nearest other items.

    Parameters
    ----------
    vectors
        Dense ``[n, d]`` array or :class:`~ccgraph.containers.Embeddings`; for
        ``metric="hamming"`` packed bit codes ``uint8 [n, bytes]`` (e.g. 64-bit pHash as
        ``[n, 8]``).
    k
        Neighbours per item, ``1 <= k < n`` (a larger ``k`` raises :class:`ParameterError`
        naming ``k`` and ``n``, rather than silently returning fewer neighbours).
    metric
        ``"cosine"`` (distance ``1 - cos``; rows are normalised on a copy), ``"euclidean"`` or
        ``"hamming"`` (number of differing bits).
    backend
        ``"exact"``: blocked BLAS products (or XOR + popcount) and partial sorts, memory bounded
        by the block, no JIT. ``"cells"`` (dense only): exact search inside overlapping
        k-means cells by BLAS products, then neighbour-of-neighbour refinement passes (a numba
        kernel compiled once per machine and cached on disk; ``options`` override
        ``ccgraph.graph._ivf.CELLS_DEFAULTS``); see :mod:`ccgraph.graph._ivf`.
        ``"pynndescent"``: approximate NN-descent, fast at large ``n`` but with a one-off numba
        compilation (30-60 s here) in each fresh process; ``bit_hamming`` for codes.
        ``"auto"``: exact up to :data:`AUTO_EXACT_MAX_N` dense items
        (:data:`AUTO_EXACT_MAX_N_HAMMING` codes), else cells (dense) or pynndescent (codes).
    rng
        Seed for pynndescent (an int seed is passed as is; a Generator draws one).
    n_jobs
        Threads (None or -1 = all cores).
    options
        Backend tuning for pynndescent: ``extra_neighbors`` (search ``k + extra`` and keep
        ``k``; default 9, 4 for codes) and any :class:`pynndescent.NNDescent` keyword (defaults in
        ``ccgraph.graph._nndescent.NNDESCENT_DEFAULTS``). Approximate results are reproducible
        for a fixed ``rng`` and ``n_jobs``.

    Returns
    -------
    indices, distances
        ``int32 [n, k]`` and ``float32 [n, k]``, each row sorted by distance, ties by the lower
        index; an item is never its own neighbour (duplicates of it are, at distance 0).
        pynndescent may leave a slot unfilled on pathological inputs: index -1, distance inf.

    Notes
    -----
    Bitwise-identical rows (repeated captions, blank images) are searched once: the distinct
    rows are searched for ``k_u = min(k, u - 1)`` neighbours, then each row gets its identical
    rows at distance exactly 0 followed by the members of its neighbours, ordered by
    ``(distance, index)`` (:mod:`ccgraph.graph._collapse`). For the exact backend this is the
    exact kNN with ties broken by the lower index, whatever the float rounding of the
    backend; inputs without duplicates are searched as they are.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> idx, dist = knn_search(x, k=1, backend="exact")
    >>> idx.ravel().tolist()
    [1, 0, 3, 2]
    """
    arr = prepare_vectors(vectors, metric)
    n = arr.shape[0]
    k = check_int("k", k, low=1)
    if k >= n:
        raise ParameterError(
            f"`k` must be smaller than the number of items (n={n}); got k={k}: lower k "
            "(graph.k in the config) or add items"
        )
    check_choice("backend", backend, BACKENDS)
    if n_jobs is not None and n_jobs != -1:
        check_int("n_jobs", n_jobs, low=1)
    threads = None if n_jobs in (None, -1) else int(n_jobs)
    chosen = choose_backend(n, metric, backend)
    if chosen == "cells" and metric == "hamming":
        raise ParameterError(
            "`backend` 'cells' searches dense vectors only; use 'exact' or 'pynndescent' "
            "for metric='hamming'"
        )
    seed = derive_seed(rng) if chosen != "exact" else 0
    rows = identical_rows(arr)
    if rows is None:
        return _search(arr, k, chosen, metric=metric, seed=seed, n_jobs=threads, options=options)
    u = rows.n_groups
    k_u = min(k, u - 1)
    logger.info(
        "kNN search: %d of %d rows are exact duplicates; searching %d distinct rows",
        n - u,
        n,
        u,
    )
    if k_u == 0:  # every row is the same vector
        ind, dist = np.zeros((1, 0), dtype=np.int32), np.zeros((1, 0), dtype=np.float32)
    else:
        # lists that hold every other distinct row need no approximate search
        how = "exact" if k_u == u - 1 else chosen
        ind, dist = _search(
            arr[rows.first], k_u, how, metric=metric, seed=seed, n_jobs=threads, options=options
        )
    return expand_lists(rows, ind, dist, k)


def _search(
    arr: np.ndarray,
    k: int,
    backend: str,
    *,
    metric: str,
    seed: int,
    n_jobs: int | None,
    options: Mapping[str, Any] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run one backend on validated rows (``backend`` already chosen)."""
    if backend == "cells":
        from ccgraph.graph._ivf import cells_knn

        opts = dict(options) if options else None
        return cells_knn(arr, k, metric=metric, seed=seed, n_jobs=n_jobs, options=opts)
    if backend == "exact":
        from ccgraph.graph._exact import exact_dense, exact_hamming

        if metric == "hamming":
            return exact_hamming(arr, k, n_jobs=n_jobs)
        return exact_dense(arr, k, metric=metric, n_jobs=n_jobs)
    from ccgraph.graph._nndescent import nndescent_knn

    opts = dict(options or {})
    extra = opts.pop("extra_neighbors", None)
    if extra is not None:
        extra = check_int("options['extra_neighbors']", extra, low=0)
    nn_metric = {"cosine": "dot", "euclidean": "euclidean", "hamming": "bit_hamming"}[metric]
    return nndescent_knn(
        arr,
        k,
        metric=nn_metric,
        seed=seed,
        n_jobs=n_jobs,
        extra_neighbors=extra,
        options=opts,
    )


def estimate_recall(
    vectors: Any,
    indices: np.ndarray,
    distances: np.ndarray,
    *,
    metric: str = "cosine",
    n_queries: int = 200,
    rng: RngLike = None,
) -> float:
    """Estimate the recall@k of approximate kNN lists against an exact search on a sample.

    Parameters
    ----------
    vectors
        The searched vectors or codes (as given to :func:`knn_search`).
    indices, distances
        ``[n, k]`` lists to check.
    metric
        The metric of the search.
    n_queries
        Sampled rows (exact search on them costs ``n_queries * n`` distances).
    rng
        Sampling seed.

    Returns
    -------
    float
        Mean share of each sampled row's ``k`` slots filled with a neighbour no farther than
        the exact ``k``-th distance. Ties count as found, whichever tied item a list holds:
        exact copies (all at distance 0) and equal Hamming distances make the exact ``k``
        nearest items ambiguous, and a list of other, equally near items is not wrong.

    Notes
    -----
    For dense vectors the listed neighbours' distances are measured again from ``vectors``
    (the ``distances`` given are not trusted) and compared with the exact ``k``-th distance up
    to float32 rounding: ``1e-5`` for cosine, ``1e-5 (|x|^2 + |y|^2)`` on the squared
    euclidean distance. A slot holding ``-1``, the query itself or an item already counted
    earlier in the row is a miss. For ``hamming`` the given distances are compared.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(100, 5))
    >>> idx, dist = knn_search(x, k=3)
    >>> estimate_recall(x, idx, dist, n_queries=20)
    1.0
    """
    from ccgraph._random import as_generator
    from ccgraph.graph._exact import exact_dense, exact_hamming

    arr = prepare_vectors(vectors, metric)
    n, k = indices.shape
    q = np.sort(as_generator(rng).choice(n, size=min(n_queries, n), replace=False))
    if metric == "hamming":
        _, ref_d = exact_hamming(arr, k, queries=q, n_jobs=1)
        return float((distances[q] <= ref_d[:, -1:]).mean())
    _, ref_d = exact_dense(arr, k, metric=metric, queries=q, n_jobs=1)
    listed = np.asarray(indices[q], dtype=np.int64)
    valid = (listed >= 0) & (listed < n) & (listed != q[:, None])
    order = np.argsort(listed, axis=1, kind="stable")
    ranked = np.take_along_axis(listed, order, axis=1)
    repeat = np.zeros_like(valid)
    np.put_along_axis(repeat, order[:, 1:], ranked[:, 1:] == ranked[:, :-1], axis=1)
    valid &= ~repeat
    a = arr[q].astype(np.float64)[:, None, :]
    b = arr[np.where(valid, listed, q[:, None])].astype(np.float64)
    kth = ref_d[:, -1:].astype(np.float64)
    if metric == "cosine":
        near = 1.0 - (a * b).sum(axis=2) <= kth + 1e-5
    else:
        slack = 1e-5 * ((a * a).sum(axis=2) + (b * b).sum(axis=2))
        near = ((b - a) ** 2).sum(axis=2) <= kth * kth + slack
    return float((valid & near).sum() / listed.size)
