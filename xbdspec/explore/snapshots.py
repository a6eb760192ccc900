"""Snapshots of a graph of plain Python objects by their states, not by copies.

The reference explorer (:mod:`xbdspec.explore.reference`) returns the reference driver to
a stored state before every step it tries, some six times per state.  A deep copy of the
simulated machine costs milliseconds, and even a pickle rebuilds every object of the
graph on each restore (and leaves the old graph to the cyclic garbage collector).  Here a
restore rebuilds nothing: it writes each object's own state back into the *same* object.

A snapshot (:func:`take`) walks the graph from a root and keeps, for every mutable
object it meets, the object itself and a shallow copy of its state:

========================  ==========================  =================================
object                    state kept                  restored by
========================  ==========================  =================================
``list``, ``bytearray``   a tuple / ``bytes``          ``obj[:] = state``
``deque``, ``set``        a tuple                      ``clear`` and ``extend``/``update``
``dict``                  a copy                       ``clear`` and ``update``
a class's instance        its slots' values (a tuple)  the slots' descriptors
                          and a copy of ``__dict__``   ``clear`` and ``update``
a :class:`PageTrackedBuffer`  the pages written        :meth:`PageTrackedBuffer.load`
========================  ==========================  =================================

Immutable values (numbers, strings, ``bytes``, ``None``, classes, enum members,
functions without a closure, builtin functions) are kept by reference; tuples,
frozensets, bound methods and frozen dataclasses are not restored themselves, but the
objects they hold are walked.  Anything else (a closure, a generator, an object of a C
type this module does not know or of a class keeping state in C, such as a lock) makes
:func:`take` raise :class:`Unsupported`, and the caller falls back to a deep copy.

A restore writes back only the objects whose attributes are not the very objects they
held (compared by identity: an attribute rebound to an equal list is a change, so the
sharing of the snapshot comes back); a snapshot taken on top of the one last restored
(:func:`take`'s ``base``) walks only from the objects whose state changed.

Why this is exact: after :meth:`Snapshot.restore`, the root has the state it had when
the snapshot was taken, so it refers to the same objects as then; each of those has its
state of then, so it refers to the same objects as then; and so on through the whole
graph the snapshot walked.  Objects made since are simply no longer referred to.  Every
object the walk met is kept alive by the snapshot, so no identity is ever reused.
What the walk cannot see (module globals, class attributes, state behind a C type) is
not restored; ``tests/explore/test_reference_target.py`` compares restores with deep
copies along a run that goes back to earlier snapshots, ``tests/explore/test_snapshots.py``
checks values and sharing on a graph of every kind of object.
"""

from __future__ import annotations

import enum
import keyword
import struct
import types
from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat
from operator import attrgetter, is_, setitem
from typing import Any

#: the pages :class:`PageTrackedBuffer` tracks
PAGE_SHIFT = 12


class PageTrackedBuffer(bytearray):
    """A ``bytearray`` that remembers which pages were ever written through item or
    slice assignment (``buf[a:b] = data``, how the back end writes its RAM disk).

    The buffer starts zeroed (as the back end's RAM disk does), so its content is
    the pages in :attr:`written` alone: a snapshot keeps those, a restore writes
    them back and zeroes the pages written since.  Writes that bypass ``__setitem__``
    (a ``memoryview`` of the buffer, ``+=``, ``struct.pack_into``) would not be tracked,
    nor would they make :meth:`pages` and :meth:`load` do their work again (they trust
    the dict they last gave or loaded until the next item assignment): the back end
    makes none, and a test compares restored buffers with deep copies along an
    exploration.
    """

    __slots__ = ("_matches", "written")

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.written: set[int] = set()
        # the pages dict (of :meth:`pages` or :meth:`load`) the content is known to be,
        # until the next write: a load of the same dict then writes nothing
        self._matches: dict[int, bytes] | None = None

    def __setitem__(self, index: Any, value: Any) -> None:
        size = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(size)
            if step != 1 or (not isinstance(value, int) and len(value) != stop - start):
                # a resize or an extended slice: everything from start may move
                stop = max(stop, size)
            if stop > start:
                self.written.update(range(start >> PAGE_SHIFT, ((stop - 1) >> PAGE_SHIFT) + 1))
        else:
            self.written.add((index % size) >> PAGE_SHIFT)
        self._matches = None
        super().__setitem__(index, value)

    def pages(self) -> dict[int, bytes]:
        """The content of every page ever written (the others are zero; the dict the
        content is known to be, when there was no write since it was given or loaded:
        it is not to be changed)."""
        if self._matches is not None:
            return self._matches
        view = memoryview(self)
        pages = {
            page: bytes(view[page << PAGE_SHIFT : (page + 1) << PAGE_SHIFT])
            for page in self.written
        }
        self._matches = pages
        return pages

    def load(self, pages: dict[int, bytes]) -> None:
        """Make the content what :meth:`pages` gave (nothing to do when it is that
        already: no write since that dict was given or loaded)."""
        if pages is self._matches:
            return
        view = memoryview(self)
        size = len(self)
        for page in self.written - pages.keys():
            start = page << PAGE_SHIFT
            view[start : min(size, start + (1 << PAGE_SHIFT))] = bytes(
                min(size, start + (1 << PAGE_SHIFT)) - start
            )
        for page, data in pages.items():
            start = page << PAGE_SHIFT
            view[start : start + len(data)] = data
        self.written = set(pages)
        self._matches = pages


class Unsupported(TypeError):
    """An object :func:`take` cannot restore by its state (the message names its type)."""


# how an object's type is handled
_ATOM, _LIST, _DEQUE, _SET, _DICT, _HOLDER, _INSTANCE, _PAGES, _FUNCTION, _METHOD = range(10)
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python
_KINDS: dict[type, int] = {
    int: _ATOM,
    float: _ATOM,
    complex: _ATOM,
    bool: _ATOM,
    str: _ATOM,
    bytes: _ATOM,
    type(None): _ATOM,
    type: _ATOM,
    enum.EnumType: _ATOM,
    range: _ATOM,
    types.BuiltinFunctionType: _ATOM,
    list: _LIST,
    bytearray: _LIST,  # obj[:] = bytes restores it as it does a list
    deque: _DEQUE,
    set: _SET,
    dict: _DICT,
    tuple: _HOLDER,
    frozenset: _HOLDER,
    PageTrackedBuffer: _PAGES,
    types.FunctionType: _FUNCTION,
    types.MethodType: _METHOD,
}


#: the types :func:`take` keeps by reference without looking at them (the common ones;
#: enum members and the other immutable values go through :class:`_Plan`)
_ATOMS = frozenset(t for t, kind in _KINDS.items() if kind == _ATOM)

_object_setattr = object.__setattr__
_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend
#: ``obj[_WHOLE] = state`` is ``obj[:] = state``
_WHOLE = slice(None)


def _never_differs(obj: Any, values: tuple[Any, ...]) -> bool:
    """:attr:`_Plan.differs` of a class without slots."""
    return False


def _differs_of(
    names: tuple[str, ...], get: Callable[[Any], tuple[Any, ...]]
) -> Callable[[Any, tuple[Any, ...]], bool]:
    """``differs(obj, values)``: whether the slots ``names`` of ``obj`` do not hold, by
    identity, the objects ``values`` (as ``not all(map(is_, get(obj), values))``).

    It is compiled from the slots' names (``obj.a is not v0 or obj.b is not v1 ...``):
    the attribute reads are specialised by the interpreter and the comparison stops at
    the first change, some four times faster than building the tuple of values (a
    restore compares some sixty objects with slots, each step the explorer tries).  A
    name that cannot be written as an attribute (a keyword, a name the class mangles)
    keeps the generic comparison."""
    if not all(
        n.isidentifier() and not keyword.iskeyword(n) and not n.startswith("__") for n in names
    ):
        return lambda obj, values: not all(map(is_, get(obj), values))
    unpack = ", ".join(f"v{i}" for i in range(len(names))) + ("," if len(names) == 1 else "")
    changed = " or ".join(f"obj.{name} is not v{i}" for i, name in enumerate(names))
    source = f"def differs(obj, values):\n    {unpack} = values\n    return {changed}\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<slots of {names}>", "exec"), namespace)
    differs: Callable[[Any, tuple[Any, ...]], bool] = namespace["differs"]
    return differs


class _Plan:
    """How :func:`take` handles the instances of one class (worked out once a class).

    Attributes:
        kind: one of the ``_ATOM`` ... ``_METHOD`` kinds.
        get: for a class with slots, a function from an instance to their values.
        differs: for a class with slots, ``differs(obj, values)``: whether some slot
            of ``obj`` no longer holds the very object at its place in ``values``
            (``get``'s values then; :func:`_differs_of`).
        names: the slots' names, in the order of ``get``'s values.
        mutable_slots: whether the slots are restored (a frozen dataclass's are not:
            they never change; only the objects they hold are walked).
        has_dict: whether instances have a ``__dict__``.
    """

    __slots__ = ("differs", "get", "has_dict", "kind", "mutable_slots", "names")

    def __init__(self, cls: type) -> None:
        self.get: Callable[[Any], tuple[Any, ...]] | None = None
        self.differs: Callable[[Any, tuple[Any, ...]], bool] = _never_differs
        self.names: tuple[str, ...] = ()
        self.mutable_slots = False
        self.has_dict = False
        kind = _KINDS.get(cls)
        if kind is None and issubclass(cls, enum.Enum):
            kind = _ATOM  # members are kept by reference (as pickle and deepcopy keep them)
        if kind is None:
            kind = self._instance(cls)
        self.kind = kind

    def _instance(self, cls: type) -> int:
        if not cls.__flags__ & _HEAPTYPE:
            raise Unsupported(f"{cls.__module__}.{cls.__qualname__} (a C type)")
        builtin = [b for b in cls.__mro__[1:] if b is not object and not b.__flags__ & _HEAPTYPE]
        if builtin == [tuple] and not cls.__dictoffset__:  # a named tuple
            return _HOLDER
        if builtin:
            raise Unsupported(
                f"{cls.__module__}.{cls.__qualname__} (a subclass of {builtin[0].__name__})"
            )
        names: list[str] = []
        for base in cls.__mro__:
            slots = base.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name not in ("__dict__", "__weakref__"):
                    names.append(name)
        pointer = struct.calcsize("P")
        accounted = (
            object.__basicsize__
            + pointer * len(names)
            + (pointer if cls.__dictoffset__ > 0 else 0)
            + (pointer if cls.__weakrefoffset__ > 0 else 0)
        )
        if cls.__basicsize__ != accounted:  # state kept in C (a lock, say)
            raise Unsupported(f"{cls.__module__}.{cls.__qualname__} (keeps state in C)")
        if names:
            getter = attrgetter(*names)
            self.get = getter if len(names) > 1 else lambda obj: (getter(obj),)
            self.names = tuple(names)
            self.differs = _differs_of(self.names, self.get)
            params = getattr(cls, "__dataclass_params__", None)
            self.mutable_slots = not (params is not None and params.frozen)
        self.has_dict = bool(cls.__dictoffset__)
        return _INSTANCE


_PLANS: dict[type, _Plan] = {}


class Snapshot:
    """The states of every mutable object reachable from a root, and the objects.

    Each kind of object is kept in two parallel lists (the objects, their states), so
    that a restore is one tight loop a kind and a snapshot holds few objects of its
    own for the garbage collector to visit.

    Attributes:
        generation: how many snapshots it was taken on top of (:func:`take`'s
            ``base``), since the last one that walked the whole graph.
    """

    __slots__ = (
        "_deque_states",
        "_deques",
        "_dict_states",
        "_dicts",
        "_instance_states",
        "_instances",
        "_list_states",
        "_lists",
        "_page_states",
        "_pages",
        "_set_states",
        "_sets",
        "_slotted",
        "_slotted_plans",
        "_slotted_states",
        "generation",
    )

    def __init__(self, generation: int = 0) -> None:
        self.generation = generation
        self._lists: list[Any] = []  # lists and bytearrays
        self._list_states: list[Any] = []  # list copies and bytes
        self._deques: list[deque[Any]] = []
        self._deque_states: list[deque[Any]] = []
        self._sets: list[set[Any]] = []
        self._set_states: list[frozenset[Any]] = []
        self._dicts: list[dict[Any, Any]] = []
        self._dict_states: list[dict[Any, Any]] = []
        self._instances: list[Any] = []  # objects with a __dict__
        self._instance_states: list[dict[str, Any]] = []
        self._slotted: list[Any] = []  # objects with slots
        self._slotted_plans: list[_Plan] = []
        self._slotted_states: list[tuple[Any, ...]] = []
        self._pages: list[PageTrackedBuffer] = []
        self._page_states: list[dict[int, bytes]] = []

    @property
    def objects(self) -> int:
        """How many objects a restore writes back (an object with both slots and a
        ``__dict__`` counts twice)."""
        return (
            len(self._lists)
            + len(self._deques)
            + len(self._sets)
            + len(self._dicts)
            + len(self._instances)
            + len(self._slotted)
            + len(self._pages)
        )

    def restore(self) -> None:
        """Write every object's state back (the snapshot stays usable).

        An object with slots or a ``__dict__`` is written only if what it holds is
        not the very objects it held (:func:`_same`; a step changes few of them);
        the containers are written whole (as fast as comparing them), each kind in one
        loop that runs in C (``map`` consumed by a zero-length deque: a restore writes
        some hundred containers)."""
        _consume(map(setitem, self._lists, repeat(_WHOLE), self._list_states))
        _consume(map(deque.clear, self._deques))
        _consume(map(deque.extend, self._deques, self._deque_states))
        _consume(map(set.clear, self._sets))
        _consume(map(set.update, self._sets, self._set_states))
        _consume(map(dict.clear, self._dicts))
        _consume(map(dict.update, self._dicts, self._dict_states))
        for obj, copy in zip(self._instances, self._instance_states, strict=True):
            attributes = obj.__dict__
            if not _same_dict(attributes, copy):
                attributes.clear()
                attributes.update(copy)
        for obj, plan, values in zip(
            self._slotted, self._slotted_plans, self._slotted_states, strict=True
        ):
            # (the same class: as many values now as then, so _same without len)
            if plan.differs(obj, values):
                _consume(map(_object_setattr, repeat(obj), plan.names, values))
        for buffer, pages in zip(self._pages, self._page_states, strict=True):
            buffer.load(pages)

    def _known(self) -> set[int]:
        """The identities of the objects it holds."""
        known: set[int] = set()
        for group in (
            self._lists,
            self._deques,
            self._sets,
            self._dicts,
            self._instances,
            self._slotted,
            self._pages,
        ):
            known.update(map(id, group))
        return known


def _same(now: Any, then: Any) -> bool:
    """Whether two sequences hold the very same objects, in order.  Identity, not
    equality: an object replaced by an equal one is a change (the new one must be
    walked and restored), and comparing identities is what C does fastest."""
    return len(now) == len(then) and all(map(is_, now, then))


def _same_dict(now: dict[Any, Any], then: dict[Any, Any]) -> bool:
    """:func:`_same` for two dicts: the same keys, in order, with the same values."""
    return _same(now, then) and all(map(is_, now.values(), then.values()))


#: :func:`take` walks the whole graph again after this many snapshots taken on top of
#: one another (what a walk of changes only keeps of the objects no longer reachable)
REWALK_AFTER = 4


def take(root: object, base: Snapshot | None = None) -> Snapshot:
    """A :class:`Snapshot` of everything reachable from ``root``.

    With ``base``, a snapshot of the same graph taken earlier (the state the graph was
    restored to before it last changed), only what changed is walked: every object of
    ``base`` is kept with its state now (``base``'s own state object when it is equal,
    so unchanged states are shared), and the walk starts from the objects whose state
    changed, past the objects ``base`` knows.  Whatever is reachable now is either in
    ``base`` or reachable from an object whose state changed (or was made since), so
    it is all found.  Objects of ``base`` no longer reachable are kept too (restoring
    them changes nothing that is reachable); every ``REWALK_AFTER`` generations the
    whole graph is walked afresh, which drops them.

    Raises :class:`Unsupported` for an object that cannot be restored by its state."""
    if base is None or base.generation >= REWALK_AFTER:
        snapshot = Snapshot()
        _walk(snapshot, [root], set())
        return snapshot
    snapshot = Snapshot(base.generation + 1)
    atoms = _ATOMS
    changed: list[Any] = []  # what the objects whose state changed hold now
    lists, list_states = snapshot._lists, snapshot._list_states
    for obj, state in zip(base._lists, base._list_states, strict=True):
        lists.append(obj)
        if type(obj) is not list:  # a bytearray: bytes compare by value
            list_states.append(state if obj == state else bytes(obj))
        elif _same(obj, state):
            list_states.append(state)
        else:
            list_states.append(obj[:])
            changed += obj
    for obj, items in zip(base._deques, base._deque_states, strict=True):
        snapshot._deques.append(obj)
        if _same(obj, items):
            snapshot._deque_states.append(items)
        else:
            snapshot._deque_states.append(deque(obj))
            changed += obj
    for obj, members in zip(base._sets, base._set_states, strict=True):
        snapshot._sets.append(obj)
        if _same(obj, members):  # (in the same order too: else it is copied again)
            snapshot._set_states.append(members)
        else:
            snapshot._set_states.append(frozenset(obj))
            changed += obj
    for obj, copy in zip(base._dicts, base._dict_states, strict=True):
        snapshot._dicts.append(obj)
        if _same_dict(obj, copy):
            snapshot._dict_states.append(copy)
        else:
            snapshot._dict_states.append(obj.copy())
            changed += obj
            changed += obj.values()
    for obj, copy in zip(base._instances, base._instance_states, strict=True):
        snapshot._instances.append(obj)
        attributes = obj.__dict__
        if _same_dict(attributes, copy):
            snapshot._instance_states.append(copy)
        else:
            snapshot._instance_states.append(attributes.copy())
            changed += attributes.values()
    for obj, plan, values in zip(
        base._slotted, base._slotted_plans, base._slotted_states, strict=True
    ):
        snapshot._slotted.append(obj)
        snapshot._slotted_plans.append(plan)
        if not plan.differs(obj, values):
            snapshot._slotted_states.append(values)
        else:
            now = plan.get(obj)  # type: ignore[misc]
            snapshot._slotted_states.append(now)
            changed += now
    for buffer in base._pages:
        snapshot._pages.append(buffer)
        snapshot._page_states.append(buffer.pages())
    _walk(snapshot, [v for v in changed if type(v) not in atoms], base._known())
    return snapshot


def _walk(snapshot: Snapshot, stack: list[Any], seen: set[int]) -> None:
    """Add to ``snapshot`` every object reachable from ``stack`` whose identity is not
    in ``seen``, with its state."""
    plans, atoms = _PLANS, _ATOMS
    pop, push = stack.pop, stack.append
    while stack:
        obj = pop()
        cls = type(obj)
        plan = plans.get(cls)
        if plan is None:
            plan = plans[cls] = _Plan(cls)
        kind = plan.kind
        if kind == _ATOM or id(obj) in seen:
            continue
        seen.add(id(obj))
        if kind == _INSTANCE:
            if plan.get is not None:
                try:
                    values = plan.get(obj)
                except AttributeError as exc:  # a slot never assigned
                    raise Unsupported(f"{cls.__qualname__}: {exc}") from None
                if plan.mutable_slots:
                    snapshot._slotted.append(obj)
                    snapshot._slotted_plans.append(plan)
                    snapshot._slotted_states.append(values)
                stack += [v for v in values if type(v) not in atoms]
            if plan.has_dict:
                copy = obj.__dict__.copy()
                snapshot._instances.append(obj)
                snapshot._instance_states.append(copy)
                stack += [v for v in copy.values() if type(v) not in atoms]
        elif kind == _LIST:
            snapshot._lists.append(obj)
            if cls is list:
                items = obj[:]
                snapshot._list_states.append(items)
                stack += [v for v in items if type(v) not in atoms]
            else:
                snapshot._list_states.append(bytes(obj))
        elif kind == _DICT:
            copy = obj.copy()
            snapshot._dicts.append(obj)
            snapshot._dict_states.append(copy)
            stack += [v for v in copy if type(v) not in atoms]
            stack += [v for v in copy.values() if type(v) not in atoms]
        elif kind == _HOLDER:
            stack += [v for v in obj if type(v) not in atoms]
        elif kind == _DEQUE:
            snapshot._deques.append(obj)
            snapshot._deque_states.append(deque(obj))
            stack += [v for v in obj if type(v) not in atoms]
        elif kind == _SET:
            snapshot._sets.append(obj)
            snapshot._set_states.append(frozenset(obj))
            stack += [v for v in obj if type(v) not in atoms]
        elif kind == _PAGES:
            snapshot._pages.append(obj)
            snapshot._page_states.append(obj.pages())
        elif kind == _FUNCTION:
            if obj.__closure__:
                raise Unsupported(f"{obj.__qualname__} (a function with a closure)")
        else:  # _METHOD
            push(obj.__self__)
