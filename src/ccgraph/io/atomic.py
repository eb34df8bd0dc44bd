"""Crash-safe writing: every output goes to a temporary path first and is renamed into place.

A reader never sees a half-written file: a file is written beside its final path, flushed and
``fsync``-ed, then moved over the old one with :func:`os.replace` (atomic on POSIX and Windows
within one file system). A run directory is assembled in a temporary sibling directory and
swapped in by :func:`replace_directory` only once it is complete, so a killed run leaves the
previous run untouched.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ccgraph.exceptions import OutputError
from ccgraph.io._output_errors import OUT_OF_SPACE, check_name_length, output_error

__all__ = [
    "MANIFEST_NAME",
    "OUT_OF_SPACE",
    "atomic_path",
    "atomic_paths",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_name_length",
    "check_replaceable",
    "fsync_directory",
    "is_run_directory",
    "make_temp_dir",
    "output_error",
    "remove_stale_temp_dirs",
    "replace_directory",
    "swap_directory",
    "through_link",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def through_link(path: str | os.PathLike[str]) -> Path:
    """``path``, or where it points if it is a symbolic link (dangling or not).

    An output written "to a link" goes to the link's target and the link stays: renaming a
    finished file or folder over ``path`` itself would replace the user's link instead.
    """
    final = Path(path)
    check_name_length(final)
    return final.resolve() if final.is_symlink() else final


@functools.cache
def _umask() -> int:
    """The process umask (read once: setting it back and forth is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _usual_mode(path: Path, *, directory: bool) -> None:
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


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path`` atomically.

    Write the whole output to the yielded path inside the ``with`` block. When the block ends
    normally the file is ``fsync``-ed and renamed to ``path`` (replacing any old file); if the
    block raises, the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path
        The final file path. Its parent directory is created if needed.

    Raises
    ------
    OutputError
        The parent directory cannot be created or written, the name is too long, or the
        block raised an :class:`OSError` (the disk is full, ...): the message names ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    with atomic_paths(path) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike[str]) -> Iterator[list[Path]]:
    """:func:`atomic_path` for files that belong together: all are replaced, or none.

    The renames come after every file is written and ``fsync``-ed, with SIGINT and SIGTERM
    held back, so an interrupt never leaves new files beside old ones (it is raised after).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_paths(root / "a.txt", root / "b.txt") as (a, b):
    ...     _ = a.write_text("1"), b.write_text("2")
    >>> sorted(p.name for p in root.iterdir())
    ['a.txt', 'b.txt']
    """
    finals = [through_link(p) for p in paths]
    tmps: list[Path] = []
    try:
        for final in finals:
            tmps.append(_temp_file_beside(final))
        yield list(tmps)
        for tmp in tmps:
            _fsync_file(tmp)
        with _signals_held():
            for tmp, final in zip(tmps, finals, strict=True):
                os.replace(tmp, final)
    except BaseException as exc:
        for tmp in tmps:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            # the block only writes the temporary files: its failure (a full disk, ...) is
            # the output's
            raise output_error(finals[0] if len(finals) == 1 else finals[0].parent, exc) from exc
        raise
    for parent in {final.parent for final in finals}:
        fsync_directory(parent)


def _temp_file_beside(final: Path) -> Path:
    check_name_length(final)
    if final.is_dir():
        raise OutputError(
            f"cannot write the file {final}: a directory of that name exists; give a file "
            "path (not a folder) or another name"
        )
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise output_error(final.parent, exc) from exc
    os.close(fd)
    _usual_mode(Path(name), directory=False)
    return Path(name)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
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
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)  # now to the usual handler (Ctrl-C: KeyboardInterrupt)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename); return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename); return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def is_run_directory(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a ccgraph run: a ``manifest.json`` with a ccgraph schema version."""
    manifest = Path(path) / MANIFEST_NAME
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and isinstance(data.get("schema_version"), int)
        and "ccgraph_version" in data
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only checks that the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temp_dirs(final_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary directories left beside ``final_dir`` by writers that were killed.

    Only directories named by :func:`make_temp_dir` whose creating process no longer exists
    are removed, so a concurrent writer's directory is never touched.
    """
    final = through_link(final_dir)
    removed: list[Path] = []
    pattern = re.compile(rf"^\.{re.escape(final.name)}\.tmp-(\d+)-")
    if not final.parent.is_dir():
        return removed
    for entry in final.parent.iterdir():
        m = pattern.match(entry.name)
        if m and entry.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            logger.info("removed %s, left by an interrupted run", entry)
    return removed


def make_temp_dir(final_dir: str | os.PathLike[str]) -> Path:
    """Create an empty temporary directory beside ``final_dir`` (same file system).

    Its name, ``.<name>.tmp-<pid>-<random>``, lets :func:`remove_stale_temp_dirs` recognise
    it after a crash.

    Raises
    ------
    OutputError
        The parent of ``final_dir`` cannot be created or written.
    """
    final = through_link(final_dir)
    parent = final.parent
    check_name_length(final)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{final.name}.tmp-{os.getpid()}-"
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as exc:
        raise output_error(parent, exc) from exc
    _usual_mode(tmp, directory=True)
    return tmp


def _exchange(a: Path, b: Path) -> bool:
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


def refuse_existing_run(final_dir: str | os.PathLike[str], *, overwrite: bool, hint: str) -> None:
    """Raise :class:`OutputError` if ``final_dir`` holds a run and ``overwrite`` is false.

    ``hint`` ends the message: how to replace the run, or where else to write.
    """
    final = Path(final_dir)
    if check_replaceable(final) and not overwrite and any(final.iterdir()):
        raise OutputError(f"{final} already holds a run; {hint}")


def check_replaceable(final_dir: str | os.PathLike[str]) -> bool:
    """Return whether ``final_dir`` exists; raise :class:`OutputError` if it may not be replaced.

    A missing or empty directory, or an earlier ccgraph run, may be replaced.
    """
    final = Path(final_dir)
    check_name_length(final)
    if not final.exists():
        return False
    if not final.is_dir():
        raise OutputError(
            f"refusing to replace {final}: it is a file, not a run directory; choose another "
            "output directory"
        )
    if any(final.iterdir()) and not is_run_directory(final):
        raise OutputError(
            f"refusing to replace {final}: it is not empty and is not a ccgraph run directory "
            f"(no {MANIFEST_NAME} with a ccgraph schema_version); choose another output "
            "directory or empty this one"
        )
    return True


def replace_directory(tmp_dir: str | os.PathLike[str], final_dir: str | os.PathLike[str]) -> Path:
    """Move a finished directory ``tmp_dir`` to ``final_dir``, replacing an older run there.

    The old directory is kept until the new one is complete: on Linux both are swapped in one
    atomic ``renameat2(RENAME_EXCHANGE)`` call; elsewhere the old run is first renamed aside
    and restored if the second rename fails. The old run is deleted only after the swap.

    Parameters
    ----------
    tmp_dir
        A complete directory, on the same file system as ``final_dir`` (see
        :func:`make_temp_dir`).
    final_dir
        Where the directory should end up. It may be absent, empty, or a previous ccgraph run;
        anything else is refused.

    Raises
    ------
    OutputError
        ``final_dir`` is a file, or a non-empty directory that is not a ccgraph run, or the
        rename is not permitted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> tmp = make_temp_dir(root / "run")
    >>> _ = (tmp / "manifest.json").write_text('{"schema_version": 1, "ccgraph_version": "0"}')
    >>> replace_directory(tmp, root / "run").name
    'run'
    """
    exists = check_replaceable(final_dir)
    return swap_directory(tmp_dir, final_dir, exists=exists)


def swap_directory(
    tmp_dir: str | os.PathLike[str], final_dir: str | os.PathLike[str], *, exists: bool
) -> Path:
    """Move ``tmp_dir`` to ``final_dir``, atomically replacing the directory there if ``exists``.

    As :func:`replace_directory` without its check of what ``final_dir`` holds: for a caller
    that has checked it itself (a report folder is not a run).

    Raises
    ------
    OutputError
        The rename is not permitted (the message names the parent folder).
    """
    tmp = Path(tmp_dir)
    final = through_link(final_dir)
    try:
        if not exists:
            os.replace(tmp, final)
            fsync_directory(final.parent)
            return final
        if _exchange(tmp, final):
            old = tmp  # after the swap the old run sits at the temporary path
        else:
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            try:
                os.replace(tmp, final)
            except OSError:
                os.replace(old, final)
                raise
        fsync_directory(final.parent)
    except OSError as exc:
        raise output_error(final.parent, exc) from exc
    shutil.rmtree(old, ignore_errors=True)
    logger.debug("replaced %s", final)
    return final
