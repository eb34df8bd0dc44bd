from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_data
from tests.report._run_fixture import build_flickr_run, build_synthetic_run


@pytest.fixture
def synthetic_run(tmp_path: Path) -> Path:
    """A URL-only run directory (no image files), 120 items in 4 clusters."""
    return build_synthetic_run(tmp_path / "run")


@pytest.fixture(scope="module")
def flickr_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run directory over 60 shared Flickr8k images (skips without the data)."""
    data = require_data("flickr8k-1000")
    return build_flickr_run(data, tmp_path_factory.mktemp("flickr") / "run", n=60)
