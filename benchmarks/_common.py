"""Helpers shared by the benchmark scripts: timing, peak memory, table output.

Each benchmark prints its table and replaces its own section of ``docs/benchmarks.md``
(between ``<!-- bench:NAME -->`` markers), so scripts can run in any order.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Measured on this project's machine kind (2 cores, 24 GiB, no GPU) by the scripts in
`benchmarks/`; each script rewrites only its own section. Wall times are seconds; memory is the
process's peak resident set size. Other work may have been running on the machine, so read the
figures as upper bounds.
"""


def data_dir() -> Path:
    """The shared data folder (``$CCGRAPH_DATA_DIR`` or ``../shared/data``)."""
    env = os.environ.get("CCGRAPH_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.cpu0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu0


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; floats get 3 significant decimals."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def write_section(name: str, title: str, body: str, command: str) -> None:
    """Print ``body`` and replace the ``name`` section of docs/benchmarks.md with it."""
    sys.stdout.write(f"\n## {title}\n\n{body}\n")
    stamp = time.strftime("%Y-%m-%d")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\nReproduce: `{command}` ({stamp}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores)\n\n{body}\n"
        f"<!-- /bench:{name} -->"
    )
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if start in text and end in text:
        before = text.split(start)[0]
        after = text.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(DOC)
