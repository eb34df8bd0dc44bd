"""``graph.npz``: a :class:`~ccgraph.containers.KnnGraph` as plain numpy arrays, no pickle.

The file is a zip of ``.npy`` arrays readable by :func:`numpy.load` with
``allow_pickle=False``: ``data``, ``indices``, ``indptr``, ``shape`` (the full symmetric CSR),
``ids`` (a unicode array in row order) and, for a stand-alone graph, ``params`` (a JSON string).
Entries carry a fixed timestamp so the same graph always gives the same bytes.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ccgraph.containers import KnnGraph
from ccgraph.exceptions import InputError
from ccgraph.io._json import jsonable
from ccgraph.io.atomic import atomic_path

__all__ = ["GRAPH_ARRAYS", "graph_arrays", "load_graph", "read_npz", "save_graph", "write_npz"]

GRAPH_ARRAYS = ("data", "indices", "indptr", "shape", "ids")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """Write arrays as an uncompressed ``.npz`` atomically and byte-reproducibly."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
    return Path(path)


def read_npz(path: str | os.PathLike[str], required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read an ``.npz`` without pickle, checking that the ``required`` arrays are there."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"graph file not found: {p}")
    try:
        # the file is opened here: np.load leaves its own handle open when the zip is corrupt
        with p.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
            missing = [k for k in required if k not in z.files]
            if missing:
                raise InputError(f"{p}: lacks the arrays {missing} (has {sorted(z.files)})")
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(
            f"{p}: not a readable numpy .npz file without pickled objects ({exc})"
        ) from None


def graph_arrays(graph: KnnGraph) -> dict[str, np.ndarray]:
    """Return the arrays of ``graph.npz`` for a graph (CSR parts, shape and ids)."""
    a = graph.adjacency
    return {
        "data": np.asarray(a.data, dtype=np.float32),
        "indices": np.asarray(a.indices),
        "indptr": np.asarray(a.indptr),
        "shape": np.asarray(a.shape, dtype=np.int64),
        "ids": np.asarray(graph.ids, dtype=str),
    }


def graph_from_arrays(
    arrays: Mapping[str, np.ndarray], params: Mapping[str, Any], *, where: Path
) -> KnnGraph:
    """Rebuild a :class:`KnnGraph` from the arrays of :func:`graph_arrays`."""
    try:
        shape = tuple(int(x) for x in arrays["shape"])
        m = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        return KnnGraph(m, arrays["ids"].astype(str), dict(params))
    except (ValueError, TypeError, IndexError, InputError) as exc:
        raise InputError(f"{where}: the stored graph is inconsistent ({exc})") from None


def save_graph(graph: KnnGraph, path: str | os.PathLike[str]) -> Path:
    """Save a graph alone (arrays of ``graph.npz`` plus its ``params`` as a JSON string).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> g = KnnGraph.from_adjacency(np.array([[0, 2], [2, 0]]), ["a", "b"], params={"k": 1})
    >>> f = save_graph(g, pathlib.Path(tempfile.mkdtemp()) / "g.npz")
    >>> h = load_graph(f)
    >>> h.ids.tolist(), h.params, h.adjacency.toarray().tolist()
    (['a', 'b'], {'k': 1}, [[0.0, 2.0], [2.0, 0.0]])
    """
    arrays = graph_arrays(graph)
    arrays["params"] = np.array(json.dumps(jsonable(dict(graph.params)), sort_keys=True))
    return write_npz(path, arrays)


def load_graph(path: str | os.PathLike[str]) -> KnnGraph:
    """Load a graph written by :func:`save_graph` (or a run directory's ``graph.npz``)."""
    p = Path(path)
    arrays = read_npz(p, GRAPH_ARRAYS)
    params: dict[str, Any] = {}
    if "params" in arrays:
        try:
            params = json.loads(str(arrays["params"]))
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}: `params` is not valid JSON ({exc})") from None
    return graph_from_arrays(arrays, params, where=p)
