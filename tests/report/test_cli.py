from __future__ import annotations

import argparse

from ccgraph.cli import main
from ccgraph.report.cli import add_commands


def test_report_command_writes_report(synthetic_run, tmp_path, capsys):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    add_commands(sub)
    out = tmp_path / "rep"
    args = p.parse_args(["report", str(synthetic_run), "--out", str(out), "--max-clusters", "2"])
    assert args.func(args) == 0
    assert (out / "index.html").is_file()
    assert len(list(out.glob("cluster-*.html"))) == 2
    assert str(out / "index.html") in capsys.readouterr().out


def test_missing_run_dir_is_a_one_line_user_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ccgraph: error:") and "does not exist" in err
