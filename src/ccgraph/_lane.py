"""Background jobs that share the cores the calling thread leaves free, one at a time.

An update runs its main thread and several background jobs (the writer's files, the
popularity solve, the recall check, ...). Started as plain threads, three of them at once on
two cores take half a core from the main thread, the update's critical path. A :class:`Lane`
lets as many background jobs run as there are cores besides the main thread, the most
urgent waiting job first, and gives the main thread's core to them while it waits for one
(:meth:`Lane.lend`).

Code that runs jobs asks :func:`current` for the active lane; outside :func:`use_lane` it is
a lane without limits, so the jobs run at once, as plain threads would.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ccgraph.exceptions import ParameterError

__all__ = ["Lane", "current", "use_lane"]

#: Priorities (lower runs first): results the main thread waits for soonest come first.
RECALL, SEEDS, TAGS_MASS, POPULARITY, WRITE = 0, 1, 1, 2, 3


class Lane:
    """At most ``slots`` background jobs at a time, the lowest ``priority`` first.

    ``slots=None`` sets no limit. Jobs that wait for a slot are served by priority, then in
    the order they asked; a running job is never interrupted. A job must not wait for
    another lane job while it holds a slot.

    Examples
    --------
    >>> lane = Lane(1)
    >>> with lane.slot(2):
    ...     lane.free
    0
    >>> with lane.lend():
    ...     lane.free
    2
    >>> lane.free
    1
    """

    def __init__(self, slots: int | None) -> None:
        if slots is not None and slots < 0:
            raise ParameterError(f"`slots` must be None or an integer >= 0; got {slots!r}")
        self._free = slots
        self._cond = threading.Condition()
        self._waiting: list[tuple[int, int]] = []
        self._order = itertools.count()
        self._held = threading.local()  # .priority: the slot this thread holds, if any

    @property
    def free(self) -> int | None:
        """Slots free now (``None``: no limit)."""
        return self._free

    @contextmanager
    def slot(self, priority: int) -> Iterator[None]:
        """Hold a slot for the body; wait for one first if none is free."""
        if self._free is None:
            yield
            return
        self._acquire(priority)
        self._held.priority = priority
        try:
            yield
        finally:
            self._held.priority = None
            self._release()

    def pause(self) -> None:
        """Let a more urgent waiting job run first, if any (a job's safe point; else a no-op)."""
        priority = getattr(self._held, "priority", None)
        if priority is None:
            return
        with self._cond:
            if not self._waiting or self._waiting[0][0] >= priority:
                return
        self._release()
        self._acquire(priority)

    @contextmanager
    def released(self) -> Iterator[None]:
        """Give the slot up for the body: a system call that waits (``fsync``) needs no core."""
        priority = getattr(self._held, "priority", None)
        if priority is None:
            yield
            return
        self._release()
        try:
            yield
        finally:
            self._acquire(priority)

    def _acquire(self, priority: int) -> None:
        with self._cond:
            me = (priority, next(self._order))
            heapq.heappush(self._waiting, me)
            self._cond.wait_for(lambda: self._free > 0 and self._waiting[0] == me)  # type: ignore[operator]
            heapq.heappop(self._waiting)
            self._free -= 1  # type: ignore[operator]
            self._cond.notify_all()

    def _release(self) -> None:
        with self._cond:
            self._free += 1  # type: ignore[operator]
            self._cond.notify_all()

    @contextmanager
    def lend(self) -> Iterator[None]:
        """One more slot for the body: the caller blocks (waits for a job), freeing its core."""
        if self._free is None:
            yield
            return
        with self._cond:
            self._free += 1
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._free -= 1  # may go below 0 while lent slots are in use: jobs then wait


_UNLIMITED = Lane(None)
_active: Lane = _UNLIMITED
_users = 0  # use_lane blocks running now (in any thread)
_guard = threading.Lock()


def current() -> Lane:
    """The lane of the running :func:`use_lane` block (one without limits outside it)."""
    return _active


def background_slots() -> int:
    """Cores this process may use, less the one the calling thread keeps (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@contextmanager
def use_lane(lane: Lane | None = None) -> Iterator[Lane]:
    """Make ``lane`` (by default one with :func:`background_slots` slots) the current one.

    The lane is process-wide: background jobs of every thread use it while the block runs.
    Blocks that overlap (updates in two threads, or nested) share the lane of the first one,
    which stays current until the last of them ends; then the lane without limits is back.
    """
    global _active, _users
    with _guard:
        if _users == 0:
            _active = Lane(background_slots()) if lane is None else lane
        _users += 1
        mine = _active
    try:
        yield mine
    finally:
        with _guard:
            _users -= 1
            if _users == 0:
                _active = _UNLIMITED
