"""Regressions from an adversarial-input sweep: odd inputs through the CLI and the API."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import ccgraph
from ccgraph.cli import main
from ccgraph.exceptions import InputError, ParameterError
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


@pytest.mark.parametrize("path", [None, 3, ["a.csv", None]])
def test_read_catalog_path_of_the_wrong_type(path: object) -> None:
    # before: TypeError "'NoneType' object is not iterable"
    with pytest.raises(ParameterError, match=r"`path` must be a file, directory or glob"):
        ccgraph.read_catalog(path)  # type: ignore[arg-type]


def test_tagset_with_a_null_tag_names_the_rows() -> None:
    # before: ValueError from numpy.bincount ("'list' argument must have no negative elements")
    tags = pd.DataFrame({"id": ["a", "b", "c"], "tag": ["x", None, "x"]})
    with pytest.raises(InputError, match=r"1 rows with a null id or tag \(first rows \[1\]\)"):
        ccgraph.TagSet.from_frame(tags, ["a", "b", "c"])
