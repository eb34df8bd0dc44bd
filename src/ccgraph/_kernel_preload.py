"""Load a job's cached numba kernels on a thread while the job reads its inputs.

In a fresh process, the first call of a ``cache=True`` kernel costs far more than the kernel:
importing numba (~0.25 s), setting up its CPU target (~0.3 s, once) and loading the kernel's
machine code from the cache (a few ms each). An update reaches its first kernel only after it
has read the run and the batch, so :func:`preload_kernels` does that work on a thread from the
start: it loads every overload the cache holds for this machine and this source. A kernel that
is not loaded in time, or whose signature the cache lacks, is loaded or compiled at its first
call as before, so results never depend on the thread.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["preload_kernels"]

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
#: Modules whose kernels this process has already preloaded (or is preloading).
_STARTED: set[str] = set()


def preload_kernels(modules: Sequence[str]) -> threading.Thread | None:
    """Start loading the cached kernels of ``modules`` on a thread; once per module.

    Parameters
    ----------
    modules
        Dotted names of modules defining ``numba.njit(cache=True)`` kernels.

    Returns
    -------
    threading.Thread or None
        The loading thread, or ``None`` when there is nothing left to load (every module was
        started before, or ``NUMBA_DISABLE_JIT`` is set). The thread is not a daemon, so the
        interpreter never exits in the middle of loading machine code; it takes well under a
        second.

    Examples
    --------
    >>> thread = preload_kernels(["ccgraph.update._knn_kernels"])
    >>> thread is None or thread.join() is None
    True
    >>> preload_kernels(["ccgraph.update._knn_kernels"]) is None  # already started
    True
    """
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return None
    with _LOCK:
        todo = [name for name in modules if name not in _STARTED]
        _STARTED.update(todo)
    if not todo:
        return None
    thread = threading.Thread(target=_load_modules, args=(todo,), name="ccgraph-kernels")
    thread.start()
    return thread


def _load_modules(modules: Iterable[str]) -> None:
    """Load every cached overload of the kernels defined in ``modules`` (errors only logged)."""
    start = time.perf_counter()
    try:
        from numba.core.dispatcher import Dispatcher
        from numba.core.registry import cpu_target

        codegen = cpu_target.target_context.codegen()
    except Exception as exc:  # a head start only: the kernels still load at their first call
        logger.debug("kernel preload skipped: %s", exc)
        return
    n_loaded = 0
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            logger.debug("kernel preload: cannot import %s: %s", name, exc)
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and value.py_func.__module__ == name:
                n_loaded += _load_cached(value, codegen)
    logger.debug(
        "preloaded %d cached kernel overloads in %.2f s", n_loaded, time.perf_counter() - start
    )


def _load_cached(dispatcher: Any, codegen: Any) -> int:
    """Load the overloads of ``dispatcher`` its cache holds for this machine; how many."""
    cache = getattr(dispatcher, "_cache", None)
    try:
        keys = list(cache._cache_file._load_index())  # type: ignore[union-attr]
    except Exception:  # no cache (cache=False) or numba changed its private layout
        return 0
    n = 0
    for key in keys:
        try:
            # only entries a load would hit: another CPU's or a stale entry would compile
            if key != cache._index_key(key[0], codegen):  # type: ignore[union-attr]
                continue
            dispatcher.compile(key[0])
            n += 1
        except Exception as exc:
            logger.debug("kernel preload of %s failed: %s", dispatcher.py_func.__name__, exc)
    return n
