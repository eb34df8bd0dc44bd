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


def test_half_written_or_foreign_run_is_refused(tmp_path, capsys):
    # before: a missing tags.parquet gave a report without tags, a truncated graph.npz a
    # BadZipFile traceback, and another schema version was read as if it were this one
    import json
    import shutil

    from tests.reliability._project import Project

    project = Project(tmp_path / "p")
    project.root.mkdir()
    assert main(["run", str(project.write()), "-q"]) == 0
    run = project.path("run")

    def broken(name, damage):
        copy = tmp_path / name
        shutil.copytree(run, copy)
        damage(copy)
        capsys.readouterr()
        assert main(["report", str(copy), "--out", str(tmp_path / f"rep-{name}")]) == 2
        return " ".join(capsys.readouterr().err.split())

    def old_schema(d):
        man = json.loads((d / "manifest.json").read_text())
        (d / "manifest.json").write_text(json.dumps({**man, "schema_version": 99}))

    err = broken("notags", lambda d: (d / "tags.parquet").unlink())
    assert "incomplete run directory: tags.parquet is recorded in the manifest" in err
    graph = run / "graph.npz"
    err = broken("trunc", lambda d: (d / "graph.npz").write_bytes(graph.read_bytes()[:100]))
    assert "graph.npz has 100 bytes but the manifest records" in err
    err = broken("schema", old_schema)
    assert "schema_version 99 is not supported" in err
