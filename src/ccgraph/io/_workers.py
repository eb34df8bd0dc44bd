"""A job queue whose threads can be added while it runs (the run-directory writer's)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ccgraph._lane import WRITE, current

__all__ = ["Workers"]

T = TypeVar("T")


class Workers:
    """A job queue served by threads that can be added while it runs (one, then two).

    While the caller still assembles the run, one thread writes, so the caller keeps a core;
    :meth:`RunWriter.finish` adds the second. Each job runs in a slot of the lane that was
    current when it was submitted (:mod:`ccgraph._lane`; no limit outside an update).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn, current()))
        return future

    def grow(self, n: int) -> None:
        while len(self._threads) < n:
            thread = threading.Thread(
                target=self._serve, name=f"write_run_{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, lane = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                with lane.slot(WRITE):
                    value = fn()
                future.set_result(value)
            except BaseException as exc:  # handed to the thread that waits for it
                future.set_exception(exc)

    def shutdown(self, *, cancel: bool = False) -> None:
        if cancel:
            pending = []
            while True:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in pending:
                if item is not None:
                    item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []
