"""ccgraph: similarity graphs over openly licensed image catalogs.

Turn a catalog of images into a mutual-kNN similarity graph, cluster it with Leiden, infer
tags and popularity for weakly labelled items, evaluate the result and query it per image.

Importing the package is cheap: heavy dependencies (torch, pynndescent, pyspark) load only in
the functions that need them. Public names are re-exported lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Catalog": "ccgraph.containers",
    "Embeddings": "ccgraph.containers",
    "KnnGraph": "ccgraph.containers",
    "Partition": "ccgraph.containers",
    "Popularity": "ccgraph.containers",
    "RunResult": "ccgraph.containers",
    "TagScores": "ccgraph.containers",
    "TagSet": "ccgraph.containers",
    "CcgraphError": "ccgraph.exceptions",
    "ConfigError": "ccgraph.exceptions",
    "InputError": "ccgraph.exceptions",
    "ParameterError": "ccgraph.exceptions",
    "ConvergenceWarning": "ccgraph.exceptions",
    "Config": "ccgraph.config",
    "load_config": "ccgraph.config",
    "read_catalog": "ccgraph.io",
    "load_run": "ccgraph.io",
    "write_run": "ccgraph.io",
    "run": "ccgraph.pipeline",
}

_SUBMODULES = {
    "io",
    "embed",
    "graph",
    "cluster",
    "propagate",
    "evaluate",
    "experiment",
    "report",
    "query",
    "spark",
    "pipeline",
    "config",
    "containers",
    "exceptions",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from ccgraph.config import Config, load_config
    from ccgraph.containers import (
        Catalog,
        Embeddings,
        KnnGraph,
        Partition,
        Popularity,
        RunResult,
        TagScores,
        TagSet,
    )
    from ccgraph.exceptions import (
        CcgraphError,
        ConfigError,
        ConvergenceWarning,
        InputError,
        ParameterError,
    )
    from ccgraph.io import load_run, read_catalog, write_run
    from ccgraph.pipeline import run


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"ccgraph.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'ccgraph' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
