"""Exceptions and warnings raised by ccgraph.

Every error a user can cause derives from :class:`CcgraphError`, so scripts can catch
one class, and the command line turns it into a one-line message with exit code 2.
"""

from __future__ import annotations

__all__ = [
    "CcgraphError",
    "ConfigError",
    "ConvergenceWarning",
    "DataQualityWarning",
    "IdMismatchError",
    "InputError",
    "MemoryBudgetError",
    "MissingDependencyError",
    "OutputError",
    "ParameterError",
]


class CcgraphError(Exception):
    """Base class of every error ccgraph raises on purpose."""


class InputError(CcgraphError, ValueError):
    """An input file, table or array cannot be used (names the file, row or column)."""


class ParameterError(CcgraphError, ValueError):
    """A function argument is out of its allowed range (names the parameter)."""


class ConfigError(CcgraphError, ValueError):
    """A YAML configuration is invalid (names the key path)."""


class IdMismatchError(InputError):
    """Two results that must describe the same items in the same order do not."""


class OutputError(CcgraphError, OSError):
    """An output location cannot be written safely."""


class MissingDependencyError(CcgraphError, ImportError):
    """An optional dependency is needed for the requested feature."""


class MemoryBudgetError(CcgraphError, MemoryError):
    """A stage's estimated peak memory exceeds what is available."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at ``max_iter`` before reaching ``tol``."""


class DataQualityWarning(UserWarning):
    """The input is usable but something in it is likely to hurt results."""
