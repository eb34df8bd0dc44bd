"""``ccgraph evaluate CONFIG``: the evaluation harness on the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_commands"]


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ccgraph.config import load_config
    from ccgraph.evaluate.harness import run_evaluation

    cfg = load_config(args.config, args.set)
    result = run_evaluation(cfg, out=args.out)
    table = result.table()
    sys.stdout.write(f"wrote {result.path} ({result.info.get('seconds', 0):.1f} s)\n")
    cols = [c for c in ("accuracy", "precision@5", "recall@5", "ap") if c in table.columns]
    for method, row in table[cols].iterrows():
        sys.stdout.write(f"  {method:24s} " + "  ".join(f"{c}={row[c]}" for c in cols) + "\n")
    for method, why in dict(result.info.get("skipped") or {}).items():
        sys.stdout.write(f"  {method:24s} skipped: {why}\n")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the ``ccgraph`` command line."""
    text = (
        "hide tags (or use the Planetoid split), run ccgraph and the baselines on the same "
        "split, and write metrics with 95% bootstrap CIs"
    )
    # argparse %-formats `help` (the command list) but prints `description` as written
    p = subparsers.add_parser("evaluate", help=text.replace("%", "%%"), description=text)
    p.add_argument("config", type=Path, help="the YAML config file (see configs/eval-*.yaml)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for metrics.json, per_repeat.parquet and evaluation.md "
        "(default: <output.dir>/evaluation)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set evaluate.repeats=5 (repeatable)",
    )
    p.set_defaults(func=_cmd_evaluate)
