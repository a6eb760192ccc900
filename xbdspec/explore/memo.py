"""Memoising pure functions of a state on the part of the state they read.

A guard, an effect or an invariant of the declaration is a pure function of the
state (and of constant bindings).  Its result can only depend on the fields it
reads, so it can be cached on the *projection* of the state onto those fields.
Which fields a function reads is discovered by running it on a
:func:`recording` copy of the state: a subclass of the state's ``namedtuple`` whose
every way of reading a field (attribute, index, iteration, comparison, hash)
writes down the field's position.

Reads may depend on values (a function could read ``s.a`` only when ``s.b`` is
true), so the read set is never guessed once and for all.  A
:class:`ProjectionMemo` keeps a set of fields ``F`` and a cache keyed by the values
of ``F``; every cache miss runs the function under a recorder, and if the run read
a field outside ``F``, ``F`` grows and the cache is emptied.  Every entry in the
cache therefore came from a run that read only fields of ``F``.  A pure function
run on two states that agree on every field it reads reads the same values in the
same order, takes the same branches and returns the same result; so a state that
agrees with a cached key on ``F`` has the cached result.  That is the whole
soundness argument, and it needs no knowledge of the function's code.

A predicate the declaration marks as a *derived field*
(:func:`xbdspec.model.expr.derived`: ``RING_FULL``, whose free-running indices
would make every key new) is read as one value: on a recording copy it is computed on
the plain state, and the memo keys on its value (with the fields read directly) in
place of the fields behind it.  The argument is the same: a run that read the fields
``F`` and the derived values ``D`` takes the same branches on any state that agrees
on both.  :attr:`ProjectionMemo.read_sets` still names every field the result
depends on, the ones behind a derived value included (what
:meth:`FastStepper.violated_invariants_after` needs to know which invariants a step
may affect).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.model.expr import DERIVING_TYPES

_READS = "_xbdspec_reads"
#: what a recording copy keeps of the derived values read: ``{(predicate, constants):
#: None}`` in the order first read, and the fields read behind them
_DERIVED = "_xbdspec_derived"
_THROUGH = "_xbdspec_through"
_PLAIN = "_xbdspec_plain"  # the plain state a recording copy was made of
_recording_classes: dict[type, type] = {}
#: the fields behind each derived value met, ``(predicate, constants) -> positions``: a
#: derived field reads the same fields on every state (:class:`DerivedFieldError`)
_BEHIND: dict[tuple[Callable[..., Any], tuple[Any, ...]], frozenset[int]] = {}


class DerivedFieldError(XbdspecError):
    """A predicate marked as a derived field read different fields on different states.

    A memo keyed on a derived value learns the fields behind it on its misses only, and
    :attr:`ProjectionMemo.read_sets` (which says what invariants a step may affect) is
    exact only if those fields are the same on every state; a predicate whose reads
    depend on values must not be marked."""


def _keyable(constants: tuple[Any, ...]) -> bool:
    """Whether a derived value's constants can be part of a memo's key: hashable, and no
    state among them (a key getter keeps the constants of the first miss, so a state
    passed as a constant would be read stale)."""
    try:
        hash(constants)
    except TypeError:
        return False
    return not any(isinstance(c, tuple) and hasattr(c, "_fields") for c in constants)


def _reader(position: int) -> Callable[[Any], Any]:
    get = tuple.__getitem__

    def read(self: Any) -> Any:
        getattr(self, _READS).add(position)
        return get(self, position)

    return read


def _recording_class(state_type: type) -> type:
    """A subclass of the ``namedtuple`` type ``state_type`` whose every way of
    reading a field records its position (attributes, indexing, iteration,
    comparison and hashing, which read every field)."""
    cls = _recording_classes.get(state_type)
    if cls is not None:
        return cls
    fields: tuple[str, ...] = state_type._fields  # type: ignore[attr-defined]
    every = range(len(fields))
    namespace: dict[str, Any] = {name: property(_reader(i)) for i, name in enumerate(fields)}

    def read_all(self: Any) -> None:
        getattr(self, _READS).update(every)

    def getitem(self: Any, index: Any) -> Any:
        if isinstance(index, int):
            getattr(self, _READS).add(index % len(fields))
        else:
            read_all(self)
        return tuple.__getitem__(self, index)

    def whole(name: str) -> Callable[..., Any]:
        method = getattr(tuple, name)

        def reads_everything(self: Any, *args: Any) -> Any:
            read_all(self)
            return method(self, *args)

        return reads_everything

    def derive(self: Any, predicate: Callable[..., Any], constants: tuple[Any, ...]) -> Any:
        # a derived value: computed on the plain state, read as one value
        if not _keyable(constants):  # (constants that cannot key a memo: fields are read)
            return predicate(self, *constants)
        inner = recording(getattr(self, _PLAIN))
        value = predicate(inner, *constants)
        behind = frozenset(reads_of(inner) | getattr(inner, _THROUGH))
        first = _BEHIND.setdefault((predicate, constants), behind)
        if behind != first:
            raise DerivedFieldError(
                f"derived field {predicate.__qualname__}{constants!r} read the fields at "
                f"{sorted(behind)} on one state and {sorted(first)} on another: a derived "
                "field must read the same fields on every state (memos rely on it to know "
                "which invariants a step may affect)"
            )
        getattr(self, _THROUGH).update(behind)
        getattr(self, _DERIVED)[predicate, constants] = None
        return value

    namespace["__getitem__"] = getitem
    namespace["_xbdspec_derive"] = derive
    for name in (
        "__iter__",
        "__eq__",
        "__ne__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__hash__",
        "__contains__",
        "__reduce__",
    ):
        namespace[name] = whole(name)
    cls = type(f"Recording{state_type.__name__}", (state_type,), namespace)
    _recording_classes[state_type] = cls
    DERIVING_TYPES.add(cls)
    return cls


def recording(state: Any) -> Any:
    """A copy of the ``namedtuple`` ``state`` that records which fields are read
    (their positions, in ``reads_of(copy)``)."""
    copy: Any = tuple.__new__(_recording_class(type(state)), state)
    setattr(copy, _READS, set())
    setattr(copy, _DERIVED, {})
    setattr(copy, _THROUGH, set())
    setattr(copy, _PLAIN, getattr(state, _PLAIN, state))
    return copy


def reads_of(copy: Any) -> set[int]:
    """The positions of the fields read so far from a :func:`recording` copy."""
    reads: set[int] = getattr(copy, _READS)
    return reads


def derived_of(copy: Any) -> dict[tuple[Callable[..., Any], tuple[Any, ...]], None]:
    """The derived values read so far from a :func:`recording` copy (``(predicate,
    constants)`` keys, in the order first read)."""
    found: dict[tuple[Callable[..., Any], tuple[Any, ...]], None] = getattr(copy, _DERIVED)
    return found


def read_behind(copy: Any) -> set[int]:
    """The positions of the fields the derived values read from a :func:`recording`
    copy depend on."""
    through: set[int] = getattr(copy, _THROUGH)
    return through


def _key_getter(
    indices: Sequence[int], derived: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> Callable[[Any], Any]:
    """A memo's key of a state: its fields at ``indices``, and the values of the
    ``derived`` predicates (when there are any)."""
    fields = _getter(indices)
    if not derived:
        return fields
    if len(derived) == 1:
        ((predicate, constants),) = derived
        return lambda state: (fields(state), predicate(state, *constants))
    return lambda state: (fields(state), *[p(state, *c) for p, c in derived])


def _getter(indices: Sequence[int]) -> Callable[[Any], tuple[Any, ...]]:
    """A fast function from a state tuple to the tuple of its fields at ``indices``."""
    if not indices:
        return lambda state: ()
    if len(indices) == 1:
        (only,) = indices
        return lambda state: (state[only],)
    return itemgetter(*indices)


class ProjectionMemo:
    """A cache of ``compute(*states)`` keyed on the fields the computation reads.

    ``compute`` receives one state-like object per argument (recording stand-ins on
    a miss) and must be pure.  Several states can be passed (a step property reads
    ``before`` and ``after``); each has its own read set.

    Attributes:
        field_index: the position of each field in the state tuple.
        read_sets: per argument, the positions of the fields the results read so far
            (directly or behind a derived value).
        key_sets: per argument, the positions of the fields read directly (the key's
            fields).
        derived_sets: per argument, the derived values read (``(predicate, constants)``;
            the key's other part).
        misses: how many calls ran ``compute`` (the rest were answered by the cache).
    """

    def __init__(
        self, compute: Callable[..., Any], field_index: dict[str, int], arity: int = 1
    ) -> None:
        self.compute = compute
        self.field_index = field_index
        self.read_sets: list[tuple[int, ...]] = [() for _ in range(arity)]
        self.key_sets: list[tuple[int, ...]] = [() for _ in range(arity)]
        self.derived_sets: list[tuple[tuple[Callable[..., Any], tuple[Any, ...]], ...]] = [
            () for _ in range(arity)
        ]
        self._getters: list[Callable[[Any], Any]] = [_getter(()) for _ in range(arity)]
        self._cache: dict[Any, Any] = {}
        self.misses = 0

    def __call__(self, *states: Any) -> Any:
        key = self._key(states)
        try:
            return self._cache[key]
        except KeyError:
            return self._miss(states)

    def _miss(self, states: Sequence[Any]) -> Any:
        self.misses += 1
        recorders = [recording(s) for s in states]
        result = self.compute(*recorders)
        grown = False
        for i, recorder in enumerate(recorders):
            read, derived = reads_of(recorder), derived_of(recorder)
            if not read <= set(self.key_sets[i]) or not derived.keys() <= set(self.derived_sets[i]):
                self.key_sets[i] = tuple(sorted(read | set(self.key_sets[i])))
                self.derived_sets[i] = tuple(dict.fromkeys((*self.derived_sets[i], *derived)))
                self._getters[i] = _key_getter(self.key_sets[i], self.derived_sets[i])
                grown = True
            depends = read | read_behind(recorder)
            if not depends <= set(self.read_sets[i]):
                self.read_sets[i] = tuple(sorted(depends | set(self.read_sets[i])))
        if grown:
            self._cache.clear()
        self._cache[self._key(states)] = result
        return result

    def _key(self, states: Sequence[Any]) -> Any:
        return tuple(g(s) for g, s in zip(self._getters, states, strict=True))

    @property
    def size(self) -> int:
        """How many results are cached."""
        return len(self._cache)


class UnaryMemo(ProjectionMemo):
    """A :class:`ProjectionMemo` of a function of one state, with a faster lookup."""

    def __init__(self, compute: Callable[[Any], Any], field_index: dict[str, int]) -> None:
        super().__init__(compute, field_index, arity=1)

    def __call__(self, *states: Any) -> Any:
        try:
            return self._cache[self._getters[0](states[0])]
        except KeyError:
            return self._miss(states)

    def _key(self, states: Sequence[Any]) -> Any:
        return self._getters[0](states[0])
