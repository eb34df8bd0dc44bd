"""Crash-safe writing: every output goes to a temporary path first and is renamed into place.

A reader never sees a half-written file: a file is written beside its final path, flushed and
``fsync``-ed, then moved over the old one with :func:`os.replace` (atomic on POSIX and Windows
within one file system). A run directory is assembled in a temporary sibling directory and
swapped in by :func:`replace_directory` only once it is complete, so a killed run leaves the
previous run untouched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ccgraph.exceptions import OutputError
from ccgraph.io._fs import (
    exchange as _exchange,
)
from ccgraph.io._fs import (
    fsync_directory,
    fsync_file,
    pid_alive,
    signals_held,
    usual_mode,
)
from ccgraph.io._output_errors import OUT_OF_SPACE, check_name_length, output_error

__all__ = [
    "MANIFEST_NAME",
    "OUT_OF_SPACE",
    "atomic_path",
    "atomic_paths",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_name_length",
    "check_not_mount_point",
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


def through_link(path: str | os.PathLike[str]) -> Path:
    """``path``, or where it points if it is a symbolic link (dangling or not).

    An output written "to a link" goes to the link's target and the link stays: renaming a
    finished file or folder over ``path`` itself would replace the user's link instead.
    """
    final = Path(path)
    check_name_length(final)
    return final.resolve() if final.is_symlink() else final


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
            fsync_file(tmp)
        with signals_held():
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
    usual_mode(Path(name), directory=False)
    return Path(name)


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
        if m and entry.is_dir() and not pid_alive(int(m.group(1))):
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
    usual_mode(tmp, directory=True)
    return tmp


def refuse_existing_run(final_dir: str | os.PathLike[str], *, overwrite: bool, hint: str) -> None:
    """Raise :class:`OutputError` if ``final_dir`` holds a run and ``overwrite`` is false.

    ``hint`` ends the message: how to replace the run, or where else to write.
    """
    final = Path(final_dir)
    if check_replaceable(final) and not overwrite and any(final.iterdir()):
        raise OutputError(f"{final} already holds a run; {hint}")


def check_not_mount_point(final_dir: str | os.PathLike[str]) -> None:
    """Raise :class:`OutputError` if ``final_dir`` is a mount point.

    An output folder is replaced as a whole (a finished folder renamed into its place), which
    a mount point cannot be; checked before any work, not at the final rename.
    """
    final = through_link(final_dir)
    if final.is_dir() and os.path.ismount(final):
        raise OutputError(
            f"cannot write to {final}: it is a mount point, and an output folder is replaced "
            f"as a whole, which a mount point cannot be; write into a folder inside it "
            f"(e.g. --out {final / 'run'})"
        )


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
    check_not_mount_point(final)
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
    try:
        return swap_directory(tmp_dir, final_dir, exists=exists)
    except _Appeared:
        # another writer finished the same run directory first: check what it is, then
        # replace it as an earlier run (the last writer wins, never a mix)
        return swap_directory(tmp_dir, final_dir, exists=check_replaceable(final_dir))


class _Appeared(OutputError):
    """``final_dir`` was created by someone else after it was found absent."""


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
            try:
                os.replace(tmp, final)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
                    raise
                raise _Appeared(
                    f"{final} appeared while this output was written (another ccgraph "
                    "process writing the same folder?); nothing was replaced: run again or "
                    "choose another output directory"
                ) from exc
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
        if isinstance(exc, OutputError):
            raise
        raise output_error(final.parent, exc) from exc
    shutil.rmtree(old, ignore_errors=True)
    logger.debug("replaced %s", final)
    return final
