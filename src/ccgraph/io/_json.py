"""JSON conversion of manifests and params: numpy scalars, arrays, paths and NaN handled."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON data (dict keys as strings, NaN and inf as None).

    Examples
    --------
    >>> jsonable({"k": np.int64(3), "x": [np.float32(0.5), float("nan")], 1: ("a",)})
    {'k': 3, 'x': [0.5, None], '1': ['a']}
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in seq]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump())
    return str(value)
