"""A hostile environment: SIGTERM, a full disk, impossible output names, stale temp folders.

Each test names the behaviour before its fix. Full disks are simulated by making a write raise
``OSError(ENOSPC)`` (no tmpfs mount in tests); SIGTERM is sent for real, once to a subprocess
when its log shows the stage started, once in-process while the run directory is swapped in.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from ccgraph import cli
from ccgraph.exceptions import OutputError
from ccgraph.io.atomic import atomic_write_text, check_name_length
from tests.conftest import REPO
from tests.reliability._project import Project, squash

LONG = "x" * 300  # longer than NAME_MAX (255) on every usual file system


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _temps(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp" in p.name or ".old-" in p.name)


def _enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    """A config and a finished run of it (``run/``): the previous output a failure must keep."""
    cfg = Project(tmp_path, n=40).write()
    assert cli.main(["run", str(cfg), "-q"]) == 0
    return cfg, tmp_path / "run"


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    return code, squash(capsys.readouterr().err)


# --- a full disk ----------------------------------------------------------------------------


def test_full_disk_while_writing_the_run(project, monkeypatch, capsys) -> None:
    # before: pyarrow's OSError(ENOSPC) escaped RunWriter.finish: a traceback, exit 1
    cfg, run = project
    before = _digests(run)
    monkeypatch.setattr("ccgraph.io._writer._write_table", _enospc)
    code, err = _run_cli(["run", str(cfg), "-q"], capsys)
    assert code == 2
    assert f"cannot write to {run}: no space left on the device" in err
    assert "Traceback" not in err
    assert _digests(run) == before
    assert _temps(run.parent) == []


def test_full_disk_while_writing_the_report(project, monkeypatch, capsys) -> None:
    # before: an OSError(ENOSPC) from a PNG or HTML write was a traceback, exit 1
    _, run = project
    rep = run.parent / "rep"
    assert cli.main(["report", str(run), "--out", str(rep)]) == 0
    before = _digests(rep)
    monkeypatch.setattr("ccgraph.report.html._build", _enospc)
    code, err = _run_cli(["report", str(run), "--out", str(rep)], capsys)
    assert code == 2
    assert f"cannot write to {rep}: no space left on the device" in err
    assert _digests(rep) == before
    assert _temps(run.parent) == []


def test_full_disk_while_writing_query_answers(project, monkeypatch, capsys) -> None:
    # before: the OSError of DataFrame.to_parquet inside atomic_path was a traceback, exit 1
    _, run = project
    batch = run.parent / "batch.parquet"
    pd.DataFrame({"id": ["it000", "it001"]}).to_parquet(batch)
    out = run.parent / "answers.parquet"
    out.write_bytes(b"previous answers")

    def full(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"half")  # a partial file, as a real full disk leaves
        _enospc()

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    code, err = _run_cli(["query", str(run), "--batch", str(batch), "--out", str(out)], capsys)
    assert code == 2
    assert f"cannot write to {out}: no space left on the device" in err
    assert out.read_bytes() == b"previous answers"
    assert _temps(run.parent) == []


def test_experiment_output_temp_file_is_removed_on_ctrl_c(tmp_path, monkeypatch) -> None:
    # before: _write_frame removed its `.<name>.<pid>.tmp` only on OSError: Ctrl-C left it
    from ccgraph.experiment.cli import _write_frame

    out = tmp_path / "plan.parquet"
    out.write_bytes(b"previous plan")

    def interrupted(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _write_frame(pd.DataFrame({"a": [1]}), out)
    assert out.read_bytes() == b"previous plan"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.parquet"]
    monkeypatch.setattr(pd.DataFrame, "to_parquet", lambda *a, **k: _enospc())
    with pytest.raises(OutputError, match=r"plan\.parquet: no space left"):
        _write_frame(pd.DataFrame({"a": [1]}), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.parquet"]


def test_an_unexpected_full_disk_is_still_one_line(monkeypatch, capsys, tmp_path) -> None:
    # before: an OSError(ENOSPC) met outside the atomic writers was a traceback, exit 1
    def full(args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cache.bin"))

    monkeypatch.setattr(cli, "_cmd_run", full)
    code, err = _run_cli(["run", "config.yaml"], capsys)
    assert code == 2
    assert err.startswith("ccgraph: error: No space left on device")
    assert "cache.bin" in err and "Traceback" not in err


# --- names the file system cannot hold -----------------------------------------------------


@pytest.mark.parametrize(
    "command", [["run", "CFG", "-q", "--out"], ["report", "RUN", "--out"], ["query", "RUN"]]
)
def test_output_name_too_long(project, capsys, command) -> None:
    # before: OSError(ENAMETOOLONG) from Path.exists/stat: a traceback, exit 1 (all three)
    cfg, run = project
    args = [str(cfg) if a == "CFG" else str(run) if a == "RUN" else a for a in command]
    if command[0] == "query":
        batch = run.parent / "batch.parquet"
        pd.DataFrame({"id": ["it000"]}).to_parquet(batch)
        args += ["--batch", str(batch), "--out"]
    target = run.parent / (LONG + (".parquet" if command[0] == "query" else ""))
    code, err = _run_cli([*args, str(target)], capsys)
    assert code == 2, err
    assert f"in {run.parent}: the name has" in err and "choose a shorter output name" in err
    assert "Traceback" not in err


def test_name_length_leaves_room_for_temporary_names(tmp_path) -> None:
    # 250 bytes fit the file system but not `.<name>.tmp-<pid>-<random>` beside it: before,
    # the run computed everything and then failed with "File name too long ... permissions"
    with pytest.raises(OutputError, match=r"may have at most 215 here \(255 on"):
        check_name_length(tmp_path / ("y" * 250))
    with pytest.raises(OutputError, match=r"the name has 600 bytes"):
        atomic_write_text(tmp_path / ("é" * 300), "x")  # bytes, not characters, count
    check_name_length(tmp_path / ("z" * 215))
    assert list(tmp_path.iterdir()) == []


# --- stale temporary folders ----------------------------------------------------------------


def test_report_removes_the_temp_folder_of_a_killed_report(project) -> None:
    # before: the report staged in `.rep.tmp-<pid>` (no `-<random>`), a name
    # remove_stale_temp_dirs does not know: a SIGKILLed report left it forever
    _, run = project
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    stale = run.parent / f".rep.tmp-{dead}-abcdefgh"
    (stale / "assets").mkdir(parents=True)
    assert cli.main(["report", str(run), "--out", str(run.parent / "rep")]) == 0
    assert not stale.exists()
    assert _temps(run.parent) == []


# --- SIGTERM --------------------------------------------------------------------------------


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)
def test_sigterm_while_the_run_is_swapped_in(project, monkeypatch, capsys) -> None:
    # before: SIGTERM killed the process where it stood (exit -15, no message): the staging
    # folder stayed until the next run of the same --out
    cfg, run = project
    before = _digests(run)

    def terminated(tmp: Path, final: Path) -> Path:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here
        raise AssertionError("SIGTERM was not turned into an exception")

    monkeypatch.setattr("ccgraph.io._writer.replace_directory", terminated)
    code, err = _run_cli(["run", str(cfg), "-q"], capsys)
    assert code == 143
    assert err.rstrip().endswith("s ccgraph: terminated (SIGTERM)")  # the last line
    assert "Traceback" not in err
    assert _digests(run) == before
    assert _temps(run.parent) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the command


def test_sigterm_mid_stage_exits_143_with_one_line(tmp_path: Path) -> None:
    # before: exit -15 (killed), no message
    cfg = Project(tmp_path, n=200).write()
    assert cli.main(["run", str(cfg), "-q"]) == 0
    before = _digests(tmp_path / "run")
    log = tmp_path / "term.log"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", "COLUMNS": "200"}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ccgraph.cli", "run", str(cfg), "-q"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    deadline = time.monotonic() + 120
    while "cluster ..." not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143, log.read_text()
    text = log.read_text()
    assert text.rstrip().splitlines()[-1] == "ccgraph: terminated (SIGTERM)"
    assert "Traceback" not in text
    assert _digests(tmp_path / "run") == before
    assert _temps(tmp_path) == []


def test_an_output_error_inside_a_write_keeps_its_own_message(tmp_path, monkeypatch) -> None:
    # OutputError is also an OSError: the full-disk wrapping must not replace its message
    from ccgraph.io.atomic import atomic_path

    def refused(tmp: Path, final: Path) -> Path:
        raise OutputError("refusing to replace it: a reason of its own")

    with pytest.raises(OutputError, match=r"^refusing to replace it: a reason of its own$"):
        with atomic_path(tmp_path / "f.txt"):
            refused(tmp_path, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_command_modules_are_imported(monkeypatch, capsys) -> None:
    # before: build_parser (which imports the command's module: pydantic, jinja2, ...) ran
    # outside the try: Ctrl-C in the first second was an import traceback
    def interrupted(command: str | None = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["report", "somewhere"]) == 130
    assert capsys.readouterr().err == "ccgraph: interrupted\n"


# --- outputs of several files ---------------------------------------------------------------


def _evaluation_files(tmp_path: Path) -> tuple[Path, list[Path]]:
    out = tmp_path / "evaluation"
    out.mkdir()
    files = [out / n for n in ("metrics.json", "per_repeat.parquet", "evaluation.md")]
    for f in files:
        f.write_text(f"old {f.name}")
    return out, files


def test_files_written_together_are_all_kept_when_one_fails(tmp_path) -> None:
    # before: evaluate (and experiment analyse) replaced metrics.json, then per_repeat.parquet,
    # then evaluation.md one by one: a full disk at the third left a new metrics.json by an
    # old evaluation.md (two evaluations mixed, silently)
    from ccgraph.io.atomic import atomic_paths

    out, files = _evaluation_files(tmp_path)
    with pytest.raises(OutputError, match=f"cannot write to {out}: no space left"):
        with atomic_paths(*files) as tmps:
            tmps[0].write_text("new")
            tmps[1].write_text("new")
            _enospc()
    assert [f.read_text() for f in files] == [f"old {f.name}" for f in files]
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)
def test_ctrl_c_during_the_renames_is_raised_after_them(tmp_path, monkeypatch) -> None:
    from ccgraph.io import atomic

    out, files = _evaluation_files(tmp_path)
    real = os.replace
    sent = []

    def replace_and_interrupt(src: Path, dst: Path) -> None:
        real(src, dst)
        if not sent:
            sent.append(dst)
            os.kill(os.getpid(), signal.SIGINT)  # held back until every file is in place

    monkeypatch.setattr(atomic.os, "replace", replace_and_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_paths(*files) as tmps:
            for t in tmps:
                t.write_text("new")
    assert [f.read_text() for f in files] == ["new"] * 3
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)


def test_evaluation_files_are_replaced_together(tmp_path, monkeypatch) -> None:
    # the evaluate writer: a failure writing evaluation.md keeps the earlier three files
    from ccgraph.evaluate import output

    out, files = _evaluation_files(tmp_path)
    monkeypatch.setattr(output, "to_markdown", lambda result: "# new")
    monkeypatch.setattr(output, "to_json", lambda result: {"new": True})

    class Result:
        per_repeat = pd.DataFrame({"a": [1]})

    def full(self: Path, *args: object, **kwargs: object) -> None:
        if self.name.startswith(".evaluation.md"):
            _enospc()
        return real_write(self, *args, **kwargs)

    real_write = Path.write_text
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError, match="no space left"):
        output.write_result(Result(), out)  # type: ignore[arg-type]
    assert [f.read_text() for f in files] == [f"old {f.name}" for f in files]


def test_simulated_log_and_its_truth_are_replaced_together(tmp_path, monkeypatch, capsys) -> None:
    # before: the log was replaced, then a full disk writing its .truth.json kept the old
    # truth beside the new log (a wrong "known effect", silently)
    log, truth = tmp_path / "sim.parquet", tmp_path / "sim.truth.json"
    log.write_text("old log")
    truth.write_text("old truth")
    real_write = Path.write_text

    def full(self: Path, *args: object, **kwargs: object) -> int:
        if self.name.startswith(".sim.truth.json"):
            _enospc()
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    code, err = _run_cli(
        ["experiment", "simulate", "--out", str(log), "--n-units", "50", "--seed", "1"], capsys
    )
    assert code == 2 and "no space left" in err
    assert (log.read_text(), truth.read_text()) == ("old log", "old truth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.parquet", "sim.truth.json"]


# --- symbolic links -------------------------------------------------------------------------


def test_report_into_a_symlinked_folder_keeps_the_link(project) -> None:
    # before: the finished report was renamed over the link itself: the link became a plain
    # folder, its target stayed empty and the link was left as `.rep.tmp-...` / `.rep.old-...`
    _, run = project
    target = run.parent / "elsewhere"
    target.mkdir()
    link = run.parent / "rep"
    link.symlink_to(target)
    for _ in range(2):  # a new report, then one over the earlier report
        assert cli.main(["report", str(run), "--out", str(link)]) == 0
        assert link.is_symlink() and link.resolve() == target.resolve()
        assert (target / "index.html").is_file()
        assert _temps(run.parent) == []


def test_a_file_written_through_a_symlink_keeps_the_link(tmp_path) -> None:
    # before: atomic_path renamed the new file over the link (link lost, target unchanged)
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "made.txt")
    atomic_write_text(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "made.txt").read_text() == "made"


# --- two writers of one output --------------------------------------------------------------


def _fake_run(folder: Path, marker: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text('{"schema_version": 1, "ccgraph_version": "0"}')
    (folder / "marker.txt").write_text(marker)
    return folder


def test_two_writers_creating_one_run_directory(tmp_path, monkeypatch) -> None:
    # before: the writer that found --out absent but finished second failed with "cannot
    # write to <parent>: Directory not empty; ... fix its permissions"; now the last writer
    # wins with a complete run, and a report (not a run) says what happened
    from ccgraph.io import atomic

    final = tmp_path / "run"
    mine = _fake_run(atomic.make_temp_dir(final), "second")
    real = atomic.check_replaceable

    def absent_then_taken(path: Path) -> bool:
        found = real(path)
        if not final.exists():
            _fake_run(final, "first")  # the other process finishes just now
        return found

    monkeypatch.setattr(atomic, "check_replaceable", absent_then_taken)
    atomic.replace_directory(mine, final)
    assert (final / "marker.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]

    other = _fake_run(atomic.make_temp_dir(tmp_path / "rep"), "report")
    _fake_run(tmp_path / "rep", "someone else's")
    with pytest.raises(OutputError, match=r"rep appeared while this output was written"):
        atomic.swap_directory(other, tmp_path / "rep", exists=False)
    assert (tmp_path / "rep" / "marker.txt").read_text() == "someone else's"


# --- stdout is for answers ------------------------------------------------------------------


def test_log_lines_go_to_stderr_not_into_the_answers(project, capsys) -> None:
    # before: the log handler wrote to stdout: a warning (say, the embedder version differs
    # from the run's) landed before the JSON of `ccgraph query --json` and broke `| jq`
    import json
    import logging

    _, run = project
    capsys.readouterr()
    code = cli.main(["query", str(run), "--id", "it000", "--json"])
    logging.getLogger("ccgraph.query").warning("a warning while answering")
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["query"] == "it000"
    assert "a warning while answering" in err


def test_an_interrupted_stage_is_not_logged_as_done(caplog) -> None:
    # before: `timed` logged "write done in 0.06 s" right before "ccgraph: terminated"
    import logging

    from ccgraph._logging import timed

    with caplog.at_level(logging.INFO, logger="ccgraph"):
        with pytest.raises(KeyboardInterrupt), timed("write"):
            raise KeyboardInterrupt
        with timed("read"):
            pass
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:2] == ["write ...", lines[1]] and lines[1].startswith("write stopped after")
    assert lines[2] == "read ..." and lines[3].startswith("read done in")
