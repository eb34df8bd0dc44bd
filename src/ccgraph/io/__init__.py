"""Reading catalogs and writing / loading run directories (every write is atomic).

- :func:`read_catalog`, :func:`read_catalog_from_config`: catalog files -> ``Catalog``.
- :func:`write_run`, :func:`load_run`: ``RunResult`` <-> run directory.
- :func:`save_graph`, :func:`load_graph`: a ``KnnGraph`` alone as ``.npz``.
"""

from __future__ import annotations

from ccgraph.io.catalog import read_catalog, read_catalog_from_config
from ccgraph.io.graphfile import load_graph, save_graph
from ccgraph.io.run import load_run, write_run

__all__ = [
    "load_graph",
    "load_run",
    "read_catalog",
    "read_catalog_from_config",
    "save_graph",
    "write_run",
]
