from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ccgraph.config import load_config
from ccgraph.evaluate.cli import add_commands
from ccgraph.evaluate.harness import run_evaluation
from ccgraph.exceptions import ConfigError
from tests.conftest import REPO, require_data

CONFIGS = sorted((REPO / "configs").glob("eval-*.yaml"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers())
    return p


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_eval_configs_validate(path: Path):
    cfg = load_config(path)
    assert cfg.evaluate.protocol in ("items", "tags", "planetoid", "captions")
    if cfg.evaluate.dataset == "flickr8k":
        assert not cfg.embed.text.enabled  # caption tags are never scored on text graphs


def test_cli_planetoid_quick(tmp_path, capsys):
    data = require_data("citation-graphs")
    p = _parser()
    args = p.parse_args(
        [
            "evaluate",
            str(REPO / "configs" / "eval-cora.yaml"),
            "--out",
            str(tmp_path),
            "--set",
            f"data.path={data}",
            "--set",
            "evaluate.methods=[]",
            "--set",
            "evaluate.baselines=[prior, label_spreading]",
            "--set",
            "evaluate.bootstrap=50",
        ]
    )
    assert args.func(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    acc = metrics["summary"]["label_propagation"]["accuracy"]
    assert acc >= 0.68
    lo, hi = metrics["summary"]["label_propagation"]["accuracy 95% CI"]
    assert lo <= acc <= hi
    assert "label_propagation" in capsys.readouterr().out
    assert (tmp_path / "per_repeat.parquet").is_file()
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_caption_tags_refuse_text_graphs(tmp_path):
    require_data("flickr8k-1000")
    cfg = load_config(
        REPO / "configs" / "eval-flickr8k-pixels.yaml",
        ["embed.text.enabled=true", f"output.dir={tmp_path}"],
    )
    with pytest.raises(ConfigError, match="leak"):
        run_evaluation(cfg)


def test_help_renders(capsys):
    from ccgraph.cli import build_parser

    build_parser().format_help()
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["evaluate", "--help"])
    assert exc.value.code == 0
    assert "bootstrap" in capsys.readouterr().out


def test_help_shows_a_single_percent_sign() -> None:
    # before: the description printed "95%%" (argparse formats `help`, not `description`)
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    add_commands(sub)
    text = " ".join(sub.choices["evaluate"].format_help().split())
    listing = " ".join(p.format_help().split())
    assert "95% bootstrap" in text and "%%" not in text
    assert "95% bootstrap" in listing and "%%" not in listing


def test_cli_lists_skipped_methods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # before: a skipped baseline (label_spreading on multi-label tags) simply vanished
    from ccgraph.cli import main
    from tests.reliability._project import Project

    cfg = Project(tmp_path).write()
    argv = ["evaluate", str(cfg), "--out", str(tmp_path / "ev"), "--set", "evaluate.repeats=1"]
    argv += ["--set", "evaluate.methods=[]", "--set", "evaluate.baselines=[prior, label_spreading]"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "label_spreading          skipped: scikit-learn LabelSpreading needs single-label" in out
