"""Shared fixtures: the shared real data (skipped when absent) and small seeded inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Timing varies a lot on shared 2-core machines: property tests check values, not speed.
settings.register_profile(
    "ccgraph", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("ccgraph")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared data folder: ``$CCGRAPH_DATA_DIR`` or ``../shared/data`` beside the repo."""
    env = os.environ.get("CCGRAPH_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def require_data(*parts: str) -> Path:
    """Return a path inside the shared data, or skip the test with the reason."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"shared data not found at {path}; set CCGRAPH_DATA_DIR to the folder that holds "
            "openverse-samples/, flickr8k-1000/ and citation-graphs/"
        )
    return path


@pytest.fixture
def data_dir() -> Path:
    """The shared data folder (skips when absent)."""
    return require_data()


@pytest.fixture
def openverse_dir() -> Path:
    """``openverse-samples/`` of the shared data (skips when absent)."""
    return require_data("openverse-samples")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator."""
    return np.random.default_rng(12345)


def blobs(n: int = 300, d: int = 16, centers: int = 5, spread: float = 0.15, seed: int = 0):
    """Unit vectors around ``centers`` random directions, with their true labels."""
    g = np.random.default_rng(seed)
    c = g.normal(size=(centers, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    labels = g.integers(0, centers, size=n)
    x = c[labels] + spread * g.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels
