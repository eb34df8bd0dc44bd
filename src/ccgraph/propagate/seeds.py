"""Seed matrix for tag spreading from a catalog's long tags table, weighted by tag source."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ccgraph._validation import check_float, check_int
from ccgraph.containers import TagSet
from ccgraph.exceptions import InputError, ParameterError

__all__ = ["build_seeds"]


def build_seeds(
    tags: pd.DataFrame,
    ids: Sequence[str] | np.ndarray,
    *,
    user_weight: float = 1.0,
    machine_weight: str | float = "accuracy",
    sources: Sequence[str] = ("user", "machine"),
    min_count: int = 1,
) -> TagSet:
    """Build the spreading seeds from a long tags table, weighting each tag by its source.

    Parameters
    ----------
    tags
        Long table with ``id``, ``tag``, ``source`` (``user`` / ``machine``) and, for
        ``machine_weight="accuracy"``, ``weight`` (the machine tag's accuracy in (0, 1]) —
        the layout of :attr:`ccgraph.Catalog.tags`.
    ids
        Item ids in the graph's row order; tags of other ids are ignored (with a
        :class:`~ccgraph.exceptions.DataQualityWarning`).
    user_weight
        Seed weight of a user tag, in (0, 1].
    machine_weight
        ``"accuracy"`` (the row's ``weight``) or a constant in (0, 1].
    sources
        Which sources seed the spreading.
    min_count
        Tags seeded on fewer items are left out of the vocabulary.

    Returns
    -------
    TagSet
        A repeated (id, tag) keeps its largest weight.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"id": ["a", "a", "b"], "tag": ["cat", "pet", "cat"],
    ...                   "source": ["user", "machine", "machine"], "weight": [1.0, 0.9, 0.7]})
    >>> build_seeds(t, ["a", "b"], machine_weight="accuracy").matrix.toarray().tolist()
    [[1.0, 0.8999999761581421], [0.699999988079071, 0.0]]
    """
    user_weight = check_float("user_weight", user_weight, low=0.0, high=1.0, low_inclusive=False)
    min_count = check_int("min_count", min_count, low=1)
    if not isinstance(machine_weight, str):
        machine_weight = check_float(
            "machine_weight", machine_weight, low=0.0, high=1.0, low_inclusive=False
        )
    elif machine_weight != "accuracy":
        raise ParameterError(
            f"`machine_weight` must be 'accuracy' or a float in (0, 1]; got {machine_weight!r}"
        )
    bad = set(sources) - {"user", "machine"}
    if bad:
        raise ParameterError(f"`sources` must be among 'user', 'machine'; got {sorted(bad)}")
    for col in ("id", "tag"):
        if col not in tags.columns:
            raise InputError(f"the tags table needs a {col!r} column; got {list(tags.columns)}")
    src = (
        tags["source"].astype(str).str.lower()
        if "source" in tags.columns
        else pd.Series("user", index=tags.index)
    )
    keep = src.isin(list(sources)).to_numpy()
    t = tags.loc[keep, ["id", "tag"]].copy()
    src = src[keep]
    w = np.full(len(t), user_weight, dtype=np.float64)
    machine = (src == "machine").to_numpy()
    if machine_weight == "accuracy":
        acc = pd.to_numeric(tags.loc[keep, "weight"], errors="coerce") if "weight" in tags else None
        vals = np.ones(len(t)) if acc is None else acc.fillna(1.0).to_numpy(np.float64)
        w[machine] = np.clip(vals[machine], 0.0, 1.0)
    else:
        w[machine] = float(machine_weight)
    t["weight"] = w
    t = t[t["weight"] > 0]
    out = TagSet.from_frame(t, ids, weight_column="weight", min_count=min_count)
    params = {
        **dict(out.params),
        "user_weight": user_weight,
        "machine_weight": machine_weight,
        "sources": list(sources),
    }
    return TagSet(out.matrix, out.ids, out.tags, params)
