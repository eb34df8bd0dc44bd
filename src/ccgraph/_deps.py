"""Optional dependencies, imported on demand with an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

from ccgraph.exceptions import MissingDependencyError

__all__ = ["import_optional"]


def import_optional(name: str, extra: str) -> ModuleType:
    """Import ``name`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this feature needs the optional package {name!r}; "
            f"install it with: pip install 'ccgraph[{extra}]'"
        ) from exc
