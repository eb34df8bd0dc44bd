"""Timed stage logging and progress bars (never print in the library)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StageTimer", "timed"]

logger = logging.getLogger("ccgraph")


class StageTimer:
    """Collects wall-clock seconds per named stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body, log it, and add the seconds under ``name``."""
        with timed(name) as box:
            yield
        self.timings[name] = self.timings.get(name, 0.0) + box[0]


@contextmanager
def timed(stage: str, log: logging.Logger | None = None) -> Iterator[list[float]]:
    """Log the start and the wall time of ``stage``; yields a one-element list with the seconds."""
    log = log or logger
    box = [0.0]
    log.info("%s ...", stage)
    start = time.perf_counter()
    try:
        yield box
    except BaseException:
        # not "done": an error or an interrupt stopped it (the CLI says which, next)
        box[0] = time.perf_counter() - start
        log.info("%s stopped after %.2f s", stage, box[0])
        raise
    box[0] = time.perf_counter() - start
    log.info("%s done in %.2f s", stage, box[0])
