from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccgraph import __version__
from ccgraph.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cat.csv").write_text("id,title\n1,a\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: cat.csv}\n")
    assert main(["validate", str(cfg)]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_missing_data_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: nowhere.csv}\n")
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "data.path" in err and "nowhere.csv" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "key", ["embed.precomputed.path", "embed.precomputed.ids_path", "data.image_root"]
)
def test_validate_checks_every_input_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    # before: `validate` said "valid" and `run` failed after reading the catalog
    (tmp_path / "cat.csv").write_text("id,title\n1,a\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: cat.csv}\n")
    assert main(["validate", str(cfg), "--set", f"{key}=missing.npy"]) == 2
    err = capsys.readouterr().err
    assert f"`{key}`" in err and "missing.npy" in err and "does not exist" in err


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ("propagate.tags.tagprop_weight=auto", "tagprop_weight"),
        ("propagate.tags.cluster_prior=0.2", "cluster_prior"),
        ("graph.weighting=gaussian", "graph.weighting"),
        ("embed.image.kind=phash", "one modality"),
    ],
)
def test_validate_refuses_what_spark_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str, match: str
) -> None:
    # before: `validate` said "valid" and `ccgraph run` stopped with a ConfigError
    (tmp_path / "cat.csv").write_text("id,title\n1,a\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: cat.csv}\nexecution: {engine: spark}\n")
    assert main(["validate", str(cfg)]) == 0
    capsys.readouterr()
    assert main(["validate", str(cfg), "--set", setting]) == 2
    err = capsys.readouterr().err
    assert match in err and str(cfg) in err and "Traceback" not in err
    # the local engine supports all of them
    assert main(["validate", str(cfg), "--set", setting, "--set", "execution.engine=local"]) == 0


def test_config_error_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: x}\ngraph: {k: -1}\n")
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ccgraph: error:") and "graph.k" in err


def test_set_override_reaches_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: x}\n")
    assert main(["validate", str(cfg), "--set", "graph.k=0"]) == 2
    assert "graph.k" in capsys.readouterr().err


def test_entry_point_subprocess(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: x}\nbogus: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ccgraph.cli", "validate", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "bogus" in proc.stderr and "Traceback" not in proc.stderr


def test_import_is_light() -> None:
    code = (
        "import sys, ccgraph, ccgraph.config, ccgraph.cli; "
        "heavy = [m for m in ('torch', 'pynndescent', 'numba', 'pyspark', 'sentence_transformers',"
        " 'leidenalg', 'igraph') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_output_over_an_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from tests.test_pipeline import write_config

    cfg = write_config(tmp_path)
    assert main(["run", str(cfg)]) == 0
    run = tmp_path / "run"
    results = tmp_path / "results.csv"
    results.write_text("query,position,id\nq,0,it0000\nq,1,it0002\n")
    before = results.read_bytes()
    # a file command whose output is its own input
    code = main(["experiment", "plan", str(run), str(results), "--out", str(results)])
    assert code == 2
    assert "is the input `results`" in capsys.readouterr().err
    assert results.read_bytes() == before
    # a command that replaces its output folder, given a folder holding its config
    inner = run / "config.yaml"
    shutil.copy(cfg, inner)
    code = main(["run", str(inner), "--out", str(run), "--set", "output.overwrite=true"])
    assert code == 2
    assert "holds the input `config`" in capsys.readouterr().err
    assert inner.exists() and (run / "manifest.json").exists()
    # before: a file command wrote into a run directory, replacing the run's own files
    items = (run / "items.parquet").read_bytes()
    manifest = str(run / "manifest.json")
    for argv in (
        ["experiment", "plan", str(run), str(results), "--out", str(run / "items.parquet")],
        ["experiment", "power", "--baseline-ctr", "0.1", "--effect", "0.01", "--out", manifest],
        ["experiment", "simulate", "--n-units", "20", "--out", str(run / "clusters.parquet")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"is inside the run directory {run.resolve()}" in err, err
    assert (run / "items.parquet").read_bytes() == items
    assert main(["query", str(run), "--id", "it0000"]) == 0
    capsys.readouterr()
    # writing beside the inputs is fine
    assert (
        main(["experiment", "plan", str(run), str(results), "--out", str(tmp_path / "p.csv")]) == 0
    )


def test_validate_named_dataset_uses_shared_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: `validate` refused a named data set whose `data.path` is missing although
    # `evaluate` reads it from $CCGRAPH_DATA_DIR
    shared = tmp_path / "shared"
    (shared / "citation-graphs").mkdir(parents=True)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data: {path: nowhere/citation-graphs}\nevaluate: {protocol: planetoid, dataset: cora}\n"
    )
    monkeypatch.setenv("CCGRAPH_DATA_DIR", str(shared))
    assert main(["validate", str(cfg)]) == 0
    assert str(shared / "citation-graphs") in capsys.readouterr().out
    monkeypatch.setenv("CCGRAPH_DATA_DIR", str(tmp_path / "absent"))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "citation-graphs" in err and "CCGRAPH_DATA_DIR" in err


def test_closed_stdout_pipe_exits_quietly(tmp_path: Path) -> None:
    # before: `ccgraph query ... --json | head` ended with a BrokenPipeError traceback
    (tmp_path / "cat.csv").write_text("id,title\n1,a\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {path: cat.csv}\n")
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the first write fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ccgraph.cli", "validate", str(cfg)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr
