"""Low-level file-system steps of the atomic writers: fsync, file modes, renames, signals."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "exchange",
    "fsync_directory",
    "fsync_file",
    "pid_alive",
    "signals_held",
    "usual_mode",
]

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


@functools.cache
def _umask() -> int:
    """The process umask (read once: setting it back and forth is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def usual_mode(path: Path, *, directory: bool) -> None:
    """Give a ``mkstemp`` / ``mkdtemp`` path (mode 0600 / 0700) the mode a plain create gets."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry to disk so a completed rename survives a power cut.

    A no-op where directories cannot be opened (Windows).
    """
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block ends, then deliver them.

    Python runs signal handlers in the main thread only, so this works there (a blocked
    signal mask would not: any other thread can take a process signal); elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous: dict[int, Any] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler is not None:  # None: a handler installed from C, left alone
                previous[signum] = signal.signal(signum, lambda n, _f: pending.append(n))
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)
        for caught in dict.fromkeys(pending):
            signal.raise_signal(caught)  # now to the usual handler (Ctrl-C: KeyboardInterrupt)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only checks that the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False if unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0
