"""Determinism: the same config and seed give byte-identical Parquet and npz outputs.

``tests/test_pipeline.py`` covers precomputed vectors with the exact kNN. Here: perceptual
hashes of images (Hamming kNN), and the approximate pynndescent backend (seeded NN-descent) in
two different processes with different hash seeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ccgraph
from ccgraph.config import load_config
from tests.conftest import REPO
from tests.reliability._project import Project, write_images
from tests.reliability.test_crash import OUTPUTS, _big_project


def _same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_image_hash_runs_are_byte_identical(tmp_path: Path) -> None:
    p = Project(tmp_path)
    write_images(p, kind="dhash")
    cfg = p.write()
    first = ccgraph.run(load_config(cfg), out=tmp_path / "a")
    ccgraph.run(load_config(cfg), out=tmp_path / "b")  # its own cache: embeds again
    assert first.manifest["stages"]["embed"]["image"]["embedder"] == "dhash"
    assert first.graph.params["metric"] == "hamming"
    _same_outputs(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow
def test_pynndescent_runs_in_two_processes_are_byte_identical(tmp_path: Path) -> None:
    cfg = _big_project(tmp_path, n=3000)
    sets = ["graph.backend=pynndescent"]
    first = ccgraph.run(load_config(cfg, sets), out=tmp_path / "a")
    assert first.graph.params["backend_used"] == "pynndescent"
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}",
        "PYTHONHASHSEED": "12345",
    }
    args = [a for s in [*sets, f"embed.cache_dir={tmp_path / 'other-cache'}"] for a in ("--set", s)]
    cli = [sys.executable, "-m", "ccgraph.cli", "run", str(cfg), "--out", str(tmp_path / "b")]
    proc = subprocess.run(
        [*cli, "-q", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    _same_outputs(tmp_path / "a", tmp_path / "b")
