from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ccgraph.exceptions import InputError, ParameterError
from ccgraph.experiment.assign import arm_weights, assign, bucket


def _recipe(salt: str, unit: str) -> float:
    """The documented recipe, written independently of the module."""
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).hexdigest()
    x = int(digest[:16], 16)
    return (x >> 11) / 2**53


def test_test_vector_from_the_docs():
    # sha256("exp1:user-1") = 11fca5c283dc94a3...; x >> 11 over 2**53
    assert hashlib.sha256(b"exp1:user-1").hexdigest().startswith("11fca5c283dc94a3")
    expected = (0x11FCA5C283DC94A3 >> 11) / 2**53
    assert bucket(["user-1"], salt="exp1")[0] == expected
    units = [f"user-{i}" for i in range(1, 9)]
    arms = assign(units, salt="exp1")
    want = ["control" if _recipe("exp1", u) < 0.5 else "treatment" for u in units]
    assert arms.tolist() == want


def test_deterministic_and_matches_recipe():
    units = [f"s{i}" for i in range(500)]
    a = bucket(units, salt="x")
    assert np.array_equal(a, bucket(units, salt="x"))
    assert np.array_equal(a, [_recipe("x", u) for u in units])
    assert np.array_equal(assign(units, salt="x"), assign(list(reversed(units)), salt="x")[::-1])


def test_balanced_at_large_n():
    units = np.arange(200_000)
    arms = assign(units, salt="balance")
    counts = [int((arms == "control").sum()), int((arms == "treatment").sum())]
    assert stats.chisquare(counts).pvalue > 0.001
    u = bucket(units[:50_000], salt="balance")
    assert stats.kstest(u, "uniform").pvalue > 0.001


@pytest.mark.parametrize("share", [0.1, 0.2, 0.75])
def test_allocation_ratio_respected(share):
    n = 100_000
    arms = assign(np.arange(n), salt=f"alloc{share}", allocation=share)
    t = int((arms == "treatment").sum())
    assert stats.chisquare([n - t, t], [n * (1 - share), n * share]).pvalue > 0.001


def test_multi_arm_mapping():
    n = 60_000
    arms = assign(np.arange(n), salt="multi", allocation={"a": 1, "b": 2, "c": 1})
    counts = [int((arms == k).sum()) for k in "abc"]
    assert stats.chisquare(counts, [n / 4, n / 2, n / 4]).pvalue > 0.001
    # layout order: 'a' takes the lowest buckets
    u = bucket(np.arange(n), salt="multi")
    assert u[arms == "a"].max() < u[arms == "b"].min()


def test_salts_independent():
    units = np.arange(40_000)
    a = assign(units, salt="one") == "treatment"
    b = assign(units, salt="two") == "treatment"
    table = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_aa_mode_same_split_two_names():
    units = [f"u{i}" for i in range(2000)]
    aa = assign(units, salt="s", aa=True, allocation=0.3)
    ab = assign(units, salt="s", allocation=0.3)
    assert set(aa) == {"A1", "A2"}
    assert np.array_equal(aa == "A2", ab == "treatment")


def test_ints_are_formatted_as_strings():
    assert assign([42, 7], salt="s").tolist() == assign(["42", "7"], salt="s").tolist()


def test_bad_inputs():
    with pytest.raises(ParameterError, match="salt"):
        assign(["a"], salt="")
    with pytest.raises(ParameterError, match="allocation"):
        assign(["a"], salt="s", allocation=1.0)
    with pytest.raises(ParameterError, match="allocation"):
        arm_weights({"a": 1})
    with pytest.raises(ParameterError, match="allocation"):
        arm_weights({"a": -1, "b": 2})
    with pytest.raises(InputError, match="row 1"):
        assign(["a", None], salt="s")
    with pytest.raises(ParameterError, match="units"):
        assign("abc", salt="s")


def test_docs_test_vector_table():
    doc = Path(__file__).resolve().parents[2] / "docs" / "experiment.md"
    rows = [ln for ln in doc.read_text().splitlines() if ln.startswith("| `user-")]
    assert len(rows) == 8
    for line in rows:
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        unit, hex8, shifted, u, arm50, arm30 = cells
        digest = hashlib.sha256(f"substitution-v1:{unit}".encode()).hexdigest()
        assert digest[:16] == hex8
        assert int(hex8, 16) >> 11 == int(shifted)
        assert (
            bucket([unit], salt="substitution-v1")[0]
            == float(u)
            == _recipe("substitution-v1", unit)
        )
        assert assign([unit], salt="substitution-v1")[0] == arm50
        assert assign([unit], salt="substitution-v1", allocation=0.3)[0] == arm30
