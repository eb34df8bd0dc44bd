"""One call on a thread of its own, for the update's stages that overlap."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ccgraph._lane import Lane, current

__all__ = ["start", "wait_for"]

T = TypeVar("T")


def start(
    fn: Callable[..., T],
    *args: Any,
    name: str = "update",
    priority: int | None = None,
    **kwargs: Any,
) -> Future[T]:
    """``fn(*args, **kwargs)`` on a thread of its own, which ends with the call.

    Nothing is left to shut down: the caller waits on the future (or lets it finish). With a
    ``priority``, the call first waits for a slot of the current :class:`ccgraph._lane.Lane`
    (see :func:`wait_for`).

    Examples
    --------
    >>> start(sum, [1, 2, 3]).result()
    6
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix=f"ccgraph-{name}")
    try:
        if priority is None:
            return pool.submit(fn, *args, **kwargs)
        return pool.submit(_in_slot, current(), priority, fn, *args, **kwargs)
    finally:
        pool.shutdown(wait=False)


def _in_slot(lane: Lane, priority: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with lane.slot(priority):
        return fn(*args, **kwargs)


def wait_for(future: Future[T]) -> T:
    """``future.result()``, the caller's core lent to the current lane's jobs meanwhile."""
    with current().lend():
        return future.result()
