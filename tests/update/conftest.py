"""A small planted run, built once per test session for the end-to-end update tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ccgraph
from tests.update._data import centres, planted, write_inputs

N_BASE = 160


@pytest.fixture(scope="session")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run over 160 items in 4 planted topics (exact kNN, so updates can be checked exactly)."""
    folder = tmp_path_factory.mktemp("base")
    labels = np.repeat(np.arange(4), N_BASE // 4)
    x = planted(labels, centres(), seed=1)
    ids = [f"it{i:04d}" for i in range(N_BASE)]
    cfg = write_inputs(folder, ids, labels, x)
    result = ccgraph.run(cfg)
    assert result.path is not None
    return result.path
