from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ccgraph.exceptions import InputError
from ccgraph.experiment import analyse, check_log


def _log(n=8):
    return pd.DataFrame(
        {
            "unit": [f"u{i % 4}" for i in range(n)],
            "query": "q",
            "position": np.arange(n) % 3,
            "shown_id": "a",
            "original_id": "a",
            "arm": ["control" if i % 4 < 2 else "treatment" for i in range(n)],
            "clicked": [0, 1] * (n // 2),
        }
    )


def test_valid_log_passes():
    assert analyse(_log()).difference == pytest.approx(0.0)


def test_missing_column_named():
    with pytest.raises(InputError, match="'clicked'"):
        analyse(_log().drop(columns="clicked"))


def test_not_a_frame_or_empty():
    with pytest.raises(InputError, match="DataFrame"):
        analyse({"unit": [1]})
    with pytest.raises(InputError, match="no rows"):
        analyse(_log().iloc[:0])


@pytest.mark.parametrize(
    ("column", "value", "pattern"),
    [
        ("clicked", 2, r"`clicked`.*row 3"),
        ("clicked", "yes", r"`clicked`.*row 3"),
        ("arm", "tretment", r"`arm`.*row 3"),
        ("position", -1, r"`position`.*row 3"),
        ("position", 1.5, r"`position`.*row 3"),
        ("unit", None, r"`unit`.*missing value at row 3"),
        ("clicked", np.nan, r"`clicked`.*missing value at row 3"),
        ("shown_id", None, r"`shown_id`.*row 3"),
    ],
)
def test_bad_values_name_column_and_row(column, value, pattern):
    log = _log()
    log[column] = log[column].astype(object)
    log.loc[3, column] = value
    with pytest.raises(InputError, match=pattern):
        analyse(log)


def test_unknown_arm_names():
    log = _log()
    log["arm"] = log["arm"].map({"control": "x", "treatment": "y"})
    with pytest.raises(InputError, match="arm"):
        analyse(log)
    assert analyse(log, arms=("x", "y")).control == "x"


def test_unit_in_both_arms():
    log = _log()
    log.loc[0, "arm"] = "treatment"  # u0 now in both arms
    with pytest.raises(InputError, match=r"'u0'.*both arms"):
        analyse(log)


def test_one_arm_only():
    log = _log()
    log["arm"] = "control"
    with pytest.raises(InputError, match="'treatment' has fewer than 2 units"):
        analyse(log)


def test_boolean_and_float_clicks_accepted():
    log = _log()
    a = analyse(log).difference
    log["clicked"] = log["clicked"].astype(bool)
    assert analyse(log).difference == a
    log["clicked"] = log["clicked"].astype(float)
    assert analyse(log).difference == a


def test_bad_value_shown_as_a_plain_number():
    # before: "row 3 has np.int64(2)"
    log = _log()
    log.loc[3, "clicked"] = 2
    with pytest.raises(InputError, match=r"row 3 has 2 \(1 bad rows\)"):
        analyse(log)


def test_a_source_file_is_named_with_its_one_based_data_row():
    log = _log()
    log["clicked"] = log["clicked"].astype(object)
    log.loc[3, "clicked"] = 7  # the 4th data row
    with pytest.raises(InputError, match=r"^impressions\.csv: log column `clicked`.*data row 4 "):
        check_log(log, source="impressions.csv")
    with pytest.raises(InputError, match=r"^log column `clicked`.*; row 3 "):
        check_log(log)


def test_a_log_holding_its_events_twice_is_warned_about():
    # before: accepted silently; the doubled impressions narrowed the interval
    from ccgraph.exceptions import DataQualityWarning

    log = _log()
    with pytest.warns(
        DataQualityWarning, match=r"^impressions\.csv: every row .* \(16 rows, 8 distinct"
    ):
        check_log(pd.concat([log, log], ignore_index=True), source="impressions.csv")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataQualityWarning)
        check_log(log)  # distinct rows: no warning


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_unit_is_refused_naming_file_and_row(blank):
    # before: '' (or whitespace) was accepted as one more unit, pooling unrelated rows
    log = _log()
    log.loc[3, "unit"] = blank  # the 4th data row
    shown = re.escape(repr(blank))
    pattern = rf"^impressions\.csv: log column `unit` must name .*; data row 4 has {shown} "
    with pytest.raises(InputError, match=pattern):
        check_log(log, source="impressions.csv")
    with pytest.raises(InputError, match=r"`unit`.*; row 3 .*\(1 bad rows\)"):
        check_log(log)
