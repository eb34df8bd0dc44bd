"""Deterministic arm assignment by a salted hash, reproducible by any service.

The recipe (also in ``docs/experiment.md``) uses only SHA-256 and 64-bit integers, so a search
front end in any language assigns a unit to the same arm as this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ccgraph._validation import check_float
from ccgraph.exceptions import InputError, ParameterError

__all__ = ["CONTROL", "TREATMENT", "arm_weights", "assign", "bucket"]

CONTROL = "control"
TREATMENT = "treatment"
AA_ARMS = ("A1", "A2")
_SCALE = 2.0**-53


def bucket(units: Iterable[Any], *, salt: str) -> np.ndarray:
    """Return each unit's bucket value ``u`` in ``[0, 1)`` (the first step of :func:`assign`).

    Parameters
    ----------
    units
        Unit identifiers (session or user ids). Each is formatted with ``str()``, so the integer
        ``42`` and the string ``"42"`` share a bucket.
    salt
        The experiment's salt; a new salt re-randomises every unit independently.

    Returns
    -------
    numpy.ndarray
        float64 values in ``[0, 1)``, one per unit.

    Notes
    -----
    ``h`` is the SHA-256 digest of the UTF-8 bytes of ``f"{salt}:{unit}"``; its first 8 bytes
    read as a big-endian unsigned 64-bit integer give ``x``, and ``u = (x >> 11) / 2**53`` (the
    top 53 bits of ``x / 2**64``, exactly representable as a double, so every language computes
    the same ``u``).

    Examples
    --------
    >>> float(bucket(["user-1"], salt="exp1")[0])  # doctest: +ELLIPSIS
    0.07026...
    """
    salt = _check_salt(salt)
    values = _as_unit_strings(units)
    out = np.empty(len(values), dtype=np.float64)
    prefix = f"{salt}:".encode()
    for i, unit in enumerate(values):
        digest = hashlib.sha256(prefix + unit.encode("utf-8")).digest()
        out[i] = (int.from_bytes(digest[:8], "big") >> 11) * _SCALE
    return out


def arm_weights(
    allocation: float | Mapping[str, float] = 0.5, *, aa: bool = False
) -> dict[str, float]:
    """Return the normalised arm weights, in the order arms are laid out on ``[0, 1)``.

    A float is the treatment share: ``{"control": 1 - a, "treatment": a}`` (``{"A1": 1 - a,
    "A2": a}`` when ``aa``). A mapping gives arm names and non-negative weights, normalised to sum
    to one, laid out in the mapping's order (with ``aa`` its arms are renamed ``A1``, ``A2``, ...).
    """
    if isinstance(allocation, Mapping):
        if len(allocation) < 2:
            raise ParameterError(f"`allocation` needs at least two arms; got {dict(allocation)!r}")
        names = [str(k) for k in allocation]
        raw = [check_float(f"allocation[{k!r}]", v, low=0.0) for k, v in allocation.items()]
        if len(set(names)) != len(names):
            raise ParameterError(f"`allocation` arm names must be unique; got {names}")
        total = sum(raw)
        if total <= 0:
            raise ParameterError(f"`allocation` weights must sum to > 0; got {dict(allocation)!r}")
        if aa:
            names = [f"A{i + 1}" for i in range(len(names))]
        return {n: w / total for n, w in zip(names, raw, strict=True)}
    share = check_float(
        "allocation", allocation, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    a, b = AA_ARMS if aa else (CONTROL, TREATMENT)
    return {a: 1.0 - share, b: share}


def assign(
    units: Iterable[Any],
    *,
    salt: str,
    allocation: float | Mapping[str, float] = 0.5,
    aa: bool = False,
) -> np.ndarray:
    """Assign each unit to an arm by a salted hash (deterministic, stateless, reproducible).

    Parameters
    ----------
    units
        Randomisation units (session or user ids), formatted with ``str()``.
    salt
        Experiment salt: the same salt always gives the same assignment; change it for a new
        experiment so assignments are independent of earlier ones.
    allocation
        Treatment share in ``(0, 1)`` (arms ``control`` / ``treatment``), or a mapping of arm name
        to weight (normalised), laid out on ``[0, 1)`` in the mapping's order.
    aa
        A/A mode: the arms are named ``A1``, ``A2`` (same split) and nobody is treated, for a null
        test of the whole pipeline (assignment, logging, analysis).

    Returns
    -------
    numpy.ndarray
        Object array of arm names, one per unit.

    Notes
    -----
    With ``u`` from :func:`bucket` and cumulative weights ``c_1 < c_2 < ... < c_K = 1`` (float64
    partial sums of the normalised weights, in order), the unit goes to the first arm ``k`` with
    ``u < c_k`` (the last arm takes anything left by rounding).

    Examples
    --------
    >>> assign(["user-1", "user-2", "user-8"], salt="exp1").tolist()
    ['control', 'control', 'treatment']
    """
    weights = arm_weights(allocation, aa=aa)
    u = bucket(units, salt=salt)
    names = np.array(list(weights), dtype=object)
    cum = np.cumsum(np.fromiter(weights.values(), dtype=np.float64))
    idx = np.searchsorted(cum, u, side="right")
    return names[np.minimum(idx, len(names) - 1)]


def _check_salt(salt: Any) -> str:
    if not isinstance(salt, str) or not salt:
        raise ParameterError(f"`salt` must be a non-empty string; got {salt!r}")
    return salt


def _as_unit_strings(units: Iterable[Any]) -> list[str]:
    if isinstance(units, (str, bytes)):
        raise ParameterError("`units` must be a sequence of unit ids, not a single string")
    series = pd.Series(list(units) if not isinstance(units, (pd.Series, np.ndarray)) else units)
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise InputError(f"`units` holds a missing value at row {row}; drop or fill it first")
    return [str(v) for v in series.tolist()]
