"""Ctrl-C / SIGTERM during a long C call that holds the GIL (``ccgraph._hard_stop``).

``sum(range(big))`` stands in for Leiden: a C loop that holds the GIL and never checks for
signals, so Python's handler cannot run until it returns.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from ccgraph import _hard_stop
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread() or sys.platform == "win32",
    reason="POSIX signals in the main thread",
)

_CHILD = """
import sys
from ccgraph._hard_stop import enabled, stop_at_once
on = sys.argv[1] == "on"
try:
    with (enabled() if on else stop_at_once(0)):
        with stop_at_once(10**9):
            print("ready", flush=True)
            sum(range(10**12))  # holds the GIL for minutes
except KeyboardInterrupt:
    print("handled", flush=True)
"""


def _interrupt_child(mode: str, sig: int) -> subprocess.Popen[str]:
    env = {"PYTHONPATH": f"{REPO / 'src'}:{REPO}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(sig)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_command_during_a_call_that_holds_the_gil(sig: int) -> None:
    proc = _interrupt_child("on", sig)
    assert proc.wait(timeout=10) == -sig  # ended by the signal, as a Unix tool is


def test_without_it_the_signal_waits_for_the_call() -> None:
    # the oracle of the claim above: Python's own handler is stuck behind the GIL
    proc = _interrupt_child("off", signal.SIGINT)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.5)
    finally:
        proc.kill()
        proc.wait()


def test_handlers_are_restored_and_ignored_signals_stay_ignored() -> None:
    before_int, before_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with _hard_stop.enabled(), _hard_stop.stop_at_once(_hard_stop.LONG_CALL_WORK):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # a nohup'd job's
        assert signal.getsignal(signal.SIGINT) is before_int
        with _hard_stop.enabled(), _hard_stop.stop_at_once(_hard_stop.LONG_CALL_WORK - 1):
            assert signal.getsignal(signal.SIGINT) is before_int  # short: handled as usual
        with _hard_stop.stop_at_once(10**9):  # not enabled: a Python session keeps its own
            assert signal.getsignal(signal.SIGINT) is before_int
    finally:
        signal.signal(signal.SIGTERM, before_term)


def test_the_command_runs_leiden_with_default_signals(monkeypatch, tmp_path) -> None:
    import leidenalg

    from ccgraph import cli
    from ccgraph.cluster import leiden

    seen = []
    real = leidenalg.Optimiser.optimise_partition

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(signal.getsignal(signal.SIGINT))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(leidenalg.Optimiser, "optimise_partition", spy)
    monkeypatch.setattr(_hard_stop, "LONG_CALL_WORK", 1)  # this small graph counts as large
    rng = np.random.default_rng(0)
    vectors = np.repeat(np.eye(4), 10, axis=0) + 0.05 * rng.standard_normal((40, 4))
    np.save(tmp_path / "v.npy", vectors.astype(np.float32))
    (tmp_path / "c.csv").write_text("id,title\n" + "".join(f"{i},t{i}\n" for i in range(40)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{path: {tmp_path / 'c.csv'}, format: table}}\n"
        f"embed: {{text: {{enabled: false}}, precomputed: {{path: {tmp_path / 'v.npy'}}}}}\n"
        "graph: {k: 5}\ncluster: {backend: leidenalg, resolutions: [1.0]}\n"
        f"output: {{dir: {tmp_path / 'run'}}}\n"
    )
    assert cli.main(["run", str(cfg), "-q"]) == 0
    assert seen and all(h is signal.SIG_DFL for h in seen)
    seen.clear()  # the same call from Python keeps the session's handler
    from ccgraph.containers import KnnGraph

    a = np.ones((3, 3)) - np.eye(3)
    leiden(KnnGraph.from_adjacency(a), backend="leidenalg")
    assert seen == [signal.getsignal(signal.SIGINT)] and seen[0] is not signal.SIG_DFL
