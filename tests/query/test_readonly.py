"""A query never writes into the run directory, and works on a read-only copy."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd

from ccgraph.query import open_run
from ccgraph.query.cli import add_commands


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    return {
        str(p.relative_to(root)): (
            p.stat().st_mtime_ns,
            p.stat().st_size,
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "",
        )
        for p in sorted(root.rglob("*"))
    } | {".": (root.stat().st_mtime_ns, 0, "")}


def exercise(run: Path, tmp: Path) -> None:
    index = open_run(run)
    for item in ("it0000", "it0140", "it0077"):
        index.clusters(item)
        index.related(item, 5)
        index.tags(item)
    vec = np.asarray(index.embeddings["precomputed"].vectors[4])
    index.query_vector(vec, exclude=["it0004"], method="clusters")
    index.query_vector(vec, method="exact")
    index.query_batch(["it0001", "it0002"])
    src = tmp / "ids.parquet"
    pd.DataFrame({"id": ["it0003"]}).to_parquet(src)
    import argparse

    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers())
    for argv in (
        ["query", str(run), "--id", "it0005", "--json"],
        ["query", str(run), "--batch", str(src), "--out", str(tmp / "out.parquet")],
    ):
        args = p.parse_args(argv)
        assert args.func(args) == 0


def test_queries_leave_the_run_untouched(run_dir: Path, tmp_path: Path, capsys) -> None:
    before = snapshot(run_dir)
    exercise(run_dir, tmp_path)
    assert snapshot(run_dir) == before


def test_queries_work_on_a_read_only_copy(run_dir: Path, tmp_path: Path, capsys) -> None:
    ro = tmp_path / "ro"
    shutil.copytree(run_dir, ro)
    for p in [ro, *ro.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        before = snapshot(ro)
        assert not os.access(ro / "items.parquet", os.W_OK) or os.geteuid() == 0
        exercise(ro, tmp_path)
        assert snapshot(ro) == before
    finally:
        for p in [ro, *ro.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
