"""Reading catalogs and writing / loading run directories (all writes are atomic)."""

from __future__ import annotations

from ccgraph.io.catalog import read_catalog, read_catalog_from_config

__all__ = [
    "read_catalog",
    "read_catalog_from_config",
]
