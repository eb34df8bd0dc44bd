"""``ccgraph query RUN_DIR --id ID | --text TEXT | --image PATH | --batch IN.parquet``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ccgraph.exceptions import InputError, OutputError

__all__ = ["add_commands", "format_answer"]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``query`` command."""
    p = subparsers.add_parser(
        "query",
        help="an image's clusters, related images and tags, from a finished run (read-only)",
        description="Answer per-item questions from a run directory without changing it: "
        "clusters (with strengths and secondary clusters), related items (local personalized "
        "PageRank) and tags (observed and inferred). New items (--text, --image) are embedded "
        "with the run's embedders and answered from their nearest stored items.",
    )
    p.add_argument("run_dir", type=Path, help="finished ccgraph run directory")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--id", dest="item_id", help="id of an item of the run")
    what.add_argument("--text", help="a new item described by text (title, description, tags)")
    what.add_argument("--image", type=Path, help="a new image file")
    what.add_argument(
        "--batch",
        type=Path,
        help="Parquet with a column id, text, image_path or vector (one query per row)",
    )
    p.add_argument("--out", type=Path, help="output Parquet for --batch (one row per query)")
    p.add_argument("--n", type=int, default=20, help="related items to list (default 20)")
    p.add_argument("--k", type=int, default=None, help="neighbours of a new item (default graph.k)")
    p.add_argument(
        "--epsilon", type=float, default=1e-4, help="local PageRank push threshold (1e-4)"
    )
    p.add_argument("--alpha", type=float, default=0.85, help="PageRank damping (0.85)")
    p.add_argument(
        "--duplicates",
        choices=("separate", "exclude", "include"),
        default="separate",
        help="near-duplicates of the item: listed separately (default), left out, or ranked",
    )
    p.add_argument(
        "--errors",
        choices=("record", "raise"),
        default="record",
        help="a --batch row that cannot be answered (an unknown id, an unreadable image): "
        "note it in the `error` column and answer the others (default), or stop",
    )
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=_query)


def _check_out(run_dir: Path, out: Path | None) -> Path:
    if out is None:
        raise InputError("--batch needs --out OUT.parquet for the answers")
    from ccgraph.io.atomic import check_name_length

    check_name_length(out.expanduser())
    target = out.expanduser().resolve()
    if target.is_relative_to(run_dir.expanduser().resolve()):
        raise OutputError(f"--out {out} is inside the run directory; a query never writes there")
    return target


def _query(args: argparse.Namespace) -> int:
    from ccgraph._validation import check_int
    from ccgraph.query.index import open_run

    # before opening the run or loading a model; --k is checked even for --id, which
    # does not use it, so a bad value is never accepted silently
    check_int("--n", args.n, low=1)
    if args.k is not None:
        check_int("--k", args.k, low=1)
    opts: dict[str, Any] = dict(
        n=args.n, epsilon=args.epsilon, alpha=args.alpha, duplicates=args.duplicates
    )
    if args.batch is not None:
        target = _check_out(args.run_dir, args.out)
        from ccgraph.io.atomic import atomic_path

        index = open_run(args.run_dir)
        frame = index.query_batch(args.batch, k=args.k, errors=args.errors, **opts)
        failed = frame.index[frame["error"].notna()].tolist() if "error" in frame else []
        if len(failed) and len(failed) == len(frame):
            raise InputError(
                f"{args.batch}: no row could be answered ({_row_errors(frame, failed)}); "
                "nothing written"
            )
        with atomic_path(target) as tmp:
            frame.to_parquet(tmp, index=False)
        msg = f"{len(frame) - len(failed)} answers written to {target}"
        if len(failed):
            msg += (
                f"; {len(failed)} rows not answered, see their `error` column "
                f"({_row_errors(frame, failed)})"
            )
        print(msg)
        return 0
    if args.out is not None:
        raise InputError("--out is for --batch; single answers are printed (use --json)")
    index = open_run(args.run_dir)
    if args.item_id is not None:
        ans = index.query(args.item_id, **opts)
    elif args.text is not None:
        ans = index.query_text(args.text, k=args.k, **opts)
    else:
        ans = index.query_image(args.image, k=args.k, **opts)
    if args.json:
        json.dump(ans.to_dict(), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_answer(ans))
    return 0


def _row_errors(frame: Any, rows: Any, shown: int = 3) -> str:
    """``row 2: <error>; row 5: <error> ...`` for the first ``shown`` failed rows (1-based)."""
    parts = [f"row {r + 1}: {frame['error'].iloc[r]}" for r in rows[:shown]]
    return "; ".join(parts) + (f"; and {len(rows) - shown} more" if len(rows) > shown else "")


def format_answer(ans: Any) -> str:
    """A short plain-text rendering of an :class:`~ccgraph.query.answers.ItemAnswer`."""
    c = ans.clusters
    lines = [f"query: {ans.query}", "clusters:"]
    for lev, cl, st, size, label in c.levels.itertuples(index=False):
        mark = " (default)" if lev == c.default_level else ""
        lines.append(f"  level {lev}{mark}: cluster {cl} strength {st:.3f} size {size} {label}")
    sec = c.secondary[c.secondary["level"] == c.default_level].head(5)
    for _, cl, share, _, label in sec.itertuples(index=False):
        lines.append(f"    also cluster {cl}: share {share:.3f} {label}")
    lines.append("related:")
    for row in ans.related.itertuples(index=False):
        title = f"  {row.title}" if "title" in ans.related.columns and row.title else ""
        lines.append(f"  {row.relation[:3]} {row.rank:>3} {row.id}  {row.score:.5f}{title}")
    lines.append("tags:")
    for row in ans.tags.itertuples(index=False):
        lines.append(f"  {row.tag}  {row.source}  confidence {float(row.confidence):.3f}")
    return "\n".join(lines) + "\n"
