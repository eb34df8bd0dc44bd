"""The calibrator's held-out seeds: whole items hidden, and part of the tags of other items."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ccgraph._random import as_generator
from ccgraph._validation import check_float
from ccgraph.exceptions import InputError

if TYPE_CHECKING:
    from ccgraph._random import RngLike

__all__ = ["HIDE_FRACTION", "TAG_FRACTION", "calibration_holdout", "holdout_split", "holdout_tags"]

#: Default share of the seeded items hidden to fit a calibrator.
HIDE_FRACTION = 0.2
#: Default share of a partly hidden item's tags that the tag-level holdout hides (the
#: evaluation's ``tags`` protocol setting on Openverse).
TAG_FRACTION = 0.3


def holdout_split(
    matrix: sp.spmatrix, *, hide_fraction: float = HIDE_FRACTION, rng: RngLike = None
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Draw the seeded items whose tags are hidden, and the seed matrix without them.

    Parameters
    ----------
    matrix
        Seed matrix (items x tags).
    hide_fraction
        Share of the seeded items (rows with a tag) to hide, rounded to the nearest count.
    rng
        Seed or Generator (a Generator is advanced, as :func:`fit_calibrator`'s repeats use).

    Returns
    -------
    hidden, train
        Sorted row indices of the hidden items; ``matrix`` with those rows emptied (CSR).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> hidden, train = holdout_split(sp.eye(10, format="csr"), hide_fraction=0.3, rng=0)
    >>> len(hidden), train.nnz
    (3, 7)
    """
    hide_fraction = check_float(
        "hide_fraction", hide_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    gen = as_generator(rng)
    y = sp.csr_matrix(matrix)
    seeded = np.flatnonzero(np.diff(y.indptr) > 0)
    n_hide = round(hide_fraction * len(seeded))
    if n_hide == 0:
        raise InputError(
            f"`seeds` has {len(seeded)} seeded items: too few to hide {hide_fraction:.0%} of them"
        )
    hidden = np.sort(gen.choice(seeded, size=n_hide, replace=False))
    keep = np.ones(y.shape[0])
    keep[hidden] = 0.0
    y_train = sp.csr_matrix(sp.diags(keep) @ y)
    y_train.eliminate_zeros()
    return hidden, y_train


def holdout_tags(
    matrix: sp.spmatrix,
    *,
    hide_fraction: float = HIDE_FRACTION,
    tag_fraction: float = TAG_FRACTION,
    rng: RngLike = None,
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Tag-level holdout: hide part of the tags of some items, each keeping at least one.

    Parameters
    ----------
    matrix
        Seed matrix (items x tags), e.g. the ``train`` of :func:`holdout_split`.
    hide_fraction
        Share of the items with two or more tags that hide some, rounded to the nearest count.
    tag_fraction
        Expected share of such an item's ``m`` tags hidden: ``floor(tag_fraction * m + u)``
        with ``u ~ U(0, 1)``, clipped to ``[1, m - 1]``.
    rng
        Seed or Generator (advanced).

    Returns
    -------
    partial, train
        Sorted row indices of the items that hide some tags (empty when no item has two
        tags); ``matrix`` without the hidden entries (CSR).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> y = sp.csr_matrix([[1, 1, 1, 1], [1, 0, 0, 0], [0, 1, 1, 0]])
    >>> partial, train = holdout_tags(y, hide_fraction=1.0, tag_fraction=0.5, rng=0)
    >>> partial.tolist(), train.getnnz(axis=1).tolist()
    ([0, 2], [2, 1, 1])
    """
    hide_fraction = check_float(
        "hide_fraction", hide_fraction, low=0.0, high=1.0, low_inclusive=False
    )
    tag_fraction = check_float(
        "tag_fraction", tag_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    gen = as_generator(rng)
    y = sp.csr_matrix(matrix, copy=True)
    y.sort_indices()
    counts = np.diff(y.indptr)
    eligible = np.flatnonzero(counts >= 2)
    n_part = round(hide_fraction * len(eligible))
    if n_part == 0:
        return np.zeros(0, dtype=np.int64), y
    partial = np.sort(gen.choice(eligible, size=n_part, replace=False)).astype(np.int64)
    m = counts[partial]
    n_hide = np.clip(np.floor(tag_fraction * m + gen.random(n_part)), 1, m - 1).astype(np.int64)
    # a random order of each chosen row's entries; its first n_hide entries are hidden
    rows = np.repeat(np.arange(n_part), m)
    order = np.lexsort((gen.random(len(rows)), rows))
    within = np.arange(len(rows)) - np.repeat(np.cumsum(m) - m, m)
    pos = np.empty(len(rows), dtype=np.int64)
    pos[order] = within
    entries = np.repeat(y.indptr[partial], m) + within
    y.data[entries[pos < np.repeat(n_hide, m)]] = 0
    y.eliminate_zeros()
    return partial, y


def calibration_holdout(
    matrix: sp.spmatrix,
    *,
    hide_fraction: float = HIDE_FRACTION,
    tag_fraction: float | None = TAG_FRACTION,
    rng: RngLike = None,
) -> tuple[np.ndarray, sp.csr_matrix]:
    """The calibrator's held-out items and training seeds, as the local and Spark fits draw them.

    :func:`holdout_split` hides all tags of ``hide_fraction`` of the tagged items; then, unless
    ``tag_fraction`` is None, :func:`holdout_tags` hides part of the tags of ``hide_fraction``
    of the others (one generator, in that order, so the same ``rng`` gives the same draw).

    Returns
    -------
    hidden, train
        Sorted rows whose proposals are scored (both kinds); the seeds without the hidden
        entries (CSR).
    """
    gen = as_generator(rng)
    hidden, train = holdout_split(matrix, hide_fraction=hide_fraction, rng=gen)
    if tag_fraction is not None:
        partial, train = holdout_tags(
            train, hide_fraction=hide_fraction, tag_fraction=tag_fraction, rng=gen
        )
        hidden = np.union1d(hidden, partial)
    return hidden, train
