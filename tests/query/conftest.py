"""Runs shared by the query tests (built once per session with the real pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccgraph.query import RunIndex, open_run
from tests.query._runs import vector_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run over 150 items (precomputed 16-d vectors, near-duplicates, tags)."""
    return vector_run(tmp_path_factory.mktemp("query-run"))


@pytest.fixture(scope="session")
def index(run_dir: Path) -> RunIndex:
    """The run opened for queries."""
    return open_run(run_dir)
