"""The update's numba kernels are preloaded on a thread (``update.run.KERNEL_MODULES``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ccgraph.update.run import KERNEL_MODULES
from tests.test_kernel_preload import run_python
from tests.update._data import centres, planted, table, write_vectors


def test_update_kernels_are_all_in_the_preload_list(base_run: Path, tmp_path: Path) -> None:
    """Every numba kernel a real update calls lives in a module of ``KERNEL_MODULES``."""
    labels = np.array([0, 1, 2, 3] * 5)
    ids = [f"it{i:04d}" for i in range(160, 180)]
    table(ids, labels, seed=7).to_csv(tmp_path / "batch.csv", index=False)
    vec = write_vectors(tmp_path / "vec.parquet", ids, planted(labels, centres(), seed=7))
    code = f"""
    import json, sys
    from pathlib import Path
    from numba.core.dispatcher import Dispatcher
    import ccgraph._kernel_preload as preload
    preload.preload_kernels = lambda modules: None  # only what the update itself calls
    from ccgraph.update import update_run
    update_run(Path({str(base_run)!r}), Path({str(tmp_path / "batch.csv")!r}),
               out=Path({str(tmp_path / "out")!r}),
               overrides=["embed.precomputed.path={vec}", "update.knn_search=probe"])
    used = set()
    for name, module in list(sys.modules.items()):
        if name.startswith("ccgraph") and module is not None:
            for value in vars(module).values():
                if isinstance(value, Dispatcher) and value.signatures:
                    used.add(value.py_func.__module__)
    print(json.dumps(sorted(used)))
    """
    used = set(json.loads(run_python(code, folder=tmp_path)))
    assert used, "the update called no numba kernel: the check below would prove nothing"
    assert used <= set(KERNEL_MODULES), f"not preloaded: {sorted(used - set(KERNEL_MODULES))}"
