"""``ccgraph update``: the command's handler, its path handling and its errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

import ccgraph
from ccgraph.cli import main
from ccgraph.update.cli import add_commands


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers())
    return p


def test_update_command_removes_listed_ids(
    base_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    rows = pd.read_csv(base_run.parent / "catalog.csv").head(3)  # re-sent unchanged
    rows.to_csv(tmp_path / "batch.csv", index=False)
    (tmp_path / "gone.txt").write_text("it0005\nit0006\n\nnot-in-run\n")
    vectors = pd.read_parquet(base_run.parent / "vectors.parquet").head(3)
    vectors.to_parquet(tmp_path / "v.parquet")
    monkeypatch.chdir(tmp_path)  # relative paths given on the command line resolve here
    args = _parser().parse_args(
        [
            "update",
            str(base_run),
            "batch.csv",
            "--out",
            "new",
            "--remove",
            "gone.txt",
            "--set",
            "embed.precomputed.path=v.parquet",
            "--set",
            "propagate.tags.enabled=false",
            "-q",
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "2 removed" in out and "158 items" in out
    run = ccgraph.load_run(tmp_path / "new")
    assert not {"it0005", "it0006"} & set(run.ids)
    drift = json.loads((tmp_path / "new" / "drift.json").read_text())
    assert drift["changes"]["removed"] == 2 and drift["changes"]["unknown_removals"] == 1
    assert drift["changes"]["unchanged"] == 3


def test_user_errors_exit_2(base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["update", str(base_run), str(tmp_path / "nope.csv"), "--out", str(base_run)]) == 2
    assert "is the input `run-dir`" in capsys.readouterr().err
    assert (
        main(["update", str(base_run), str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "not found" in capsys.readouterr().err
    missing = tmp_path / "missing.txt"
    code = main(
        [
            "update",
            str(base_run),
            str(tmp_path / "x.csv"),
            "--out",
            str(tmp_path / "o"),
            "--remove",
            str(missing),
        ]
    )
    assert code == 2
    assert "--remove" in capsys.readouterr().err


def test_a_header_only_batch_is_a_removal_only_update(
    base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # before: "no usable items ... point `data.path` at the right file", so items could not be
    # removed without sending rows
    header = pd.read_csv(base_run.parent / "catalog.csv").head(0)
    header.to_csv(tmp_path / "empty.csv", index=False)
    (tmp_path / "gone.txt").write_text("it0005\n")
    args = ["update", str(base_run), str(tmp_path / "empty.csv"), "-q"]
    assert (
        main([*args, "--out", str(tmp_path / "new"), "--remove", str(tmp_path / "gone.txt")]) == 0
    )
    ids = set(ccgraph.load_run(tmp_path / "new").ids)
    assert "it0005" not in ids and len(ids) == 159
    # and without removals it is the no-op of an empty batch (as with an empty Catalog)
    assert main([*args, "--out", str(tmp_path / "new2")]) == 0
    assert ccgraph.load_run(tmp_path / "new2").manifest["stages"]["update"]["noop"]


def test_a_missing_vectors_file_given_with_set_says_where_it_was_looked_for(
    base_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # before: "... not found: /cwd/v.parquet; ... relative to the config file" although the
    # relative --set value had been resolved against the working directory
    pd.read_csv(base_run.parent / "catalog.csv").head(3).to_csv(tmp_path / "b.csv", index=False)
    monkeypatch.chdir(tmp_path)
    args = ["update", str(base_run), "b.csv", "--out", "new", "-q"]
    assert main([*args, "--set", "embed.precomputed.path=v.parquet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"not found: {tmp_path / 'v.parquet'}" in err
    assert "against the working directory when given with `ccgraph update --set`" in err
