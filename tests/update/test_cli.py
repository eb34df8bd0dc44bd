"""``ccgraph update``: the command's handler, its path handling and its errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

import ccgraph
from ccgraph.cli import main
from ccgraph.exceptions import DataQualityWarning
from ccgraph.update import update_run
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
    with pytest.warns(DataQualityWarning, match="not-in-run"):
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


def test_removing_only_unknown_ids_warns(
    base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # before: "0 removed" and only an INFO line (`unknown_removals`)
    header = pd.read_csv(base_run.parent / "catalog.csv").head(0)
    header.to_csv(tmp_path / "empty.csv", index=False)
    (tmp_path / "gone.txt").write_text("IT0005\nit-9999\n")
    args = ["update", str(base_run), str(tmp_path / "empty.csv"), "-q", "--out"]
    assert main([*args, str(tmp_path / "new"), "--remove", str(tmp_path / "gone.txt")]) == 0
    out = capsys.readouterr()
    said = " ".join((out.out + out.err).split())
    assert "2 of 2 ids to remove are not in the run" in said and "check the ids file" in said
    assert "IT0005" in said
    # the API warns (the command shows ccgraph's warnings as log lines)
    with pytest.warns(DataQualityWarning, match=r"1 of 2 ids to remove .*'it-9999'"):
        update_run(
            base_run, tmp_path / "empty.csv", out=tmp_path / "new2", remove=["it0005", "it-9999"]
        )


def test_a_negative_seed_exits_2_before_any_work(
    base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # before: refused only after the graph stage, by the clusters' `rng` check
    args = ["update", str(base_run), str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]
    assert main([*args, "--seed", "-4"]) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and "-4" in err and "not found" not in err
