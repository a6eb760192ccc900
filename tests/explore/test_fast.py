"""The memoised successor function equals the declaration's plain interpretation."""

from __future__ import annotations

import itertools
from collections import deque, namedtuple
from typing import Any

from explore_helpers import SMALL, TINY
from hypothesis import given
from hypothesis import strategies as st
from xbdspec.model.concrete import Stepper
from xbdspec.model.spec import build_spec

from xbdspec.explore.fast import FastStepper
from xbdspec.explore.memo import ProjectionMemo, UnaryMemo


def _reachable(stepper: Stepper, limit: int) -> list[Any]:
    first = stepper.initial()
    seen, queue, order = {first}, deque([first]), [first]
    while queue and len(order) < limit:
        state = queue.popleft()
        for _, after in stepper.successors(state):
            if after not in seen:
                seen.add(after)
                order.append(after)
                queue.append(after)
    return order


def _assert_same(spec: Any, fast: Any, plain: Any, state: Any) -> None:
    index = {id(i): n for n, i in enumerate(spec.instances)}
    expected = [(index[id(i)], after) for i, after in plain.successors(state)]
    assert fast.successors(state) == expected
    assert fast.violated_invariants(state) == plain.violated_invariants(state)
    for _, after in expected:
        assert fast.violated_step_properties(state, after) == plain.violated_step_properties(
            state, after
        )


def test_fast_successors_equal_the_declaration_on_every_reachable_state() -> None:
    spec = build_spec(TINY)
    fast, plain = FastStepper(spec), Stepper(spec)
    states = _reachable(plain, 100_000)
    assert len(states) > 1000
    for state in states:
        _assert_same(spec, fast, plain, state)


def test_fast_successors_equal_the_declaration_with_suspend_and_unplug() -> None:
    spec = build_spec(SMALL)
    fast, plain = FastStepper(spec), Stepper(spec)
    for state in _reachable(plain, 2000):
        _assert_same(spec, fast, plain, state)


def test_next_states_equal_the_declaration() -> None:
    """The differential harness's interpretation (no step properties): the same steps
    in the same order as the declaration gives."""
    spec = build_spec(SMALL)
    fast, plain = FastStepper(spec), Stepper(spec)
    index = {id(i): n for n, i in enumerate(spec.instances)}
    states = _reachable(plain, 3000)
    for state in states + states:  # the second pass is answered from the memo tables
        expected = [(index[id(i)], after) for i, after in plain.successors(state)]
        assert fast.next_states(state) == expected


def test_incremental_invariant_check_agrees_with_the_full_check() -> None:
    spec = build_spec(SMALL)
    fast, plain = FastStepper(spec), Stepper(spec)
    for state in _reachable(plain, 800):
        if fast.violated_invariants(state):
            continue
        for _, after, written in fast.expand(state):
            assert fast.violated_invariants_after(after, written) == plain.violated_invariants(
                after
            )


_SMALL_SPEC = build_spec(SMALL)
_STATES = _reachable(Stepper(_SMALL_SPEC), 1500)


@given(st.sampled_from(_STATES), st.data())
def test_fast_successors_on_mutated_states(state: Any, data: st.DataObject) -> None:
    """Also off the reachable set: random field values (the guards must still agree)."""
    spec = _SMALL_SPEC
    values = list(state)
    for f in data.draw(st.lists(st.sampled_from(spec.fields), max_size=4)):
        if f.domain.kind == "u32":
            continue
        i = spec.State._fields.index(f.name)
        choice = st.sampled_from(f.domain.values())
        values[i] = (
            tuple(data.draw(choice) for _ in range(f.length)) if f.length else data.draw(choice)
        )
    mutated = spec.State(*values)
    _assert_same(spec, FastStepper(spec), Stepper(spec), mutated)


_S = namedtuple("_S", "a b c")


def test_memo_handles_reads_that_depend_on_values() -> None:
    """``c`` is read only when ``b`` holds: the read set grows on the first such state
    and the cache never answers from a key that misses ``c``."""
    calls: list[int] = []

    def f(s: Any) -> Any:
        calls.append(1)
        return s.a + (s.c if s.b else 0)

    memo = UnaryMemo(f, {"a": 0, "b": 1, "c": 2})
    for a, b, c in itertools.product(range(3), (False, True), range(3)):
        assert memo(_S(a, b, c)) == a + (c if b else 0)
    assert set(memo.read_sets[0]) == {0, 1, 2}
    binary = ProjectionMemo(lambda s, t: s.a == t.a, {"a": 0, "b": 1, "c": 2}, arity=2)
    assert binary(_S(1, False, 0), _S(1, True, 2)) is True
    assert binary(_S(1, False, 0), _S(2, True, 2)) is False


def test_every_way_of_reading_a_state_is_recorded() -> None:
    from xbdspec.explore.memo import reads_of, recording

    state = _S(1, True, 3)
    for read, expected in [
        (lambda s: s.b, {1}),
        (lambda s: s[2], {2}),
        (lambda s: s[-1], {2}),
        (lambda s: tuple(s), {0, 1, 2}),
        (lambda s: s == state, {0, 1, 2}),
        (lambda s: hash(s), {0, 1, 2}),
        (lambda s: s[0:1], {0, 1, 2}),
    ]:
        copy = recording(state)
        read(copy)  # type: ignore[no-untyped-call]
        assert reads_of(copy) == expected


def test_a_derived_value_keys_the_memo_in_place_of_its_fields() -> None:
    """A function that reads a derived field (``model.expr.derived``) is memoised on
    the derived value: states that differ only in the fields behind it share an entry
    while the value is the same; ``read_sets`` still names those fields (what the
    invariant check after a step needs), and a value read only on some states grows
    the key as a field read would."""
    from xbdspec.model.expr import derived

    @derived
    def close(s: Any) -> bool:
        return bool(abs(s.a - s.c) <= 1)

    calls: list[_S] = []

    def f(s: Any) -> Any:
        calls.append(s)
        return "near" if close(s) else ("far-b" if s.b else "far")

    memo = UnaryMemo(f, {"a": 0, "b": 1, "c": 2})
    assert memo(_S(10, False, 11)) == "near"
    assert memo(_S(500, True, 500)) == "near"  # other a, b, c; the same derived value
    assert len(calls) == 1 and not memo.key_sets[0]
    assert set(memo.read_sets[0]) == {0, 2}
    for a, b, c in itertools.product(range(4), (False, True), range(4)):
        expected = "near" if abs(a - c) <= 1 else ("far-b" if b else "far")
        assert memo(_S(a, b, c)) == expected
    assert list(memo.key_sets[0]) == [1] and set(memo.read_sets[0]) == {0, 1, 2}
    assert close(_S(1, False, 5)) is False  # on a plain state: the predicate as written


def test_a_derived_field_whose_reads_depend_on_values_is_refused() -> None:
    """A derived predicate that reads ``c`` only when ``b`` holds would leave ``c`` out of
    what the memo knows it depends on (learnt on misses only): refused by name."""
    import pytest
    from xbdspec.model.expr import derived

    from xbdspec.explore.memo import DerivedFieldError

    @derived
    def shifty(s: Any) -> bool:
        return bool(s.c) if s.b else False

    memo = UnaryMemo(lambda s: shifty(s), {"a": 0, "b": 1, "c": 2})
    assert memo(_S(0, False, 0)) is False
    with pytest.raises(DerivedFieldError, match="shifty"):
        memo(_S(0, True, 1))
