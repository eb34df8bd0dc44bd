"""ccgraph.update._threads, and the update's background jobs under a lane of one slot."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ccgraph import _lane
from ccgraph._lane import Lane, use_lane
from ccgraph.update import update_run
from ccgraph.update._threads import start, wait_for
from tests.update._data import centres, planted, table, write_vectors


def test_start_with_a_priority_waits_for_a_slot_and_wait_for_lends_one() -> None:
    with use_lane(Lane(1)) as lane, lane.slot(3):
        # the only slot is held by this thread: the job can run only once wait_for lends
        # this thread's core
        ran = threading.Event()
        job = start(ran.set, name="test", priority=0)
        assert not ran.wait(0.1)
        wait_for(job)
        assert ran.is_set()
        assert lane.free == 0


def test_start_without_a_priority_ignores_the_lane() -> None:
    with use_lane(Lane(0)):
        assert start(sum, [1, 2, 3], name="test").result(timeout=5) == 6


def test_update_outputs_do_not_depend_on_the_lane(
    base_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same update with one background slot and without a limit: the same files."""
    labels = np.arange(12) % 4
    ids = [f"it{i:04d}" for i in range(900, 912)]
    table(ids, labels, seed=5).to_csv(tmp_path / "batch.csv", index=False)
    vec = write_vectors(tmp_path / "v.parquet", ids, planted(labels, centres(), seed=5))
    outs = {}
    for name, slots in (("one", 1), ("free", None)):
        monkeypatch.setattr(_lane, "background_slots", lambda s=slots: s)
        result = update_run(
            base_run,
            tmp_path / "batch.csv",
            out=tmp_path / name,
            overrides=[f"embed.precomputed.path={vec}"],
        )
        assert result.path is not None
        outs[name] = result.path
    for name in ("items.parquet", "tags.parquet", "clusters.parquet", "graph.npz"):
        assert (outs["one"] / name).read_bytes() == (outs["free"] / name).read_bytes(), name
