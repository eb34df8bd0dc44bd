"""How the update's advantage over a full run changes with the size of the run.

For each ``--sizes`` value: the synthetic mixture of ``benchmarks/_update_data.py`` (1 % new
items), a base run, then in one process (warm: imports and JIT paid by a first call of each,
not counted) full rebuilds and updates from the same precomputed vectors, alternating
(``ROUNDS`` rounds of a rebuild and two updates), so that a change of the machine's speed
over the minutes this takes touches both alike; the update's peak memory is measured in a
fresh process of its own. The agreement figures are in the ``update`` section
(``python -m benchmarks.update``); this one is speed only.

Run from the repository root: ``python -m benchmarks.update_scaling [--sizes 100000 300000]``.
Prints the table and rewrites the ``update-scaling`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from benchmarks._common import markdown_table, write_section
from benchmarks.update import _spawn

#: Rounds of one full rebuild then two updates, after one warm-up call of each.
ROUNDS = 3


def _size(work: Path, n: int) -> list[str]:
    from benchmarks._update_data import make_synthetic

    folder = work / f"synthetic-{n}"
    if not (folder / "truth.parquet").exists():
        make_synthetic(folder, n=n, new_fraction=0.01)
    for name in ("run_base", "run_full"):
        shutil.rmtree(folder / f".{name}.cache", ignore_errors=True)
    base = _spawn(
        {"kind": "run", "config": str(folder / "base.yaml"), "out": str(folder / "run_base")}
    )
    overrides = [
        f"embed.precomputed.path={folder / 'new_vectors.npy'}",
        f"embed.precomputed.ids_path={folder / 'new_ids.txt'}",
    ]
    update = {
        "kind": "update",
        "run_dir": str(folder / "run_base"),
        "batch": str(folder / "new.csv"),
        "set": overrides,
        "out": str(folder / "run_update"),
    }
    rebuild = {"kind": "run", "config": str(folder / "full.yaml"), "out": str(folder / "run_full")}
    # one process: both warm, and alternating, so both see the machine at the same speeds
    both = _spawn(
        {"kind": "alternate", "jobs": [rebuild, update], "rounds": ROUNDS, "per_round": [1, 2]}
    )
    full, upd = both["results"]
    fresh = _spawn({**update, "out": str(folder / "run_update_fresh")})  # its own peak memory
    return [
        f"{n:,}",
        f"{base['wall_s']:.1f}",
        f"{full['wall_s']:.1f} ({min(full['walls_s']):.1f}–{max(full['walls_s']):.1f})",
        f"{upd['wall_s']:.2f} ({min(upd['walls_s']):.2f}–{max(upd['walls_s']):.2f})",
        f"{full['wall_s'] / upd['wall_s']:.1f}x",
        f"{full['cpu_s'] / upd['cpu_s']:.1f}x",
        f"{fresh['peak_mb']:.0f}",
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    p.add_argument("--work", type=Path, default=Path("/tmp/ccgraph-bench-update"))
    args = p.parse_args()
    load0 = os.getloadavg()[0]
    rows = [_size(args.work, n) for n in args.sizes]
    body = markdown_table(
        [
            "items",
            "base run s",
            "full rebuild s, warm (range)",
            "update s, warm (range)",
            "speed-up, wall",
            "speed-up, CPU",
            "update peak MB (fresh process)",
        ],
        rows,
    )
    body += (
        f"\n\n1 % new items each time. One process per size, warm (imports and JIT paid by a "
        f"first update and a first full rebuild, not counted), then {ROUNDS} rounds of a full "
        f"rebuild and two updates: the medians of {ROUNDS} full rebuilds and {2 * ROUNDS} "
        f"updates, alternating so that both see the machine at the same speeds. Load average "
        f"(1 min) at the start: {load0:.1f}; at the end: {os.getloadavg()[0]:.1f} (2 cores).\n"
    )
    write_section(
        "update-scaling",
        "Incremental updates: speed against run size",
        body,
        "python -m benchmarks.update_scaling",
    )


if __name__ == "__main__":
    main()
