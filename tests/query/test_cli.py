"""``ccgraph query``: handlers built on a parser, as cli.py wires them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from ccgraph.exceptions import InputError, OutputError, ParameterError
from ccgraph.query.cli import add_commands


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    add_commands(sub)
    args = p.parse_args(argv)
    return args.func(args)


def test_query_by_id_prints_the_answers(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", str(run_dir), "--id", "it0140", "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert "query: it0140" in out and "(default)" in out
    assert "dup   1 it0000" in out
    assert out.count(" rel ") == 3


def test_query_json(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["query", str(run_dir), "--id", "it0002", "--json", "--duplicates", "exclude"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["query"] == "it0002" and len(data["related"]) == 20
    assert {t["tag"] for t in data["tags"]} >= {"photo"}


def test_batch_writes_parquet(run_dir: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "ids.parquet"
    pd.DataFrame({"id": ["it0001", "it0002"]}).to_parquet(src)
    out = tmp_path / "answers" / "out.parquet"
    assert run(["query", str(run_dir), "--batch", str(src), "--out", str(out)]) == 0
    assert "2 answers written" in capsys.readouterr().out
    assert pd.read_parquet(out)["query"].tolist() == ["it0001", "it0002"]


def test_cli_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an item"):
        run(["query", str(run_dir), "--id", "missing"])
    src = tmp_path / "ids.parquet"
    pd.DataFrame({"id": ["it0001"]}).to_parquet(src)
    with pytest.raises(InputError, match="--out"):
        run(["query", str(run_dir), "--batch", str(src)])
    with pytest.raises(OutputError, match="inside the run directory"):
        run(["query", str(run_dir), "--batch", str(src), "--out", str(run_dir / "x.parquet")])
    with pytest.raises(InputError, match="--out is for --batch"):
        run(["query", str(run_dir), "--id", "it0001", "--out", str(tmp_path / "o.parquet")])
    with pytest.raises(SystemExit):
        run(["query", str(run_dir), "--id", "a", "--text", "b"])


def test_main_turns_errors_into_exit_code_2(run_dir: Path, capsys) -> None:
    from ccgraph.cli import main

    assert main(["query", str(run_dir), "--id", "it0O01"]) == 2
    assert "it0O01" in capsys.readouterr().err


def test_batch_answers_known_ids_and_reports_unknown_ones(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: one unknown id failed the whole batch ("batch row 2: `id` 'nope' ...")
    src = tmp_path / "ids.parquet"
    pd.DataFrame({"id": ["it0001", "nope", "it0002"]}).to_parquet(src)
    out = tmp_path / "out.parquet"
    assert run(["query", str(run_dir), "--batch", str(src), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2 answers written" in said and "1 rows not answered" in said
    assert "row 2: `id` 'nope' is not an item" in said
    frame = pd.read_parquet(out)
    assert frame["error"].isna().tolist() == [True, False, True]
    assert len(frame.loc[0, "related_ids"]) > 0
    with pytest.raises(InputError, match=r"1 of 3 batch ids .*row 2 'nope'.*--errors record"):
        run(["query", str(run_dir), "--batch", str(src), "--out", str(out), "--errors", "raise"])


def test_batch_with_no_answerable_row_fails_and_writes_nothing(
    run_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "ids.parquet"
    pd.DataFrame({"id": ["nope", "x"]}).to_parquet(src)
    out = tmp_path / "out.parquet"
    with pytest.raises(InputError, match=r"no row could be answered \(row 1: `id` 'nope'"):
        run(["query", str(run_dir), "--batch", str(src), "--out", str(out)])
    assert not out.exists()


def test_bad_n_and_k_are_refused_first(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: --text loaded the text model before refusing --n 0; --id --k 0 was accepted
    import ccgraph.query.index as index_mod

    def no_open(path: object) -> None:
        raise AssertionError("the run was opened before --n/--k were checked")

    monkeypatch.setattr(index_mod, "open_run", no_open)
    with pytest.raises(ParameterError, match="`--n` must be an integer >= 1"):
        run(["query", str(run_dir), "--text", "hello", "--n", "0"])
    with pytest.raises(ParameterError, match="`--k` must be an integer >= 1"):
        run(["query", str(run_dir), "--id", "it0001", "--k", "0"])
    with pytest.raises(ParameterError, match="`--k`"):
        run(["query", str(run_dir), "--image", "x.png", "--k", "-3"])
