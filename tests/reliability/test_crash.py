"""Crash safety: a run killed with SIGKILL loses nothing, and ``--resume`` finishes it.

The slow test kills ``python -m ccgraph.cli run`` in the middle of the tag stage (after the kNN
graph was checkpointed), checks that the previous run directory is untouched, resumes, and
compares every output byte for byte with an uninterrupted run. The fast tests check the
checkpoint key and the reuse rules in-process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import ccgraph
from ccgraph import _checkpoint
from ccgraph.config import load_config
from tests.conftest import REPO, blobs
from tests.reliability._project import Project

OUTPUTS = ("items.parquet", "tags.parquet", "clusters.parquet", "rejects.parquet", "graph.npz")


def _digests(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())}


def _big_project(root: Path, n: int) -> Path:
    """``n`` items in 60 topics, 30 % tagged (640 tags), vectors d=32: a few-second tag stage."""
    x, lab = blobs(n=n, d=32, centers=60, spread=0.35, seed=1)
    g = np.random.default_rng(1)
    tags = []
    for i in range(n):
        if g.random() < 0.3:
            words = [f"topic{lab[i]}", *(f"w{lab[i]}_{j}" for j in g.integers(0, 8, 2))]
            tags.append(",".join([*words, f"noise{g.integers(0, 100)}"]))
        else:
            tags.append("")
    ids = [f"x{i:06d}" for i in range(n)]
    views = np.where(g.random(n) < 0.3, g.integers(0, 1000, n).astype(str), "")
    pd.DataFrame(
        {"id": ids, "title": [f"t {i}" for i in range(n)], "tags": tags, "views": views}
    ).to_csv(root / "catalog.csv", index=False)
    pd.DataFrame({"id": ids, "vector": list(x.astype(np.float64))}).to_parquet(
        root / "vectors.parquet"
    )
    cfg = {
        "data": {"path": "catalog.csv", "format": "table", "columns": {"popularity": "views"}},
        "embed": {"text": {"enabled": False}, "precomputed": {"path": "vectors.parquet"}},
        "graph": {"k": 15},
        "output": {"dir": "run"},
        "seed": 0,
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cli(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", "COLUMNS": "200"}
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "ccgraph.cli", "run", *args, "-q"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,
        )


def _wait_for(proc: subprocess.Popen[bytes], log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {text!r}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{text!r} did not appear in {timeout} s:\n{log.read_text(errors='replace')}")


@pytest.mark.slow
def test_sigkill_mid_stage_then_resume_is_byte_identical(tmp_path: Path) -> None:
    cfg = _big_project(tmp_path, n=6000)
    # 1. an uninterrupted reference run, with its own cache (nothing shared with the others)
    ccgraph.run(
        load_config(cfg, [f"embed.cache_dir={tmp_path / 'ref-cache'}"]), out=tmp_path / "ref"
    )
    # 2. a previous, different run in the directory the killed run will write to
    ccgraph.run(load_config(cfg, ["data.limit=300", "graph.k=5"]))
    before = _digests(tmp_path / "run")
    # 3. start the run, wait until the graph is checkpointed and the tag stage is under way
    log = tmp_path / "killed.log"
    proc = _cli(str(cfg), log=log)
    _wait_for(proc, log, "tags ...", timeout=600)
    time.sleep(0.5)
    assert proc.poll() is None, log.read_text()
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert "graph checkpoint written" in log.read_text()
    # the previous run is intact: same files, same bytes
    assert _digests(tmp_path / "run") == before
    assert ccgraph.load_run(tmp_path / "run").manifest["counts"]["items"] == 300
    # 4. resume: the graph comes from the checkpoint; the outputs equal the reference bytes
    log2 = tmp_path / "resumed.log"
    resumed = _cli(str(cfg), "--resume", log=log2)
    assert resumed.wait(timeout=900) == 0, log2.read_text()
    assert "graph restored from checkpoint" in log2.read_text()
    for name in OUTPUTS:
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), (
            name
        )
    manifest = ccgraph.load_run(tmp_path / "run").manifest
    assert manifest["stages"]["graph"]["restored"] is True
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".run.tmp-")]
    assert leftovers == []


def test_graph_checkpoint_is_reused_only_on_matching_key(tmp_path: Path) -> None:
    p = Project(tmp_path)
    cfg = p.write()
    first = ccgraph.run(load_config(cfg))
    assert first.manifest["stages"]["graph"]["restored"] is False
    cache = tmp_path / ".run.cache" / "checkpoints"
    assert len(list(cache.glob("graph-*.npz"))) == 1
    again = ccgraph.run(load_config(cfg), resume=True)
    assert again.manifest["stages"]["graph"]["restored"] is True
    assert (again.graph.adjacency != first.graph.adjacency).nnz == 0
    for name in OUTPUTS:
        assert (tmp_path / "run" / name).exists()
    # any change to the graph's inputs is a miss: parameters, seed, vectors
    changed = ccgraph.run(load_config(cfg, ["graph.k=6"]))
    assert changed.manifest["stages"]["graph"]["restored"] is False
    changed = ccgraph.run(load_config(cfg, ["seed=1"]))
    assert changed.manifest["stages"]["graph"]["restored"] is False
    # near-duplicate settings do not change the graph: still a hit
    same = ccgraph.run(load_config(cfg, ["graph.duplicates.cosine=0.9"]))
    assert same.manifest["stages"]["graph"]["restored"] is True
    assert len(list(cache.glob("graph-*.npz"))) == _checkpoint.KEEP_GRAPHS


def test_resume_without_checkpoint_warns(tmp_path: Path) -> None:
    p = Project(tmp_path)
    cfg = p.write()
    records: list[str] = []
    logger = _checkpoint.log
    handler = _ListHandler(records)
    logger.addHandler(handler)
    try:
        ccgraph.run(load_config(cfg), resume=True)
    finally:
        logger.removeHandler(handler)
    assert any("--resume: no graph checkpoint matches" in r for r in records)


def test_corrupt_checkpoint_is_recomputed(tmp_path: Path) -> None:
    p = Project(tmp_path)
    cfg = p.write()
    first = ccgraph.run(load_config(cfg))
    (ckpt,) = (tmp_path / ".run.cache" / "checkpoints").glob("graph-*.npz")
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # e.g. a disk that filled up
    again = ccgraph.run(load_config(cfg), resume=True)
    assert again.manifest["stages"]["graph"]["restored"] is False
    assert (again.graph.adjacency != first.graph.adjacency).nnz == 0


def test_key_depends_on_vector_bytes_and_ids() -> None:
    x, _ = blobs(n=20, d=4, seed=0)
    ids = np.array([f"i{i}" for i in range(20)])
    e = ccgraph.Embeddings.from_array(x, ids, normalize=False)
    base = _checkpoint.graph_key({"p": e}, ids, {"k": 3})
    y = x.copy()
    y[3, 1] = np.nextafter(y[3, 1], np.float32(2))  # one ulp in one value
    assert (
        _checkpoint.graph_key(
            {"p": ccgraph.Embeddings.from_array(y, ids, normalize=False)}, ids, {"k": 3}
        )
        != base
    )
    assert _checkpoint.graph_key({"q": e}, ids, {"k": 3}) != base
    assert _checkpoint.graph_key({"p": e}, ids[::-1].copy(), {"k": 3}) != base
    assert _checkpoint.graph_key({"p": e}, ids, {"k": 3}) == base


class _ListHandler(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())
