"""``ccgraph report RUN_DIR [--out DIR]``: write the static HTML report of a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_commands"]


def _cmd_report(args: argparse.Namespace) -> int:
    from ccgraph.report import write_report

    index = write_report(
        args.run_dir,
        out=args.out,
        max_clusters=args.max_clusters,
        thumbnails=args.thumbnails,
        n_similar=args.n_similar,
        image_root=args.image_root,
        rng=args.seed,
    )
    sys.stdout.write(f"wrote {index}\n")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command to the ``ccgraph`` parser."""
    p = subparsers.add_parser(
        "report",
        help="write the static HTML report of a run directory",
        description="Write a self-contained HTML report (index.html + assets/) of a finished "
        "run: summary, plots, cluster contact sheets, similar images, inferred tags and the "
        "evaluation when present. Opens from disk; needs no server or network.",
    )
    p.add_argument("run_dir", type=Path, help="a finished ccgraph run directory")
    p.add_argument("--out", type=Path, default=None, help="report folder (default RUN_DIR/report)")
    p.add_argument("--max-clusters", type=int, default=30, help="clusters given their own page")
    p.add_argument("--thumbnails", type=int, default=24, help="thumbnails per cluster page")
    p.add_argument("--n-similar", type=int, default=12, help="neighbours per similar-images panel")
    p.add_argument(
        "--image-root",
        type=Path,
        default=None,
        help="folder against which relative image paths are resolved",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the samples shown")
    p.set_defaults(func=_cmd_report)
