"""``model.expr.per_state``: a predicate shared by many guards is computed once per
state, and gives what the predicate itself gives."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from xbdspec.model.expr import per_state

Point = namedtuple("Point", "x y")


def test_once_per_state_and_constants() -> None:
    calls: list[tuple[Any, ...]] = []

    @per_state
    def above(s: Any, limit: int) -> bool:
        calls.append((s, limit))
        return bool(s.x > limit)

    state = Point(3, 0)
    assert [above(state, 1), above(state, 1), above(state, 5), above(state, 5)] == [
        True,
        True,
        False,
        False,
    ]
    assert calls == [(state, 1), (state, 5)]
    other = Point(9, 0)  # another state: asked again
    assert above(other, 5) is True
    assert calls[-1] == (other, 5)


def test_sizes_compared_by_identity() -> None:
    calls: list[Any] = []

    @per_state
    def fits(s: Any, k: Any, extra: int) -> bool:
        calls.append(k)
        return bool(s.x + extra <= k["limit"])

    state = Point(2, 0)
    small, large = {"limit": 2}, {"limit": 9}  # unhashable: never hashed
    assert fits(state, small, 0) is True
    assert fits(state, small, 0) is True
    assert fits(state, large, 5) is True
    assert fits(state, small, 5) is False
    assert calls == [small, large, small]


def test_states_that_are_not_tuples_are_not_memoised() -> None:
    class Mutable:
        x = 0

    @per_state
    def positive(s: Any) -> bool:
        return bool(s.x > 0)

    state = Mutable()
    assert positive(state) is False
    state.x = 1  # the same object, changed: a memo keyed by identity would be wrong
    assert positive(state) is True
