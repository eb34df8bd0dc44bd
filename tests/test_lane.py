"""ccgraph._lane: background jobs one at a time, the most urgent first, cores lent back."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ccgraph._lane import Lane, background_slots, current, use_lane
from ccgraph.exceptions import ParameterError

WAIT = 5.0  # seconds a test waits for an event that must happen


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def _job(lane: Lane, priority: int, log: list[str], name: str) -> threading.Thread:
    def body() -> None:
        with lane.slot(priority):
            log.append(name)

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def _waiting(lane: Lane) -> int:
    with lane._cond:
        return len(lane._waiting)


def test_unlimited_lane_never_waits() -> None:
    lane = Lane(None)
    with lane.slot(3), lane.slot(0), lane.lend():
        assert lane.free is None
    assert current().free is None  # outside use_lane: no limit


def test_negative_slots_are_refused_naming_the_parameter() -> None:
    with pytest.raises(ParameterError, match=r"`slots`.*got -1"):
        Lane(-1)


def test_one_slot_runs_one_job_at_a_time_most_urgent_first() -> None:
    lane, log = Lane(1), []
    with lane.slot(5):
        # submitted in the order 3, 0, 2, 0: they must run 0, 0 (in submission order), 2, 3
        threads = []
        for name, priority in (("w3", 3), ("a0", 0), ("p2", 2), ("b0", 0)):
            threads.append(_job(lane, priority, log, name))
            n = len(threads)
            _until(lambda n=n: _waiting(lane) == n)
        time.sleep(0.05)
        assert log == []  # the slot is held: nobody ran
    for t in threads:
        t.join(WAIT)
    assert log == ["a0", "b0", "p2", "w3"]
    assert lane.free == 1


@pytest.mark.parametrize("how", ["lend", "released"])
def test_a_waiting_job_runs_while_the_holder_lends_or_releases(how: str) -> None:
    """``lend`` adds a slot (the caller waits), ``released`` gives the holder's slot up."""
    lane, log = Lane(1), []
    with lane.slot(3):
        thread = _job(lane, 1, log, "job")
        _until(lambda: _waiting(lane) == 1)
        with getattr(lane, how)():
            thread.join(WAIT)
            assert log == ["job"]
        assert lane.free == 0  # the holder's slot is held again
    assert lane.free == 1


def test_pause_yields_only_to_a_more_urgent_job() -> None:
    lane, log = Lane(1), []
    urgent = threading.Event()

    def holder() -> None:
        with lane.slot(2):
            log.append("holder starts")
            urgent.wait(WAIT)
            lane.pause()  # a priority-0 job waits: it runs now
            log.append("holder resumes")
            lane.pause()  # only a priority-3 job waits: no yield
            log.append("holder ends")

    h = threading.Thread(target=holder)
    h.start()
    _until(lambda: log == ["holder starts"])
    later = _job(lane, 3, log, "later")
    _until(lambda: _waiting(lane) == 1)
    first = _job(lane, 0, log, "urgent")
    _until(lambda: _waiting(lane) == 2)
    urgent.set()
    for t in (h, later, first):
        t.join(WAIT)
    assert log == ["holder starts", "urgent", "holder resumes", "holder ends", "later"]


def test_pause_and_released_outside_a_slot_do_nothing() -> None:
    lane = Lane(1)
    lane.pause()
    with lane.released():
        assert lane.free == 1


def test_use_lane_sets_and_restores_the_current_lane() -> None:
    assert current().free is None
    with use_lane() as lane:
        assert current() is lane
        assert lane.free == background_slots() >= 1
    assert current().free is None
    mine = Lane(4)
    with use_lane(mine) as lane:
        assert lane is mine and current() is mine
    assert current().free is None


def test_overlapping_use_lane_blocks_share_the_first_lane() -> None:
    """Two updates in two threads: one lane until both end, whatever the order they end in."""
    first, second = Lane(1), Lane(3)
    inner_started, outer_done = threading.Event(), threading.Event()
    seen: list[Lane] = []

    def other() -> None:
        with use_lane(second) as lane:
            seen.append(lane)
            inner_started.set()
            outer_done.wait(WAIT)
            seen.append(current())  # the first block ended: the shared lane is still current

    with use_lane(first):
        thread = threading.Thread(target=other)
        thread.start()
        inner_started.wait(WAIT)
    outer_done.set()
    thread.join(WAIT)
    assert seen == [first, first]
    assert current().free is None


def test_chunked_sha256_matches_hashlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ccgraph.io import _writer

    monkeypatch.setattr(_writer, "_HASH_CHUNK", 1000)
    data = np.random.default_rng(0).bytes(10_500)
    for size in (0, 999, 1000, 1001, 10_500):
        path = tmp_path / f"f{size}"
        path.write_bytes(data[:size])
        with use_lane(Lane(1)) as lane, lane.slot(3):  # pause() inside: no other job waits
            assert _writer._sha256(path) == hashlib.sha256(data[:size]).hexdigest()
