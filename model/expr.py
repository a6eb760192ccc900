"""The operators guards, effects and invariants are written with.

A guard or an effect is an ordinary Python function of a state and a parameter
record.  It is run on two kinds of values: plain Python values (the concrete
interpretation: the ``transitions`` machines, the explorer, the differential tests)
and solver terms (the symbolic interpretation in :mod:`xbdspec.proofs.encoding`).
Python's ``if``, ``and``, ``or`` and ``not`` cannot look inside a solver term, so
declarations use these operators instead; comparison and ``+``/``-`` on plain
integers work on both through operator overloading.

This module never imports a solver.  A symbolic back end registers an
:class:`Algebra` with :func:`register_algebra`; an operator given a value that is
neither a plain value nor a term of a registered algebra fails loudly rather than
quietly computing something else (CrossHair's rule: one boundary between symbolic
and concrete values).

32-bit ring indices (``RING_IDX`` in Xen's ``ring.h``) are plain ``int`` in
``[0, 2**32)`` concretely and 32-bit bit-vectors symbolically; they must only be
combined with :func:`u32_add`, :func:`u32_sub`, :func:`u32_lt` and :func:`u32_le`,
which wrap and compare as unsigned, as ``ring.h`` requires.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from xbdspec.errors import XbdspecError

U32_MASK = 0xFFFF_FFFF

#: A value an operator accepts: a plain ``bool``/``int`` or a registered term.
Value = Any


class SymbolicOperationError(XbdspecError):
    """An operator met a value it cannot interpret (neither plain nor a known term)."""


class Algebra(Protocol):
    """What a symbolic back end provides to the operators of this module."""

    def owns(self, value: object) -> bool:
        """Whether ``value`` is a term of this algebra."""
        ...

    def ite(self, cond: Value, then: Value, other: Value) -> Value: ...
    def all_of(self, items: list[Value]) -> Value: ...
    def any_of(self, items: list[Value]) -> Value: ...
    def negate(self, item: Value) -> Value: ...
    def count_true(self, items: list[Value]) -> Value: ...
    def u32_add(self, a: Value, b: Value) -> Value: ...
    def u32_sub(self, a: Value, b: Value) -> Value: ...
    def u32_lt(self, a: Value, b: Value) -> Value: ...
    def u32_le(self, a: Value, b: Value) -> Value: ...
    def u32_of(self, n: Value) -> Value: ...


_ALGEBRAS: list[Algebra] = []


def register_algebra(algebra: Algebra) -> None:
    """Make the operators accept the terms of ``algebra`` (idempotent per class)."""
    if not any(type(a) is type(algebra) for a in _ALGEBRAS):
        _ALGEBRAS.append(algebra)


def _is_plain(value: object) -> bool:
    return type(value) is bool or isinstance(value, int)


def _algebra(values: Iterable[object], op: str) -> Algebra | None:
    """The algebra owning one of ``values``, or None when all are plain."""
    found: Algebra | None = None
    for value in values:
        if _is_plain(value):
            continue
        for algebra in _ALGEBRAS:
            if algebra.owns(value):
                found = algebra
                break
        else:
            raise SymbolicOperationError(
                f"{op}() was given {value!r} of type {type(value).__name__}, which is neither "
                "a plain bool/int nor a term of a registered symbolic algebra. Guards and "
                "effects may only combine state fields, parameters and constants."
            )
    return found


def ite(cond: Value, then: Value, other: Value) -> Value:
    """``then`` if ``cond`` else ``other`` (C's ``?:``), for plain values and terms."""
    if type(cond) is bool:
        return then if cond else other
    algebra = _algebra((cond, then, other), "ite")
    if algebra is None:
        return then if cond else other
    return algebra.ite(cond, then, other)


def all_of(*items: Value) -> Value:
    """Conjunction.  Plain ``False`` short-cuts; plain ``True`` items are dropped."""
    rest: list[Value] = []
    for item in items:
        if type(item) is bool:
            if not item:
                return False
        else:
            rest.append(item)
    if not rest:
        return True
    algebra = _algebra(rest, "all_of")
    if algebra is None:
        return all(rest)
    return algebra.all_of(rest)


def any_of(*items: Value) -> Value:
    """Disjunction.  Plain ``True`` short-cuts; plain ``False`` items are dropped."""
    rest: list[Value] = []
    for item in items:
        if type(item) is bool:
            if item:
                return True
        else:
            rest.append(item)
    if not rest:
        return False
    algebra = _algebra(rest, "any_of")
    if algebra is None:
        return any(rest)
    return algebra.any_of(rest)


def negate(item: Value) -> Value:
    """Logical not."""
    if type(item) is bool:
        return not item
    algebra = _algebra((item,), "negate")
    if algebra is None:
        return not item
    return algebra.negate(item)


def implies(premise: Value, conclusion: Value) -> Value:
    """``premise`` implies ``conclusion``."""
    return any_of(negate(premise), conclusion)


def count_true(*items: Value) -> Value:
    """How many of ``items`` are true, as an integer."""
    algebra = _algebra(items, "count_true")
    if algebra is None:
        return sum(1 for item in items if item)
    return algebra.count_true(list(items))


def one_of(value: Value, choices: Iterable[Value]) -> Value:
    """``value`` equals one of ``choices`` (a set membership test for enums)."""
    return any_of(*(value == choice for choice in choices))


def u32_add(a: Value, b: Value) -> Value:
    """``a + b`` modulo 2**32 (``RING_IDX`` arithmetic)."""
    algebra = _algebra((a, b), "u32_add")
    if algebra is None:
        return (int(a) + int(b)) & U32_MASK
    return algebra.u32_add(a, b)


def u32_sub(a: Value, b: Value) -> Value:
    """``a - b`` modulo 2**32 (``RING_IDX`` arithmetic)."""
    algebra = _algebra((a, b), "u32_sub")
    if algebra is None:
        return (int(a) - int(b)) & U32_MASK
    return algebra.u32_sub(a, b)


def u32_lt(a: Value, b: Value) -> Value:
    """Unsigned ``a < b`` on 32-bit values."""
    algebra = _algebra((a, b), "u32_lt")
    if algebra is None:
        return (int(a) & U32_MASK) < (int(b) & U32_MASK)
    return algebra.u32_lt(a, b)


def u32_le(a: Value, b: Value) -> Value:
    """Unsigned ``a <= b`` on 32-bit values."""
    algebra = _algebra((a, b), "u32_le")
    if algebra is None:
        return (int(a) & U32_MASK) <= (int(b) & U32_MASK)
    return algebra.u32_le(a, b)


def u32_of(n: Value) -> Value:
    """A small non-negative integer (a count) as a 32-bit value, to compare with indices."""
    algebra = _algebra((n,), "u32_of")
    if algebra is None:
        return int(n) & U32_MASK
    return algebra.u32_of(n)


def updated(items: tuple[Value, ...], index: int, value: Value) -> tuple[Value, ...]:
    """``items`` with element ``index`` replaced (arrays are tuples; indices are plain)."""
    return (*items[:index], value, *items[index + 1 :])


def per_state(predicate: Callable[..., Value]) -> Callable[..., Value]:
    """Evaluate ``predicate(state, *constants)`` once per state and constants.

    The guards of one control value are run one after the other on the same state by
    every concrete interpretation (the explorer's and the differential harness's
    successor functions, the ``transitions`` machines), and a predicate several
    instances share (``may_send_bio``: every ``(bio, cmd, dma)`` of two transitions)
    would be computed again for each.  This keeps the results for the state last asked
    about: a plain state is an immutable ``namedtuple`` (so is the recording copy of
    :mod:`xbdspec.explore.memo`, whose first run records every read), and the state is
    held, so its identity cannot be reused while the results are kept.  A pure
    predicate of an unchanged state gives the same value, which is the whole argument.
    A state that is not a tuple (a solver's state an encoder may build field by field)
    is passed through unmemoised.

    When the predicate's second parameter is ``k`` (the sizes, one object per
    specification) it is compared by identity, not hashed, with the state.
    """
    sized = list(inspect.signature(predicate).parameters)[1:2] == ["k"]
    last: list[Any] = [None, None]
    results: dict[tuple[Any, ...], Value] = {}

    if sized:

        @functools.wraps(predicate)
        def memoised(state: Any, k: Any, *constants: Any) -> Value:
            if not isinstance(state, tuple):
                return predicate(state, k, *constants)
            if state is not last[0] or k is not last[1]:
                last[0], last[1] = state, k
                results.clear()
            found = results.get(constants, _UNSET)
            if found is _UNSET:
                found = results[constants] = predicate(state, k, *constants)
            return found

        return memoised

    @functools.wraps(predicate)
    def memoised_unsized(state: Any, *constants: Any) -> Value:
        if not isinstance(state, tuple):
            return predicate(state, *constants)
        if state is not last[0]:
            last[0] = state
            results.clear()
        found = results.get(constants, _UNSET)
        if found is _UNSET:
            found = results[constants] = predicate(state, *constants)
        return found

    return memoised_unsized


_UNSET = object()


#: the state types that take a :func:`derived` value in hand (the recording copies of
#: :mod:`xbdspec.explore.memo` register here; plain states, a solver's and Promela's
#: do not), through their method ``_xbdspec_derive(predicate, constants)``
DERIVING_TYPES: set[type] = set()


def derived(predicate: Callable[..., Value]) -> Callable[..., Value]:
    """Mark ``predicate(state, *constants)`` as a *derived field*: a value of the state
    that a memo of the concrete interpretation may key on in place of the fields it
    reads.

    The ring's indices are free-running 32-bit counters: nearly every state of a long
    run has indices of its own, and a guard that asks ``RING_FULL`` reads them, so a
    memo keyed on the fields it read would miss each time; keyed on whether the ring
    is full, it hits.  On a plain state (or a solver's, or Promela's) the predicate
    runs as written: the marking changes no interpretation's meaning.  On a state of
    :data:`DERIVING_TYPES` (a recording copy, while a memo finds out what a function
    reads) the call is handed to the state, which computes the value on the plain
    state and notes that the value, not the fields behind it, was read.

    A derived field must read the same fields on every state (given its constants) and
    return a hashable value: the memos learn the fields behind it on their misses, and
    key on the value (:class:`xbdspec.explore.memo.DerivedFieldError` otherwise).
    """

    @functools.wraps(predicate)
    def marked(state: Any, *constants: Any) -> Value:
        if type(state) in DERIVING_TYPES:
            return state._xbdspec_derive(predicate, constants)
        return predicate(state, *constants)

    return marked
