"""Regressions from an adversarial-input sweep: odd inputs through the CLI and the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccgraph.cli import main
from tests.reliability._project import Project, squash


def test_cli_shows_ccgraph_warnings_as_log_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: Python's warning format, "/.../pipeline.py:97: DataQualityWarning: ..." followed
    # by a line of ccgraph's source code
    p = Project(tmp_path)
    p.vectors, p.vector_ids = p.vectors[:30], p.ids[:30]
    assert main(["run", str(p.write()), "-q"]) == 0
    out = capsys.readouterr()
    text = squash(out.out + out.err)
    assert "10 of 40 items have no embedding" in text
    assert "DataQualityWarning" not in text and ".py:" not in text
