"""Validation of impression/click logs: clear errors naming the column and the row."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ccgraph.exceptions import DataQualityWarning, InputError

__all__ = ["LOG_COLUMNS", "CheckedLog", "check_log", "resolve_arms"]

LOG_COLUMNS = ("unit", "query", "position", "shown_id", "original_id", "arm", "clicked")
_KNOWN_PAIRS = (("control", "treatment"), ("A1", "A2"))


@dataclass(frozen=True, slots=True, eq=False)
class CheckedLog:
    """A validated log as arrays: per-impression unit code, arm flag, position, click."""

    unit_code: np.ndarray  # int64 [n_impressions], codes into ``units``
    units: np.ndarray  # unit labels, one per unit
    unit_treated: np.ndarray  # bool [n_units]
    treated: np.ndarray  # bool [n_impressions]
    position: np.ndarray  # int64 [n_impressions]
    clicked: np.ndarray  # float64 0/1 [n_impressions]
    control: str
    treatment: str


def resolve_arms(values: pd.Series, arms: tuple[str, str] | None) -> tuple[str, str]:
    """Return ``(control, treatment)``: ``arms`` if given, else inferred from the arm labels."""
    present = set(pd.unique(values.astype(str)))
    if arms is not None:
        if len(arms) != 2 or len(set(arms)) != 2:
            raise InputError(
                f"`arms` must name two different arms (control, treatment); got {arms}"
            )
        return str(arms[0]), str(arms[1])
    for pair in _KNOWN_PAIRS:
        if present <= set(pair) or set(pair) <= present:  # extra labels: named by row later
            return pair
    expected = " or ".join(f"{{{a!r}, {b!r}}}" for a, b in _KNOWN_PAIRS)
    raise InputError(
        f"log column `arm` holds {sorted(present)[:5]}; expected {expected}, or pass "
        "`arms=(control, treatment)`"
    )


def check_log(
    log: Any, *, arms: tuple[str, str] | None = None, source: str | None = None
) -> CheckedLog:
    """Validate an impression log and return it as arrays.

    Parameters
    ----------
    log
        The impressions, one row each, with the columns :data:`LOG_COLUMNS`.
    arms
        ``(control, treatment)`` labels; default inferred from the ``arm`` column.
    source
        The file the log was read from: messages then start with it and give the 1-based
        data row (the header not counted), as in the file; without it, the 0-based position
        in the table.

    Raises
    ------
    InputError
        Not a DataFrame; a missing column; a missing value; an empty or blank ``unit``; a
        negative or non-integer ``position``; ``clicked`` not 0/1 or boolean; an arm outside the
        two arms; an arm without units; a unit seen in both arms. Messages name the column and
        the first bad row.
    """
    try:
        return _check(log, arms, source)
    except InputError as exc:
        if source is None:
            raise
        raise InputError(f"{source}: {exc}") from None


def _check(log: Any, arms: tuple[str, str] | None, source: str | None) -> CheckedLog:
    if not isinstance(log, pd.DataFrame):
        raise InputError(f"the log must be a pandas DataFrame; got {type(log).__name__}")
    missing = [c for c in LOG_COLUMNS if c not in log.columns]
    if missing:
        raise InputError(
            f"the log is missing column(s) {', '.join(map(repr, missing))}; "
            f"expected {', '.join(LOG_COLUMNS)}"
        )
    if len(log) == 0:
        raise InputError("the log has no rows")
    for col in LOG_COLUMNS:
        _no_missing(log[col], col, source)
    blank = log["unit"].astype(str).str.strip().eq("").to_numpy()
    if blank.any():  # all blank units would otherwise pool into one unit ''
        units_raw = log["unit"].to_numpy()
        _fail("unit", blank, "must name the randomisation unit, not be blank", units_raw, source)
    position = _positions(log["position"], source)
    clicked = _clicks(log["clicked"], source)
    control, treatment = resolve_arms(log["arm"], arms)
    arm = log["arm"].astype(str).to_numpy()
    bad = (arm != control) & (arm != treatment)
    if bad.any():
        _fail("arm", bad, f"must be {control!r} or {treatment!r}", arm, source)
    treated = arm == treatment
    codes, units = pd.factorize(log["unit"].astype(str), sort=False)
    codes = codes.astype(np.int64)
    n_units = len(units)
    per_unit = np.bincount(codes, minlength=n_units)
    per_unit_t = np.bincount(codes, weights=treated, minlength=n_units)
    mixed = (per_unit_t > 0) & (per_unit_t < per_unit)
    if mixed.any():
        u = int(np.flatnonzero(mixed)[0])
        raise InputError(
            f"log column `unit`: unit {units[u]!r} appears in both arms ({int(mixed.sum())} such "
            "units); the randomisation unit must map to one arm"
        )
    unit_treated = per_unit_t > 0
    _warn_repeated_rows(log, source)
    for name, flag in ((control, False), (treatment, True)):
        if int((unit_treated == flag).sum()) < 2:
            raise InputError(f"arm {name!r} has fewer than 2 units in the log; nothing to compare")
    return CheckedLog(
        codes,
        np.asarray(units, dtype=object),
        unit_treated,
        treated,
        position,
        clicked,
        control,
        treatment,
    )


def _warn_repeated_rows(log: pd.DataFrame, source: str | None) -> None:
    """Warn when the log looks like its events twice (every distinct row an even number of times).

    Repeated impressions are counted again, which narrows the intervals. Single repeats may be
    real (the same unit sent the same query twice), so only a log in which *every* row comes in
    pairs (e.g. a file appended to itself) is flagged, and it is not dropped.
    """
    counts = log.groupby(list(LOG_COLUMNS), sort=False, dropna=False).size().to_numpy()
    if len(counts) and (counts % 2 == 0).all():
        where = f"{source}: " if source is not None else ""
        warnings.warn(
            f"{where}every row of the log appears an even number of times ({len(log):,} rows, "
            f"{len(counts):,} distinct in {', '.join(LOG_COLUMNS)}): it looks like the same "
            "events twice, and each copy is counted as another impression, which narrows the "
            "intervals -- drop the duplicates (e.g. `log.drop_duplicates()`) if so",
            DataQualityWarning,
            stacklevel=4,
        )


def _row(row: int, source: str | None) -> str:
    return f"row {row}" if source is None else f"data row {row + 1}"


def _no_missing(col: pd.Series, name: str, source: str | None) -> None:
    na = col.isna().to_numpy()
    if na.any():
        row = _row(int(np.flatnonzero(na)[0]), source)
        raise InputError(
            f"log column `{name}` has a missing value at {row} ({int(na.sum())} missing)"
        )


def _positions(col: pd.Series, source: str | None) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
        vals = pd.to_numeric(col, errors="coerce")
        bad = vals.isna().to_numpy()
        if bad.any():
            _fail("position", bad, "must be a non-negative integer", col.to_numpy(), source)
        col = vals
    v = col.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v) | (v < 0) | (v != np.floor(v))
    if bad.any():
        _fail("position", bad, "must be a non-negative integer", col.to_numpy(), source)
    return v.astype(np.int64)


def _clicks(col: pd.Series, source: str | None) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64)
    if not pd.api.types.is_numeric_dtype(col):
        raw = col.to_numpy()
        bad = np.array(
            [
                not (
                    isinstance(x, (bool, np.bool_, int, np.integer, float, np.floating))
                    and x in (0, 1)
                )
                for x in raw
            ]
        )
        if bad.any():
            _fail("clicked", bad, "must be 0/1 or boolean", raw, source)
        return raw.astype(np.float64)
    v = col.to_numpy(dtype=np.float64)
    bad = (v != 0) & (v != 1)
    if bad.any():
        _fail("clicked", bad, "must be 0/1 or boolean", col.to_numpy(), source)
    return v


def _fail(name: str, bad: np.ndarray, what: str, values: np.ndarray, source: str | None) -> None:
    row = int(np.flatnonzero(bad)[0])
    value = values[row]
    value = value.item() if isinstance(value, np.generic) else value  # 2, not np.int64(2)
    raise InputError(
        f"log column `{name}` {what}; {_row(row, source)} has {value!r} ({int(bad.sum())} bad rows)"
    )
