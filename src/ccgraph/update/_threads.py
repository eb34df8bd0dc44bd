"""One call on a thread of its own, for the update's stages that overlap."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["start"]

T = TypeVar("T")


def start(fn: Callable[..., T], *args: Any, name: str = "update", **kwargs: Any) -> Future[T]:
    """``fn(*args, **kwargs)`` on a thread of its own, which ends with the call.

    Nothing is left to shut down: the caller waits on the future (or lets it finish).

    Examples
    --------
    >>> start(sum, [1, 2, 3]).result()
    6
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix=f"ccgraph-{name}")
    try:
        return pool.submit(fn, *args, **kwargs)
    finally:
        pool.shutdown(wait=False)
