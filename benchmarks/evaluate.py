"""Run the evaluation configs and regenerate the measured tables of docs/evaluation.md.

Usage::

    python -m benchmarks.evaluate                 # every configs/eval-*.yaml
    python -m benchmarks.evaluate cora citeseer   # a subset (names after "eval-")

Each config writes its own ``<output.dir>/evaluation`` folder; this script copies the
comparison table of each into docs/evaluation.md between ``<!-- table:NAME -->`` markers and
records wall time and peak memory in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks._common import REPO, Timer, data_dir, markdown_table, peak_rss_mb, write_section

DOC = REPO / "docs" / "evaluation.md"
NAMES = (
    "cora",
    "citeseer",
    "openverse-user",
    "openverse-machine",
    "openverse-coldstart",
    "flickr8k-cnn",
    "flickr8k-pixels",
)


def _replace_table(name: str, body: str) -> None:
    start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
    text = DOC.read_text() if DOC.exists() else ""
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        text = text.split(start)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(DOC)


def _local_data(cfg_path, overrides: list[str]) -> list[str]:
    """Point ``data.path`` at ``data_dir()`` when the config's ``../../shared/data`` is absent.

    The configs assume the repository sits beside ``shared/``; a checkout elsewhere (a git
    worktree, CI) finds the data through ``CCGRAPH_DATA_DIR`` instead.
    """
    import yaml

    raw = yaml.safe_load(cfg_path.read_text())
    path = str(raw.get("data", {}).get("path", ""))
    marker = "shared/data/"
    if marker not in path or (cfg_path.parent / path).exists():
        return overrides
    local = data_dir() / path.split(marker, 1)[1]
    return [f"data.path={local}", *overrides]


def _tables(md: str) -> str:
    """The result and paired-difference tables of an evaluation.md, headings demoted."""
    keep, skip = [], False
    for line in md.splitlines()[1:]:
        if line.startswith("## "):
            skip = not line.startswith(("## Paired", "## Counts", "## Clusters", "## Popularity"))
            if not skip:
                keep.append("#### " + line[3:])
            continue
        if not skip:
            keep.append(line)
    return "\n".join(keep).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(NAMES))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--tables-only",
        action="store_true",
        help="only copy the tables of existing <output.dir>/evaluation folders into the doc",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("CCGRAPH_DATA_DIR", str(data_dir()))
    from ccgraph.config import load_config
    from ccgraph.evaluate.harness import run_evaluation

    rows = []
    for name in args.names:
        cfg_path = REPO / "configs" / f"eval-{name}.yaml"
        cfg = load_config(cfg_path, _local_data(cfg_path, args.set))
        if args.tables_only:
            from ccgraph._stages import resolve_out_dir

            md = resolve_out_dir(cfg, None) / "evaluation" / "evaluation.md"
            _replace_table(name, _tables(md.read_text()))
            continue
        with Timer() as t:
            result = run_evaluation(cfg)
        assert result.path is not None
        _replace_table(name, _tables((result.path / "evaluation.md").read_text()))
        rows.append(
            [
                name,
                f"{t.seconds:.0f}",
                f"{t.cpu_seconds:.0f}",
                f"{peak_rss_mb():.0f}",
                str(
                    result.path.relative_to(REPO)
                    if result.path.is_relative_to(REPO)
                    else result.path
                ),
            ]
        )
        sys.stdout.write(f"{name}: {t.seconds:.0f} s\n")
    if args.tables_only:
        return 0
    body = markdown_table(["config", "wall s", "cpu s", "peak RSS MB (cumulative)", "output"], rows)
    write_section(
        "evaluate",
        "Evaluation harness (configs/eval-*.yaml)",
        body,
        "python -m benchmarks.evaluate " + " ".join(args.names),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
