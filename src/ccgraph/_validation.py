"""Boundary checks with uniform messages: the parameter, the constraint and the value got."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ccgraph.exceptions import ParameterError

__all__ = [
    "check_choice",
    "check_finite_matrix",
    "check_float",
    "check_int",
    "row_norms",
]


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name`` and the range ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(
            f"`{name}` must be an integer{_range(low, high, '[', ']')}; got {value!r}"
        )
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ParameterError(
            f"`{name}` must be an integer{_range(low, high, '[', ']')}; got {value}"
        )
    return value


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite float within the bounds, or raise naming ``name``."""
    lb = "[" if low_inclusive else "("
    hb = "]" if high_inclusive else ")"
    what = f"`{name}` must be a float{_range(low, high, lb, hb)}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{what}; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{what}; got {value}")
    if low is not None and (value < low or (not low_inclusive and value == low)):
        raise ParameterError(f"{what}; got {value}")
    if high is not None and (value > high or (not high_inclusive and value == high)):
        raise ParameterError(f"{what}; got {value}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    options = list(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise ParameterError(f"`{name}` must be one of {listed}; got {value!r}")
    return value


def check_finite_matrix(name: str, array: np.ndarray) -> None:
    """Raise if a float array holds NaN or infinity, naming the first bad row."""
    if array.dtype.kind != "f":
        return
    # A float64 row sum of finite values cannot overflow (for float32/16 input), so it is
    # finite exactly when the row is, without an array-sized temporary.
    wide = array.dtype.itemsize < 8 and array.ndim == 2
    rows_ok = np.isfinite(array.sum(axis=1, dtype=np.float64)) if wide else None
    if rows_ok is not None:
        if not rows_ok.all():
            row = int(np.flatnonzero(~rows_ok)[0])
            raise ParameterError(
                f"`{name}` holds NaN or infinite values (first at row {row}); "
                "drop or impute those rows before building the graph"
            )
        return
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ParameterError(
            f"`{name}` holds NaN or infinite values (first at row {row}); "
            "drop or impute those rows before building the graph"
        )


def row_norms(arr: np.ndarray) -> np.ndarray:
    """L2 norm of each row of a float array, without float32 overflow or underflow.

    The float32 sum of squares overflows to inf above ~1.8e19 per value and underflows to 0
    below ~1e-23, so a valid direction would be scaled to zeros or read as an all-zero row; such
    rows (rare) are recomputed in float64. A result of 0 means the row is exactly zero.

    Examples
    --------
    >>> x = np.array([[3e30, 4e30], [3e-30, 4e-30], [0, 0]], dtype=np.float32)
    >>> (row_norms(x) / [5e30, 5e-30, 1]).round(6).tolist()
    [1.0, 1.0, 0.0]
    """
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))  # no [n, d] temporary
    odd = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if len(odd):
        sub = arr[odd].astype(np.float64)
        scale = np.abs(sub).max(axis=1)
        safe = np.where(scale > 0, scale, 1.0)
        norms = norms.astype(np.float64)
        with np.errstate(invalid="ignore"):  # a row holding inf or NaN: its norm is NaN
            unit = sub / safe[:, None]
            norms[odd] = scale * np.sqrt(np.einsum("ij,ij->i", unit, unit))
    return norms


def _range(low: Any, high: Any, lb: str, hb: str) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f" >= {low}" if lb == "[" else f" > {low}"
    if low is None:
        return f" <= {high}" if hb == "]" else f" < {high}"
    return f" in {lb}{low}, {high}{hb}"
