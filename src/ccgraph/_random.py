"""Random state handling: every API takes ``rng`` (None, an int seed or a numpy Generator)."""

from __future__ import annotations

import numpy as np

from ccgraph.exceptions import ParameterError

RngLike = None | int | np.integer | np.random.Generator

__all__ = ["RngLike", "as_generator", "derive_seed"]


def as_generator(rng: RngLike) -> np.random.Generator:
    """Return a numpy Generator for ``rng`` without touching global random state."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or int(rng) < 0:
        raise ParameterError(
            f"`rng` must be None, a non-negative int or a numpy Generator; got {rng!r}"
        )
    return np.random.default_rng(int(rng))


def derive_seed(rng: RngLike) -> int:
    """Return a deterministic 31-bit int seed for libraries that take ints (igraph, pynndescent).

    An int ``rng`` is used as is (so ``seed: 7`` in a config is seed 7 everywhere); a Generator
    draws one, advancing its state; None means 0, so runs are reproducible by default.
    """
    if rng is None:
        return 0
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**31 - 1))
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or int(rng) < 0:
        raise ParameterError(
            f"`rng` must be None, a non-negative int or a numpy Generator; got {rng!r}"
        )
    return int(rng) % (2**31 - 1)
