from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ccgraph.exceptions import OutputError
from ccgraph.io import atomic
from ccgraph.io.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    is_run_directory,
    make_temp_dir,
    replace_directory,
)


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert _leftovers(target.parent, {"a.txt"}) == []


def test_failure_mid_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old content")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("boom")
    assert target.read_text() == "old content"
    assert _leftovers(tmp_path, {"a.txt"}) == []


def test_temp_file_is_beside_target(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert not target.exists()
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"


def test_unwritable_parent_is_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("I am a file")
    with pytest.raises(OutputError, match=r"cannot write to .*file\.txt.*output directory"):
        atomic_write_text(blocker / "sub" / "a.txt", "x")
    with pytest.raises(OutputError, match="cannot write to"):
        make_temp_dir(blocker / "run")


def _fake_run(folder: Path, marker: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(
        json.dumps({"schema_version": 1, "ccgraph_version": "0.1.0"})
    )
    (folder / "marker.txt").write_text(marker)
    return folder


def test_is_run_directory(tmp_path: Path) -> None:
    assert is_run_directory(_fake_run(tmp_path / "r", "x"))
    other = tmp_path / "o"
    other.mkdir()
    (other / "manifest.json").write_text('{"name": "something else"}')
    assert not is_run_directory(other)
    (other / "manifest.json").write_text("not json")
    assert not is_run_directory(other)
    assert not is_run_directory(tmp_path / "missing")


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_directory_swaps_old_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    final = _fake_run(tmp_path / "run", "old")
    tmp = _fake_run(make_temp_dir(final), "new")
    assert replace_directory(tmp, final) == final
    assert (final / "marker.txt").read_text() == "new"
    assert _leftovers(tmp_path, {"run"}) == []


def test_replace_directory_into_absent_and_empty(tmp_path: Path) -> None:
    final = tmp_path / "deep" / "run"
    tmp = _fake_run(make_temp_dir(final), "a")
    replace_directory(tmp, final)
    assert (final / "marker.txt").read_text() == "a"
    empty = tmp_path / "empty"
    empty.mkdir()
    replace_directory(_fake_run(make_temp_dir(empty), "b"), empty)
    assert (empty / "marker.txt").read_text() == "b"


def test_replace_directory_refuses_foreign_directory(tmp_path: Path) -> None:
    final = tmp_path / "photos"
    final.mkdir()
    (final / "holiday.jpg").write_bytes(b"precious")
    tmp = _fake_run(make_temp_dir(final), "new")
    with pytest.raises(OutputError, match=r"refusing to replace .*photos.*not a ccgraph run"):
        replace_directory(tmp, final)
    assert (final / "holiday.jpg").read_bytes() == b"precious"


def test_replace_directory_refuses_file(tmp_path: Path) -> None:
    final = tmp_path / "run"
    final.write_text("a file")
    with pytest.raises(OutputError, match="is a file"):
        replace_directory(_fake_run(tmp_path / "t", "x"), final)


def test_remove_stale_temp_dirs_spares_live_writers(tmp_path: Path) -> None:
    import os

    from ccgraph.io.atomic import remove_stale_temp_dirs

    live = tmp_path / f".run.tmp-{os.getpid()}-abc"
    dead = tmp_path / ".run.tmp-999999999-abc"  # above Linux's pid_max: no such process
    other = tmp_path / ".other.tmp-999999999-abc"
    for d in (live, dead, other):
        d.mkdir()
    assert remove_stale_temp_dirs(tmp_path / "run") == [dead]
    assert live.exists() and other.exists() and not dead.exists()


def test_atomic_path_over_a_directory_is_an_output_error(tmp_path: Path) -> None:
    # before: IsADirectoryError from os.replace (a traceback from `query --batch --out DIR`)
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"answers: a directory of that name exists"):
        atomic_write_text(folder, "x")
    assert (folder / "keep.txt").read_text() == "mine"
    assert _leftovers(tmp_path, {"answers"}) == []


def test_outputs_get_the_usual_modes_not_the_temp_file_ones(tmp_path: Path) -> None:
    # before: files were 0600 and run directories 0700 (mkstemp / mkdtemp modes)
    mask = os.umask(0o022)
    os.umask(mask)
    target = atomic_write_text(tmp_path / "a.txt", "x")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    folder = make_temp_dir(tmp_path / "run")
    (tmp_path / "plain_dir").mkdir()
    assert stat.S_IMODE(folder.stat().st_mode) == stat.S_IMODE(
        (tmp_path / "plain_dir").stat().st_mode
    )


def test_a_mount_point_is_refused_before_any_work(tmp_path: Path, monkeypatch) -> None:
    mount = tmp_path / "disk"
    mount.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mount or real(p))
    with pytest.raises(OutputError, match=r"mount point.*inside it") as err:
        atomic.check_replaceable(mount)
    assert str(mount / "run") in str(err.value)
    link = tmp_path / "link"
    link.symlink_to(mount)  # an output given as a link to the mount point: the same
    with pytest.raises(OutputError, match="mount point"):
        atomic.refuse_existing_run(link, overwrite=True, hint="")
    atomic.check_replaceable(mount / "run")  # a folder inside it is fine (absent: False)
    assert os.listdir(mount) == []
