from __future__ import annotations

import gc

import numpy as np

from ccgraph._array_memo import ArrayMemo


def _frozen(values: list[str]) -> np.ndarray:
    a = np.array(values)
    a.setflags(write=False)
    return a


def test_a_value_lives_as_long_as_its_array() -> None:
    memo: ArrayMemo[int] = ArrayMemo()
    a = _frozen(["a", "b"])
    memo.put(a, 7)
    assert memo.get(a) == 7
    assert memo.get(_frozen(["a", "b"])) is None  # equal contents, another array
    del a
    gc.collect()
    assert memo._values == {}


def test_writable_arrays_and_views_are_never_remembered() -> None:
    memo: ArrayMemo[int] = ArrayMemo()
    writable = np.array(["a", "b"])
    memo.put(writable, 1)
    assert memo.get(writable) is None
    base = np.array(["a", "b", "c"])
    view = base[:2]
    view.setflags(write=False)  # its base can still change
    memo.put(view, 2)
    assert memo.get(view) is None
    a = _frozen(["x"])
    memo.put(a, 3)
    a.setflags(write=True)  # made writable again: its contents may change
    assert memo.get(a) is None
