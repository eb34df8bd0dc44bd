"""``ccgraph update RUN_DIR NEW_CATALOG --out DIR``: a thin wrapper over :func:`update_run`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ccgraph.exceptions import InputError

__all__ = ["add_commands"]

#: Config keys holding paths: relative values given on the command line resolve against the
#: working directory (the run's recorded config resolves against its own folder).
_PATH_KEYS = (
    "embed.precomputed.path",
    "embed.precomputed.ids_path",
    "embed.cache_dir",
    "data.image_root",
)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``update`` command."""
    p = subparsers.add_parser(
        "update",
        help="add, replace and remove items of a run without rebuilding it",
        description="Embed only the new catalog rows, update the graph around them, refine the "
        "clusters from the previous ones (stable IDs), spread tags and popularity again, and "
        "write a new run directory with drift.json / drift.md. The input run is not modified.",
    )
    p.add_argument("run_dir", type=Path, help="the run directory to update")
    p.add_argument("new_catalog", type=Path, help="catalog file with the new / changed rows")
    p.add_argument("--out", type=Path, required=True, help="the new run directory")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the run's config, e.g. --set update.drift_threshold=0.1, or "
        "--set embed.precomputed.path=new_vectors.npy (repeatable)",
    )
    p.add_argument(
        "--remove",
        type=Path,
        default=None,
        help="text file of ids to remove, one a line (besides rows flagged removed_from_source)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed (default: the run's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run at --out")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_update)


def _absolute_paths(overrides: list[str]) -> list[str]:
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if (
            sep
            and key.strip() in _PATH_KEYS
            and value
            and not Path(value).expanduser().is_absolute()
        ):
            value = str(Path(value).expanduser().resolve())
        out.append(f"{key}{sep}{value}")
    return out


def _read_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"--remove: file not found: {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _cmd_update(args: argparse.Namespace) -> int:
    from ccgraph.update.run import update_run

    result = update_run(
        args.run_dir,
        args.new_catalog,
        out=args.out,
        overrides=_absolute_paths(list(args.set)),
        remove=_read_ids(args.remove) if args.remove else (),
        rng=args.seed,
        overwrite=args.overwrite,
        show_progress=not args.quiet,
    )
    upd = result.manifest.get("stages", {}).get("update", {})
    ch = upd.get("changes", {})
    churn = upd.get("churn") or [0.0]
    default = int(result.manifest.get("stages", {}).get("cluster", {}).get("default_level", 0))
    msg = (
        f"wrote {result.path}: {ch.get('added', 0)} added, {ch.get('replaced', 0)} replaced, "
        f"{ch.get('edited', 0)} edited, {ch.get('removed', 0)} removed; "
        f"{len(result.items)} items; churn {churn[min(default, len(churn) - 1)]:.2%} at the "
        "default level"
    )
    if upd.get("rebuild_recommended"):
        msg += "; a full rebuild is recommended (see drift.md)"
    sys.stdout.write(msg + "\n")
    return 0
