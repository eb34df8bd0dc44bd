"""Calibrated confidence for inferred tags, fitted on held-out seeds.

Two kinds of item are held out: items whose tags are all hidden (the untagged items' map) and
items that keep some of their tags (the tagged items' map, :attr:`Calibrator.tagged`). The
diagnostics (ECE, reliability table) live in ``_reliability`` and are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ccgraph._random import as_generator
from ccgraph._validation import check_choice, check_int
from ccgraph.containers import TagSet, check_same_ids
from ccgraph.exceptions import InputError
from ccgraph.propagate._holdout import (
    HIDE_FRACTION,
    TAG_FRACTION,
    calibration_holdout,
    holdout_split,
    holdout_tags,
)
from ccgraph.propagate._reliability import (
    expected_calibration_error,
    precision_coverage,
    reliability_table,
)

if TYPE_CHECKING:
    from ccgraph._random import RngLike

__all__ = [
    "Calibrator",
    "expected_calibration_error",
    "fit_calibrator",
    "holdout_predictions",
    "holdout_split",
    "holdout_tags",
    "label_holdout",
    "precision_coverage",
    "reliability_table",
]

logger = logging.getLogger(__name__)

#: Below this many held-out predictions the calibrator is the constant base rate.
MIN_FIT_POINTS = 30


def _features(scores: np.ndarray, ranks: np.ndarray, mass: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    m = np.asarray(mass, dtype=np.float64)
    share = np.clip(np.divide(s, m, out=np.zeros_like(s), where=m > 0), 1e-12, 1.0)
    return np.column_stack(
        [np.log(share), np.log(np.maximum(m, 1e-12)), np.log(np.asarray(ranks, dtype=np.float64))]
    )


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp, fp)``, the points looked up in ascending order (the same values).

    Each value depends on its point alone; visiting sorted points walks ``xp`` (the isotonic
    knots, as many as the fit's distinct predictors) once instead of searching it at random.
    """
    if x.size < 4096:
        return np.interp(x, xp, fp)
    flat = x.ravel()
    order = np.argsort(flat)
    out = np.empty(flat.shape, dtype=np.float64)
    out[order] = np.interp(flat[order], xp, fp)
    return out.reshape(x.shape)


@dataclass(frozen=True, slots=True, eq=False)
class Calibrator:
    """Maps an inferred tag's (score, rank, item mass) to P(the tag is a true tag).

    A logistic model on ``[log share, log relative mass, log rank]`` (share = score / item
    mass; relative mass = item mass / mean item mass of the run) gives a ranking score ``z``;
    ``method="isotonic"`` maps ``z`` through an isotonic (PAV) fit, ``"platt"`` through the
    logistic function. Build it with :func:`fit_calibrator`.

    ``tagged``, when set, is a second map of the same kind for the items that have observed
    tags (fitted on a tag-level holdout); this one then serves the items without any.
    """

    method: str
    coef: np.ndarray
    intercept: float
    iso_x: np.ndarray
    iso_y: np.ndarray
    base_rate: float
    n_fit: int
    params: Mapping[str, Any] = field(default_factory=dict)
    tagged: Calibrator | None = None

    def linear(self, scores: Any, ranks: Any, mass: Any) -> np.ndarray:
        """Return the logistic model's linear predictor ``z``."""
        return _features(scores, ranks, mass) @ self.coef + self.intercept

    def predict(self, scores: Any, ranks: Any, mass: Any, observed: Any = None) -> np.ndarray:
        """Calibrated confidence in [0, 1] per inferred tag.

        Parameters
        ----------
        scores
            Spreading scores ``F_it``.
        ranks
            1-based rank of the tag among the item's inferred tags.
        mass
            The item's propagated mass relative to the run's mean item mass.
        observed
            Number of observed tags of the tag's item (``> 0``: the ``tagged`` map, if any);
            None: every item is taken as untagged.
        """
        s = np.asarray(scores, dtype=np.float64)
        if self.tagged is None or observed is None:
            return self._predict_one(s, ranks, mass)
        has = np.broadcast_to(np.asarray(observed) > 0, s.shape)
        r = np.broadcast_to(np.asarray(ranks), s.shape)
        m = np.broadcast_to(np.asarray(mass, dtype=np.float64), s.shape)
        out = np.empty(s.shape, dtype=np.float64)
        out[~has] = self._predict_one(s[~has], r[~has], m[~has])
        out[has] = self.tagged._predict_one(s[has], r[has], m[has])
        return out

    def _predict_one(self, s: np.ndarray, ranks: Any, mass: Any) -> np.ndarray:
        if self.n_fit < MIN_FIT_POINTS or self.method == "constant":
            return np.full(s.shape, self.base_rate)
        z = self.linear(s, ranks, mass)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-z))
        return _interp(z, self.iso_x, self.iso_y)

    def describe(self) -> dict[str, Any]:
        """Return a JSON-friendly summary for run manifests (``tagged``: the second map's)."""
        out = {
            "method": self.method,
            "coef": [float(c) for c in self.coef],
            "intercept": float(self.intercept),
            "base_rate": float(self.base_rate),
            "n_fit": int(self.n_fit),
            **dict(self.params),
        }
        if self.tagged is not None:
            out["tagged"] = self.tagged.describe()
        return out


def holdout_predictions(
    graph: Any,
    seeds: TagSet,
    *,
    hide_fraction: float = HIDE_FRACTION,
    tag_fraction: float | None = TAG_FRACTION,
    rng: RngLike = None,
    alpha: float = 0.8,
    tol: float = 1e-6,
    max_iter: int = 100,
    tag_block: int | None = None,
    top_k: int = 10,
    dtype: str = "float32",
    reorder: str = "auto",
    prune: int | None = None,
    freeze: int = 8,
) -> pd.DataFrame:
    """Hide the seed tags of some items (all, or part of them), spread, and label the guesses.

    :func:`holdout_split` hides all tags of ``hide_fraction`` of the seeded items; then,
    unless ``tag_fraction`` is None, :func:`holdout_tags` hides about ``tag_fraction`` of the
    tags of ``hide_fraction`` of the remaining items with two or more tags (each keeps one).
    One spreading of what is left (each item's visible tags excluded from its guesses, as
    :func:`~ccgraph.propagate.spread_tags` does) serves both kinds.

    Returns
    -------
    pandas.DataFrame
        One row per inferred tag of a hidden or partly hidden item: ``id, tag, score, rank,
        mass`` (relative to the mean item mass), ``observed`` (the item's visible tags: 0 for
        the hidden items) and ``correct`` (the tag was one of the item's hidden seed tags).
    """
    from ccgraph.propagate._graph import as_adjacency, build_operator, resolve_dtype
    from ccgraph.propagate.spreading import check_spread_args, spread_raw

    alpha, tol, max_iter, top_k, tag_block = check_spread_args(
        alpha=alpha, tol=tol, max_iter=max_iter, top_k=top_k, tag_block=tag_block
    )
    wdtype = resolve_dtype(dtype)
    check_choice("reorder", reorder, ("auto", "rcm", "none"))
    if prune is not None:
        prune = check_int("prune", prune, low=top_k)
    freeze = check_int("freeze", freeze, low=1)
    if not isinstance(seeds, TagSet):
        raise InputError(f"`seeds` must be a TagSet; got {type(seeds).__name__}")
    adj, ids = as_adjacency(graph)
    if ids is not None:
        check_same_ids(ids, seeds.ids, what="holdout_predictions(graph, seeds)")
    if adj.shape[0] != seeds.matrix.shape[0]:
        raise InputError(
            f"the graph has {adj.shape[0]} nodes but `seeds` has {seeds.matrix.shape[0]} rows"
        )
    hidden, y_train = calibration_holdout(
        seeds.matrix, hide_fraction=hide_fraction, tag_fraction=tag_fraction, rng=rng
    )
    op = build_operator(adj, alpha=alpha, dtype=wdtype, reorder=reorder)
    raw = spread_raw(
        op, y_train, exclude=y_train, tol=tol, max_iter=max_iter, tag_block=tag_block,
        top_k=top_k, prune=prune, freeze=freeze,
    )  # fmt: skip
    tv, tt = raw.top_v[hidden], raw.top_t[hidden]
    k = tt.shape[1]
    ok = tt >= 0
    rows = np.broadcast_to(hidden[:, None], tt.shape)[ok]
    ranks = np.broadcast_to(np.arange(1, k + 1), tt.shape)[ok]
    observed = np.diff(y_train.indptr)[rows]
    return label_holdout(
        seeds, rows, tt[ok], tv[ok], ranks, raw.mass[rows] / raw.mass_ref, observed=observed
    )


def label_holdout(
    seeds: TagSet,
    rows: Any,
    tags: Any,
    scores: Any,
    ranks: Any,
    mass: Any,
    *,
    observed: Any = None,
) -> pd.DataFrame:
    """Label inferred tags of hidden items against their seed tags (a holdout table).

    Parameters
    ----------
    seeds
        The full seeds (hidden items' tags included).
    rows, tags
        Row and tag-column index of each inferred (item, tag).
    scores, ranks, mass
        Its spreading score, 1-based rank and the item's mass relative to the mean item mass.
    observed
        The item's visible (not hidden) seed tags per row; None: 0 (all its tags hidden).

    Returns
    -------
    pandas.DataFrame
        ``id, tag, score, rank, mass, observed, correct`` as :func:`holdout_predictions`.
    """
    rows = np.asarray(rows, dtype=np.int64)
    tags = np.asarray(tags, dtype=np.int64)
    sub = sp.csr_matrix(seeds.matrix)[rows, tags]  # sparse (not np.matrix) when empty
    truth = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
    return pd.DataFrame(
        {
            "id": seeds.ids[rows],
            "tag": seeds.tags[tags],
            "score": np.asarray(scores, dtype=np.float64),
            "rank": np.asarray(ranks, dtype=np.int64),
            "mass": np.asarray(mass, dtype=np.float64),
            "observed": (
                np.zeros(len(rows), dtype=np.int64)
                if observed is None
                else np.asarray(observed, dtype=np.int64)
            ),
            "correct": truth.ravel() > 0,
        }
    )


def fit_calibrator(
    graph: Any,
    seeds: TagSet,
    *,
    method: str = "isotonic",
    hide_fraction: float = HIDE_FRACTION,
    tag_fraction: float | None = TAG_FRACTION,
    repeats: int = 1,
    rng: RngLike = None,
    alpha: float = 0.8,
    tol: float = 1e-6,
    max_iter: int = 100,
    tag_block: int | None = None,
    top_k: int = 10,
    dtype: str = "float32",
    reorder: str = "auto",
    prune: int | None = None,
    freeze: int = 8,
) -> Calibrator:
    """Fit a confidence calibrator on held-out seed items.

    Parameters
    ----------
    graph, seeds
        As for :func:`~ccgraph.propagate.spread_tags`.
    method
        ``"isotonic"`` (default) or ``"platt"``; see :class:`Calibrator`.
    hide_fraction
        Share of the seeded items whose tags are hidden in each repeat (and share of the
        items with two or more tags that hide some of them).
    tag_fraction
        Share of a partly hidden item's tags that are hidden: the tagged items' map is fitted
        on those items (see :func:`holdout_predictions`). None: one map, fitted on the
        items whose tags are all hidden.
    repeats
        Independent hidden sets (drawn from ``rng``) pooled into one fit.
    rng
        Seed or Generator for the hidden sets.
    alpha, tol, max_iter, tag_block, top_k, dtype, reorder
        The spreading settings; use those of the run being calibrated.
    prune, freeze
        The pruned solver's settings (``prune=None``: the exact solver).

    Returns
    -------
    Calibrator
        With a ``tagged`` map when the tag-level holdout gave enough predictions.
    """
    check_choice("method", method, ("isotonic", "platt"))
    repeats = check_int("repeats", repeats, low=1)
    gen = as_generator(rng)
    frames = [
        holdout_predictions(
            graph,
            seeds,
            hide_fraction=hide_fraction,
            tag_fraction=tag_fraction,
            rng=gen,
            alpha=alpha,
            tol=tol,
            max_iter=max_iter,
            tag_block=tag_block,
            top_k=top_k,
            dtype=dtype,
            reorder=reorder,
            prune=prune,
            freeze=freeze,
        )
        for _ in range(repeats)
    ]
    df = pd.concat(frames, ignore_index=True)
    params = {"hide_fraction": hide_fraction, "repeats": repeats, "alpha": alpha}
    if tag_fraction is not None:
        params["tag_fraction"] = tag_fraction
    return fit_from_predictions(df, method=method, params=params)


def fit_from_predictions(
    df: pd.DataFrame, *, method: str = "isotonic", params: Mapping[str, Any] | None = None
) -> Calibrator:
    """Fit a :class:`Calibrator` on a table like :func:`holdout_predictions` returns.

    With an ``observed`` column holding at least :data:`MIN_FIT_POINTS` rows of each kind
    (``observed == 0`` and ``> 0``), the rows of items with visible tags get their own map
    (``tagged``); otherwise one map is fitted on all rows.

    Raises
    ------
    InputError
        ``df`` is empty: no hidden item got an inferred tag, so there is no evidence either
        way (a constant 0 would mark every inferred tag as certainly wrong).
    """
    check_choice("method", method, ("isotonic", "platt"))
    if len(df) == 0:
        raise InputError(
            "no hidden seeded item received an inferred tag (e.g. no other seed shares their "
            "graph component), so there is nothing to calibrate against"
        )
    has = (
        df["observed"].to_numpy() > 0 if "observed" in df.columns else np.zeros(len(df), dtype=bool)
    )
    if min(int(has.sum()), int((~has).sum())) < MIN_FIT_POINTS:
        return _fit_one(df, method, dict(params or {}))
    main = _fit_one(df[~has], method, dict(params or {}))
    return replace(main, tagged=_fit_one(df[has], method, {}))


def _fit_one(df: pd.DataFrame, method: str, params: dict[str, Any]) -> Calibrator:
    """One map (logistic ranking score, then isotonic or Platt) on all rows of ``df``."""
    y = df["correct"].to_numpy(dtype=np.float64)
    base = float(y.mean())
    n = len(y)
    empty = np.zeros(0)
    if n < MIN_FIT_POINTS or base in (0.0, 1.0):
        logger.warning("calibration: %d held-out predictions (base rate %.3f); constant", n, base)
        return Calibrator("constant", np.zeros(3), 0.0, empty, empty, base, n, params)
    x = _features(df["score"], df["rank"], df["mass"])
    coef, intercept = _logistic(x, y)
    z = x @ coef + intercept
    iso_x, iso_y = _isotonic(z, y) if method == "isotonic" else (empty, empty)
    return Calibrator(method, coef, intercept, iso_x, iso_y, base, n, params)


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression (L-BFGS) on standardised features."""
    from scipy.optimize import minimize

    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    xs = np.column_stack([(x - mu) / sd, np.ones(len(x))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = xs @ w
        nll = np.sum(np.logaddexp(0.0, z) - y * z) / len(y) + 0.5 * l2 * np.sum(w[:-1] ** 2)
        p = 1.0 / (1.0 + np.exp(-z))
        grad = xs.T @ (p - y) / len(y)
        grad[:-1] += l2 * w[:-1]
        return float(nll), grad

    w = minimize(loss, np.zeros(xs.shape[1]), jac=True, method="L-BFGS-B").x
    coef = w[:-1] / sd
    return coef, float(w[-1] - np.sum(coef * mu))


def _isotonic(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators fit of ``y`` on ``z`` (non-decreasing); block knots for interp."""
    order = np.argsort(z, kind="stable")
    zs, ys = z[order], y[order]
    # merge tied z first (one block per distinct value)
    uniq, start = np.unique(zs, return_index=True)
    sums = np.add.reduceat(ys, start)
    cnts = np.diff(np.append(start, len(zs))).astype(np.float64)
    vals: list[float] = []
    wts: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    for u, s, c in zip(uniq, sums, cnts, strict=True):
        vals.append(s / c)
        wts.append(c)
        lo.append(u)
        hi.append(u)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v, w = vals.pop(), wts.pop()
            h = hi.pop()
            lo.pop()
            vals[-1] = (vals[-1] * wts[-1] + v * w) / (wts[-1] + w)
            wts[-1] += w
            hi[-1] = h
    kx = np.ravel(np.column_stack([lo, hi]))
    ky = np.repeat(vals, 2)
    kx, idx = np.unique(kx, return_index=True)
    return kx, ky[idx]
