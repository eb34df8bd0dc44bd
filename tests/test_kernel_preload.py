"""Preloading cached numba kernels on a thread (``ccgraph._kernel_preload``).

Each case runs in a fresh interpreter: what is loaded depends on what the process did before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

KERNELS = """
import numba
import numpy as np


@numba.njit(cache=True)
def add_one(x):
    return x + 1.0


@numba.njit(cache=True)
def twice(x):
    return 2 * x


def plain(x):
    return x
"""


def run_python(code: str, *, folder: Path, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter that imports from ``folder`` first; its stdout."""
    path = os.pathsep.join([str(folder), *sys.path])
    full_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def kernel_module(tmp_path: Path) -> Path:
    """A module ``prekern`` with two cached kernels; ``add_one(float64[:])`` is in its cache."""
    (tmp_path / "prekern.py").write_text(KERNELS)
    run_python("import numpy as np, prekern; prekern.add_one(np.zeros(3))", folder=tmp_path)
    return tmp_path


LOADED = """
import json, numpy as np, prekern
from ccgraph._kernel_preload import preload_kernels
thread = preload_kernels(["prekern"])
if thread is not None:
    thread.join()
again = preload_kernels(["prekern"])
loaded = {
    n: [str(s) for s in getattr(getattr(prekern, n), "signatures", ())]
    for n in ("add_one", "twice")
}
print(json.dumps({"started": thread is not None, "again": again is not None, "loaded": loaded}))
"""


def test_preload_loads_the_cached_overloads_without_calling(kernel_module: Path) -> None:
    out = json.loads(run_python(LOADED, folder=kernel_module))
    assert out["started"] and not out["again"]  # once per module and process
    # the one cached signature is loaded; the never-called kernel has nothing to load
    assert out["loaded"] == {
        "add_one": ["(Array(float64, 1, 'C', False, aligned=True),)"],
        "twice": [],
    }


def test_preload_skips_a_stale_cache(kernel_module: Path) -> None:
    source = kernel_module / "prekern.py"
    source.write_text(KERNELS.replace("x + 1.0", "x + 2.0"))  # the cache no longer matches
    out = json.loads(run_python(LOADED, folder=kernel_module))
    assert out["loaded"] == {"add_one": [], "twice": []}


def test_preload_does_nothing_when_jit_is_disabled(kernel_module: Path) -> None:
    out = json.loads(run_python(LOADED, folder=kernel_module, env={"NUMBA_DISABLE_JIT": "1"}))
    assert not out["started"]


def test_preloaded_kernel_gives_the_same_result(kernel_module: Path) -> None:
    code = """
    import numpy as np, prekern
    from ccgraph._kernel_preload import preload_kernels
    preload_kernels(["prekern"]).join()
    print(prekern.add_one(np.arange(3.0)).tolist(), len(prekern.add_one.signatures))
    """
    assert run_python(code, folder=kernel_module).split() == ["[1.0,", "2.0,", "3.0]", "1"]
