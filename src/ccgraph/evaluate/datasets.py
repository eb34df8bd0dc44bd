"""Loaders for the shared benchmark data: Cora / CiteSeer (Planetoid split).

Flickr8k caption tags are in :mod:`ccgraph.evaluate.flickr8k`.

The data folder is ``data_dir`` if given, else ``$CCGRAPH_DATA_DIR``, else ``../shared/data``
beside the repository. Nothing is downloaded; a missing file raises :class:`InputError` naming
the path and how to point ccgraph at the data.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ccgraph._validation import check_choice
from ccgraph.containers import as_ids
from ccgraph.exceptions import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "CitationDataset",
    "dataset_path",
    "load_citation_npz",
    "load_planetoid",
    "resolve_data_dir",
]

CITATION_NAMES = ("cora", "citeseer")


def dataset_path(configured: str | Path | None, folder: str) -> Path:
    """Return a named data set's folder: ``configured`` if it exists, else the shared one.

    The fallback is ``folder`` inside ``$CCGRAPH_DATA_DIR`` (or ``../shared/data``).
    """
    if configured is not None and Path(configured).exists():
        return Path(configured)
    try:
        fallback = resolve_data_dir() / folder
    except InputError:
        fallback = None
    if fallback is not None and fallback.exists():
        if configured is not None:
            logger.warning(
                "data set folder %s does not exist; using the shared copy %s "
                "(CCGRAPH_DATA_DIR); fix `data.path` to use another one",
                configured,
                fallback,
            )
        return fallback
    raise InputError(
        f"data set folder {configured} does not exist; fix `data.path` or set CCGRAPH_DATA_DIR "
        f"to the folder that holds {folder}/"
    )


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Return the shared data folder: ``data_dir``, ``$CCGRAPH_DATA_DIR`` or ``../shared/data``.

    Raises
    ------
    InputError
        The folder does not exist.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
    elif os.environ.get("CCGRAPH_DATA_DIR"):
        path = Path(os.environ["CCGRAPH_DATA_DIR"]).expanduser()
    else:
        path = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    if not path.is_dir():
        raise InputError(
            f"the shared data folder {path} does not exist; pass `data_dir` or set "
            "CCGRAPH_DATA_DIR to the folder that holds citation-graphs/ and flickr8k-1000/"
        )
    return path


@dataclass(frozen=True, slots=True, eq=False)
class CitationDataset:
    """A node-classification graph with features, one label per node and a split.

    Attributes
    ----------
    name
        ``"cora"`` or ``"citeseer"``.
    adjacency
        Symmetric binary CSR, zero diagonal.
    features
        CSR ``[n, d]`` bag-of-words (rows of zeros for nodes without features).
    labels
        Class of each node, ``-1`` where unknown (CiteSeer's 15 isolated test-range nodes).
    train, val, test
        Node indices of the split (empty when the source has none).
    ids
        Node ids (row order).
    """

    name: str
    adjacency: sp.csr_matrix
    features: sp.csr_matrix
    labels: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    ids: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.adjacency.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return int(self.labels.max()) + 1

    def __repr__(self) -> str:
        return (
            f"CitationDataset({self.name}: {self.n_nodes} nodes, {self.adjacency.nnz // 2} "
            f"edges, {self.features.shape[1]} features, {self.n_classes} classes, split "
            f"{len(self.train)}/{len(self.val)}/{len(self.test)})"
        )


class _PlanetoidUnpickler(pickle.Unpickler):
    """Unpickler that only builds the few numpy / scipy / builtin types the split files hold."""

    _ALLOWED = {
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
        ("collections", "defaultdict"): __import__("collections").defaultdict,
        ("__builtin__", "list"): list,
        ("builtins", "list"): list,
        ("scipy.sparse.csr", "csr_matrix"): sp.csr_matrix,
        ("scipy.sparse._csr", "csr_matrix"): sp.csr_matrix,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "_reconstruct",
            "scalar",
        ):
            try:
                from numpy._core import multiarray
            except ImportError:  # numpy < 2
                from numpy.core import multiarray  # type: ignore[no-redef]
            return getattr(multiarray, name)
        raise InputError(f"unexpected object {module}.{name} in a Planetoid split file")


def _citation_dir(data_dir: str | Path | None, sub: str) -> Path:
    root = resolve_data_dir(data_dir)
    path = root / sub if (root / sub).is_dir() else root / "citation-graphs" / sub
    if not path.is_dir():
        raise InputError(
            f"{path} does not exist; the Cora / CiteSeer files belong in citation-graphs/{sub}/ "
            "of the shared data folder"
        )
    return path


def _read_pickle(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"Planetoid file {path} does not exist")
    with path.open("rb") as fh:
        try:
            return _PlanetoidUnpickler(fh, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise InputError(f"{path}: not a readable Planetoid pickle ({exc})") from None


def load_planetoid(name: str, *, data_dir: str | Path | None = None) -> CitationDataset:
    """Load Cora or CiteSeer with the Planetoid split (Yang et al. 2016), as Kipf's code does.

    Parameters
    ----------
    name
        ``"cora"`` or ``"citeseer"``.
    data_dir
        The shared data folder or its ``citation-graphs`` folder (default:
        ``$CCGRAPH_DATA_DIR`` or ``../shared/data``).

    Returns
    -------
    CitationDataset
        Train = the first 20 nodes per class (the ``x`` rows), validation = the next 500 nodes,
        test = the 1,000 nodes of ``test.index``.

    Notes
    -----
    Node order follows the Planetoid files: ``allx`` rows first, then the test range, with the
    test rows moved to the positions of ``test.index``. CiteSeer's graph has 15 nodes inside
    the test range that have no features or labels; like Kipf & Welling's ``load_data`` they
    get zero feature rows, and here the label ``-1`` (they are in no split). The pickles are
    read with an unpickler that only admits numpy arrays, CSR matrices, lists and dicts.

    References
    ----------
    Yang, Cohen, Salakhutdinov (2016). Revisiting semi-supervised learning with graph
    embeddings. ICML. Kipf & Welling (2017). Semi-supervised classification with graph
    convolutional networks. ICLR (``gcn/utils.py:load_data``).
    """
    name = check_choice("name", str(name).lower(), CITATION_NAMES)
    root = _citation_dir(data_dir, "planetoid")
    obj = {
        k: _read_pickle(root / f"ind.{name}.{k}")
        for k in ("x", "y", "tx", "ty", "allx", "ally", "graph")
    }
    index_path = root / f"ind.{name}.test.index"
    if not index_path.is_file():
        raise InputError(f"Planetoid file {index_path} does not exist")
    test_reorder = np.loadtxt(index_path, dtype=np.int64).ravel()
    test_range = np.sort(test_reorder)
    tx = sp.csr_matrix(obj["tx"], dtype=np.float32)
    ty = np.asarray(obj["ty"], dtype=np.float32)
    lo, hi = int(test_range.min()), int(test_range.max())
    if hi - lo + 1 != len(test_range):  # CiteSeer: isolated nodes with no features or labels
        full = hi - lo + 1
        tx_ext = sp.lil_matrix((full, tx.shape[1]), dtype=np.float32)
        tx_ext[test_range - lo, :] = tx
        tx = tx_ext.tocsr()
        ty_ext = np.zeros((full, ty.shape[1]), dtype=np.float32)
        ty_ext[test_range - lo, :] = ty
        ty = ty_ext
    features = sp.vstack([sp.csr_matrix(obj["allx"], dtype=np.float32), tx]).tolil()
    features[test_reorder, :] = features[test_range, :]
    onehot = np.vstack([np.asarray(obj["ally"], dtype=np.float32), ty])
    onehot[test_reorder, :] = onehot[test_range, :]
    labels = np.where(onehot.sum(axis=1) > 0, onehot.argmax(axis=1), -1).astype(np.int64)

    graph = obj["graph"]
    n = features.shape[0]
    rows = np.fromiter((u for u, vs in graph.items() for _ in vs), dtype=np.int64)
    cols = np.fromiter((v for vs in graph.values() for v in vs), dtype=np.int64)
    n = max(n, int(max(rows.max(), cols.max())) + 1)
    adj = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    adj = ((adj + adj.T) > 0).astype(np.float32).tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    adj.sort_indices()
    n_train = int(np.asarray(obj["y"]).shape[0])
    return CitationDataset(
        name=name,
        adjacency=adj,
        features=features.tocsr(),
        labels=labels,
        train=np.arange(n_train, dtype=np.int64),
        val=np.arange(n_train, n_train + 500, dtype=np.int64),
        test=test_range.astype(np.int64),
        ids=as_ids(np.arange(n)),
        params={"source": str(root), "split": "planetoid"},
    )


def load_citation_npz(name: str, *, data_dir: str | Path | None = None) -> CitationDataset:
    """Load the gnn-benchmark ``npz`` version of Cora or CiteSeer (no split; plain numpy).

    The node order differs from the Planetoid files, so this is for unsupervised uses
    (clustering against the classes), not for the Planetoid protocol.
    """
    name = check_choice("name", str(name).lower(), CITATION_NAMES)
    path = _citation_dir(data_dir, "npz") / f"{name}.npz"
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        adj = sp.csr_matrix(
            (z["adj_data"], z["adj_indices"], z["adj_indptr"]), shape=tuple(z["adj_shape"])
        )
        feats = sp.csr_matrix(
            (z["attr_data"], z["attr_indices"], z["attr_indptr"]), shape=tuple(z["attr_shape"])
        )
        labels = z["labels"].astype(np.int64)
        ids = z["node_names"].astype(str) if "node_names" in z.files else np.arange(len(labels))
    adj = ((adj + adj.T) > 0).astype(np.float32).tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    empty = np.zeros(0, dtype=np.int64)
    return CitationDataset(
        name=name,
        adjacency=adj,
        features=feats.astype(np.float32).tocsr(),
        labels=labels,
        train=empty,
        val=empty,
        test=empty,
        ids=as_ids(ids),
        params={"source": str(path), "split": None},
    )
