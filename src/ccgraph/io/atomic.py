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
import errno
import functools
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ccgraph.exceptions import OutputError

__all__ = [
    "MANIFEST_NAME",
    "atomic_path",
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
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


#: errno values that mean the disk (or the user's quota) is full.
OUT_OF_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG})
#: Room a final name needs for the temporary names made beside it (``.<name>.tmp-<pid>-<rand>``).
_TEMP_NAME_ROOM = 40


def output_error(where: Path, exc: OSError) -> OutputError:
    """An :class:`OutputError` naming ``where`` and what to do about ``exc``."""
    if exc.errno in OUT_OF_SPACE:
        return OutputError(
            f"cannot write to {where}: no space left on the device (or the disk quota is "
            "used up); free some space or choose an output directory on another disk "
            "(`output.dir` in the config or `--out`). Nothing was replaced"
        )
    if exc.errno == errno.ENAMETOOLONG:
        return OutputError(
            f"cannot write to {where}: a file name is too long for the file system; choose a "
            "shorter output name (`output.dir` in the config or `--out`)"
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(
        f"cannot write to {where}: {reason}; choose a writable output directory "
        "(`output.dir` in the config or `--out`) or fix its permissions"
    )


def check_name_length(path: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputError` if an output path has a name the file system cannot hold.

    Every component must fit the file system's name limit (``NAME_MAX``, usually 255 bytes)
    and the last one must also leave room for the temporary names written beside it.

    Examples
    --------
    >>> check_name_length("/tmp/run")
    >>> check_name_length("/tmp/" + "x" * 300)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ccgraph.exceptions.OutputError: cannot write 'xxx...' in /tmp: the name has 300 bytes ...
    """
    final = Path(path)
    limit = 255
    for parent in final.parents:
        try:
            limit = os.pathconf(parent, "PC_NAME_MAX")
            break
        except (OSError, ValueError, AttributeError):  # missing, a too-long name, not POSIX
            continue
    parts = final.parts
    for i, part in enumerate(parts):
        room = _TEMP_NAME_ROOM if i == len(parts) - 1 else 0
        size = len(os.fsencode(part))
        if size + room > limit:
            shown = part if len(part) <= 40 else f"{part[:40]}..."
            raise OutputError(
                f"cannot write {shown!r} in {Path(*parts[:i]) if i else final.anchor}: the "
                f"name has {size} bytes and may have at most {limit - room} here ({limit} on "
                "this file system, less room for temporary names); choose a shorter output "
                "name (`output.dir` in the config or `--out`)"
            )


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
    final = Path(path)
    parent = final.parent
    check_name_length(final)
    if final.is_dir():
        raise OutputError(
            f"cannot write the file {final}: a directory of that name exists; give a file "
            "path (not a folder) or another name"
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise output_error(parent, exc) from exc
    os.close(fd)
    tmp = Path(name)
    _usual_mode(tmp, directory=False)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            # the block only writes ``tmp``: its failure (a full disk, ...) is the output's
            raise output_error(final, exc) from exc
        raise
    fsync_directory(parent)


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
    final = Path(final_dir)
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
    final = Path(final_dir)
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
    final = Path(final_dir)
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
