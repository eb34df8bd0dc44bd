"""Values remembered per read-only numpy array, for as long as the array lives."""

from __future__ import annotations

import weakref
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["ArrayMemo"]

V = TypeVar("V")


class ArrayMemo(Generic[V]):
    """A value per read-only array (keyed by identity; dropped when the array is collected).

    Only arrays that are read-only and own their data qualify: their contents cannot change
    behind the memo's back (a view's base could). Results pass the same id arrays on many
    times, so a check or conversion made once is reused.

    Examples
    --------
    >>> memo = ArrayMemo()
    >>> a = np.array(["x", "y"]); a.setflags(write=False)
    >>> memo.put(a, 2); memo.get(a), memo.get(a.copy())
    (2, None)
    """

    def __init__(self) -> None:
        self._values: dict[int, tuple[weakref.ref[np.ndarray], V]] = {}

    @staticmethod
    def qualifies(arr: Any) -> bool:
        """Whether ``arr`` is a read-only numpy array owning its data."""
        return isinstance(arr, np.ndarray) and not arr.flags.writeable and arr.base is None

    def get(self, arr: Any) -> V | None:
        """The value put for ``arr`` (the same object, still read-only), else None."""
        if not self.qualifies(arr):
            return None
        hit = self._values.get(id(arr))
        return hit[1] if hit is not None and hit[0]() is arr else None

    def put(self, arr: np.ndarray, value: V) -> None:
        """Remember ``value`` for ``arr`` (ignored unless :meth:`qualifies`)."""
        if not self.qualifies(arr):
            return
        key = id(arr)
        ref = weakref.ref(arr, lambda _ref: self._values.pop(key, None))
        self._values[key] = (ref, value)


#: Arrow ``string`` copies of read-only numpy string arrays (ids): an update looks the same
#: 100k ids up several times and stores them as a table column once.
_ARROW_STRINGS: ArrayMemo[Any] = ArrayMemo()


def arrow_strings(values: np.ndarray) -> Any:
    """``values`` (a numpy array) as an Arrow ``string`` array of ``values.astype(str)``.

    The conversion of a read-only array that owns its data (e.g. a result's ids) is made once
    and kept while the array lives.

    Examples
    --------
    >>> a = np.array(["x", "y"]); a.setflags(write=False)
    >>> arrow_strings(a).to_pylist(), arrow_strings(a) is arrow_strings(a)
    (['x', 'y'], True)
    """
    import pyarrow as pa

    arr = _ARROW_STRINGS.get(values)
    if arr is None:
        arr = pa.array(values.astype(str) if values.size else np.zeros(0, str), type=pa.string())
        _ARROW_STRINGS.put(values, arr)
    return arr
