"""What went wrong with an output path, said in one line: a full disk, a name too long, ..."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ccgraph.exceptions import OutputError

__all__ = ["OUT_OF_SPACE", "check_name_length", "output_error"]

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
