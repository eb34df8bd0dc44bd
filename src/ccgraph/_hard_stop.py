"""Ctrl-C and SIGTERM during long C calls that hold the GIL (Leiden).

Python runs a signal handler only when the main thread returns to the interpreter, so while
igraph's or leidenalg's Leiden runs (one call that holds the GIL, minutes on a large graph),
Ctrl-C does nothing until the call returns. (The kNN searches return to Python between
passes, so they stop within a second anyway.) In the ``ccgraph`` command (a process of
its own) such calls run with the default dispositions instead: the signal ends the process
at once, as it ends any Unix tool (the shell reports 130 / 143). Nothing is left half
written: outputs are only ever renamed into place when complete, checkpoints are written
atomically, and a killed writer's temporary folder is removed by the next write to the same
output. In a Python session (a notebook, a script) nothing changes: a process that is not
ccgraph's own must not be ended by an interrupt that its own handler would catch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["LONG_CALL_WORK", "enabled", "stop_at_once"]

_STATE = {"enabled": False}
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def enabled() -> Iterator[None]:
    """Let :func:`stop_at_once` act inside the block (the ``ccgraph`` command's)."""
    previous = _STATE["enabled"]
    _STATE["enabled"] = True
    try:
        yield
    finally:
        _STATE["enabled"] = previous


#: Below this many graph entries (about 1.3 million items at ``graph.k: 15``) one Leiden call
#: is short enough to wait for (about a second at 1.4 million entries, on 2 cores): the
#: signal is then handled as everywhere else (a message, the temporary folder removed, exit
#: 130 / 143).
LONG_CALL_WORK = 20_000_000


@contextlib.contextmanager
def stop_at_once(work: int) -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM end the process at once (command line only).

    For a call that holds the GIL for long: ``work`` (graph entries) of at least
    :data:`LONG_CALL_WORK`. A no-op for less work, outside :func:`enabled`, and outside the
    main thread (signals reach only the main thread). Only signals handled in Python are
    switched (an ignored one stays ignored); their handlers are restored after the block.

    Examples
    --------
    >>> with stop_at_once(work=10):
    ...     total = sum(range(10))
    >>> total
    45
    """
    main = threading.current_thread() is threading.main_thread()
    if not _STATE["enabled"] or not main or work < LONG_CALL_WORK:
        yield
        return
    # only Python-level handlers are set aside: an ignored signal (a background job's
    # SIGINT) stays ignored
    previous = {sig: h for sig in _SIGNALS if callable(h := signal.getsignal(sig))}
    for sig in previous:
        signal.signal(sig, signal.SIG_DFL)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
