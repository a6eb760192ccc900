"""The records a model is declared with: fields, parameters, transitions, properties.

A declaration is data.  Decorators and constructors here build frozen records that
are collected once into a :class:`Spec`; they are interpreted elsewhere:

* concretely by :mod:`xbdspec.model.concrete` (successor states, the ``transitions``
  machines) on plain Python values;
* symbolically by :mod:`xbdspec.proofs.encoding` on z3 terms.

Guards, effects and properties are pure functions written with the operators of
:mod:`xbdspec.model.expr`.  A guard ``guard(s, p)`` takes the state ``s`` (a
``namedtuple`` whose fields are the declared fields; arrays are tuples) and the
bindings ``p`` (the transition's parameters as attributes, and ``p.k``, the sizes);
an effect ``effect(s, p)`` returns a ``dict`` of the fields it changes, computed
from the state before the step.  Fields an effect does not name keep their value.
"""

from __future__ import annotations

import enum
import functools
import itertools
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from xbdspec.errors import XbdspecError

from .expr import all_of


class DeclarationError(XbdspecError):
    """A declaration breaks a rule of the declaration language (the message says which)."""


# --------------------------------------------------------------------------- domains


@dataclass(frozen=True)
class Domain:
    """The finite set of values a field or a parameter ranges over.

    Attributes:
        kind: ``"bool"``, ``"int"`` (``lo``..``hi`` inclusive), ``"enum"`` (the members
            of ``enum_type``) or ``"u32"`` (every 32-bit unsigned value).
        lo, hi: the bounds of an ``int`` domain.
        enum_type: the ``IntEnum`` of an ``enum`` domain.
    """

    kind: str
    lo: int = 0
    hi: int = 0
    enum_type: type[enum.IntEnum] | None = None

    def values(self) -> tuple[Any, ...]:
        """Every value of the domain, in order (not for ``u32``)."""
        if self.kind == "bool":
            return (False, True)
        if self.kind == "int":
            return tuple(range(self.lo, self.hi + 1))
        if self.kind == "enum":
            assert self.enum_type is not None
            return tuple(self.enum_type)
        raise DeclarationError("a u32 domain has 2**32 values; it cannot be enumerated")

    def contains(self, value: object) -> bool:
        """Whether a plain value belongs to the domain."""
        if self.kind == "bool":
            return type(value) is bool
        if not isinstance(value, int) or type(value) is bool:
            return False
        if self.kind == "int":
            return self.lo <= value <= self.hi
        if self.kind == "enum":
            assert self.enum_type is not None
            return value in {int(m) for m in self.enum_type}
        return 0 <= value <= 0xFFFF_FFFF

    def describe(self) -> str:
        """A short human description, for the docs and error messages."""
        if self.kind == "int":
            return f"{self.lo}..{self.hi}"
        if self.kind == "enum":
            assert self.enum_type is not None
            return self.enum_type.__name__
        return self.kind


def boolean() -> Domain:
    """The domain ``{False, True}``."""
    return Domain("bool")


def integer(lo: int, hi: int) -> Domain:
    """The integers ``lo``..``hi`` inclusive."""
    if lo > hi:
        raise DeclarationError(
            f"integer({lo}, {hi}) is empty: the lower bound must not exceed the upper"
        )
    return Domain("int", lo=lo, hi=hi)


def enumeration(enum_type: type[enum.IntEnum]) -> Domain:
    """The members of an ``IntEnum``."""
    return Domain("enum", enum_type=enum_type)


def u32() -> Domain:
    """32-bit unsigned values (``RING_IDX``), wrapping modulo 2**32."""
    return Domain("u32")


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class Field:
    """One variable of the state.

    Attributes:
        name: the attribute name in the state record.
        domain: the values one element ranges over.
        length: ``None`` for a scalar; for an array, the number of elements (arrays
            are indexed by a command or a bio number and stored as tuples).
        doc: what the field means and where it lives in the seed.
        group: a heading for the docs (``"xenbus"``, ``"driver"``, ``"queue"``...).
    """

    name: str
    domain: Domain
    doc: str
    group: str
    length: int | None = None


@dataclass(frozen=True)
class Param:
    """A parameter of an event, with its finite domain (always bound to plain values).

    Attributes:
        values: the domain, or a function of the sizes giving it (``range(k.bios)``).
    """

    name: str
    values: tuple[Any, ...] | Callable[[Any], Sequence[Any]]
    doc: str = ""

    def domain_for(self, sizes: Any) -> tuple[Any, ...]:
        """The parameter's values for the given sizes."""
        if callable(self.values):
            return tuple(self.values(sizes))
        return self.values


# --------------------------------------------------------------------------- transitions

Guard = Callable[[Any, Any], Any]
Effect = Callable[[Any, Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Transition:
    """One guarded step of one component.

    Attributes:
        name: unique, names the step (obligations are named after it).
        event: the event it answers; several transitions may answer one event from
            one source, with guards that exclude each other (an obligation checks it).
        component: the component (machine) it belongs to.
        source: the states of the component's control field it leaves from.
        dest: the state it enters, or ``None`` to stay (an internal transition).
        params: the event's parameters.
        guard: ``guard(s, p)``: when the step is allowed (the source is checked apart).
        effect: ``effect(s, p)``: the fields it changes, from the state before.
        seed: the seed functions (and ``blkif.h`` sections) this step stands for.
        doc: what the step does, in a sentence or two.
        quote: for a rule of the protocol, the header sentences it comes from (a
            :class:`Quote`); ``None`` for a driver's own step.
        deviation: for a step the headers do not allow but real ends take and real
            peers accept, the name of that tolerated deviation; ``None`` otherwise.
        conditions: ``conditions(s, p)``, the guard's conjuncts with what each one
            requires in words (a checker names the one a refused event breaks);
            ``None`` where the guard is a single expression.
    """

    name: str
    event: str
    component: str
    source: tuple[Any, ...]
    dest: Any
    params: tuple[Param, ...]
    guard: Guard
    effect: Effect
    seed: str
    doc: str
    quote: Quote | None = None
    deviation: str | None = None
    conditions: Callable[[Any, Any], list[tuple[str, Any]]] | None = None


@dataclass(frozen=True)
class Quote:
    """Sentences of a Xen public header that a protocol rule rests on, verbatim.

    Attributes:
        header: the header's path in Xen's tree (``xen/include/public/io/blkif.h``).
        section: the comment block or macro the sentences stand in.
        text: the sentences, as the header has them (white space folded).
        version: the Xen release the text was read from.
    """

    header: str
    section: str
    text: str
    version: str = "Xen 4.17"

    def cite(self) -> str:
        """``blkif.h (Xen 4.17), STATE DIAGRAMS``: where the sentences stand."""
        return f"{self.header.rsplit('/', 1)[-1]} ({self.version}), {self.section}"


@dataclass(frozen=True)
class Component:
    """A machine of the composed model: its control field and what it stands for."""

    name: str
    control: str
    doc: str


@dataclass(frozen=True)
class Invariant:
    """A predicate every reachable state satisfies.

    Attributes:
        name: a domain name (``FreezeAccounting``); ``..._ok`` for well-formedness.
        holds: ``holds(s, k)`` with ``k`` the sizes.
        doc: what it means and why it matters (one sentence first).
        source: the seed function or ``blkif.h`` section it comes from.
        auxiliary: True for an invariant that exists to make others inductive.
        quote: for a protocol obligation, the header sentences it states.
    """

    name: str
    holds: Callable[[Any, Any], Any]
    doc: str
    source: str
    auxiliary: bool = False
    quote: Quote | None = None


@dataclass(frozen=True)
class StepProperty:
    """A predicate over every step ``(before, after)`` of a given set of transitions."""

    name: str
    holds: Callable[[Any, Any, Any], Any]
    doc: str
    source: str
    quote: Quote | None = None


@dataclass(frozen=True)
class Progress:
    """A leads-to property for the explorer: whenever ``when`` holds, ``goal`` follows.

    Attributes:
        fairness: the environment events assumed to happen eventually when enabled.
    """

    name: str
    when: Callable[[Any, Any], Any]
    goal: Callable[[Any, Any], Any]
    doc: str
    source: str
    fairness: tuple[str, ...]


# --------------------------------------------------------------------------- declaration helper


@dataclass
class TransitionTable:
    """Collects transitions declared with :meth:`step`, in declaration order."""

    transitions: list[Transition] = field(default_factory=list)

    def step(
        self,
        *,
        event: str,
        component: str,
        source: Sequence[Any],
        dest: Any = None,
        params: Sequence[Param] = (),
        seed: str,
        quote: Quote | None = None,
        deviation: str | None = None,
        requires: Sequence[tuple[str, Callable[[Any], Any]]] = (),
    ) -> Callable[[type], type]:
        """Class decorator: ``guard`` and ``effect`` static methods become a transition.

        The class name becomes the transition's name (snake_case) and its docstring
        the transition's documentation.  Instead of ``guard``, a class may define
        ``conditions(s, p)``: the guard's conjuncts as ``(what it requires, expression)``
        pairs; the guard is then their conjunction.  ``requires`` adds conditions shared
        by many steps, as ``(what it requires, predicate of the state)`` pairs: they are
        conjoined with the guard (and lead the conditions), so every interpretation sees
        them as part of the guard.
        """

        def register(cls: type) -> type:
            name = _snake(cls.__name__)
            guard = cls.__dict__.get("guard")
            effect = cls.__dict__.get("effect")
            conditions = cls.__dict__.get("conditions")
            if guard is None and isinstance(conditions, staticmethod):
                guard = staticmethod(_conjunction(conditions.__func__))
            if not isinstance(guard, staticmethod) or not isinstance(effect, staticmethod):
                raise DeclarationError(
                    f"transition class {cls.__name__} must define `effect` and either "
                    "`guard` or `conditions` as @staticmethod functions of (s, p); an "
                    "effect with nothing to change returns {}."
                )
            if not cls.__doc__:
                raise DeclarationError(f"transition class {cls.__name__} needs a docstring.")
            guard_fn = guard.__func__
            conditions_fn = conditions.__func__ if isinstance(conditions, staticmethod) else None
            if requires:
                guard_fn = _with_requirements(guard_fn, tuple(requires))
                if conditions_fn is not None:
                    conditions_fn = _conditions_with(conditions_fn, tuple(requires))
            self.transitions.append(
                Transition(
                    name=name,
                    event=event,
                    component=component,
                    source=tuple(source),
                    dest=dest,
                    params=tuple(params),
                    guard=guard_fn,
                    effect=effect.__func__,
                    seed=seed,
                    doc=" ".join(cls.__doc__.split()),
                    quote=quote,
                    deviation=deviation,
                    conditions=conditions_fn,
                )
            )
            return cls

        return register


def _conjunction(
    conditions: Callable[[Any, Any], list[tuple[str, Any]]],
) -> Callable[[Any, Any], Any]:
    def guard(s: Any, p: Any) -> Any:
        return all_of(*(cond for _, cond in conditions(s, p)))

    return guard


def _with_requirements(
    guard: Callable[[Any, Any], Any], requires: tuple[tuple[str, Callable[[Any], Any]], ...]
) -> Callable[[Any, Any], Any]:
    def guarded(s: Any, p: Any) -> Any:
        return all_of(*(holds(s) for _, holds in requires), guard(s, p))

    return guarded


def _conditions_with(
    conditions: Callable[[Any, Any], list[tuple[str, Any]]],
    requires: tuple[tuple[str, Callable[[Any], Any]], ...],
) -> Callable[[Any, Any], list[tuple[str, Any]]]:
    def listed(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [(what, holds(s)) for what, holds in requires] + conditions(s, p)

    return listed


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class Bindings:
    """A transition's parameter values as attributes, plus the sizes as ``k``."""

    __slots__ = ("__dict__",)

    def __init__(self, k: Any, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)
        self.__dict__["k"] = k

    def as_dict(self) -> dict[str, Any]:
        """The parameter values without the sizes."""
        return {n: v for n, v in self.__dict__.items() if n != "k"}

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={_show(v)}" for n, v in self.as_dict().items())
        return f"({inner})"


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return value.name
    return repr(value)


@dataclass(frozen=True)
class Instance:
    """A transition with every parameter bound: one concrete way an event can happen."""

    transition: Transition
    bindings: Bindings

    @property
    def label(self) -> str:
        """How the step reads in a trace: ``event(param=value, ...)``."""
        return f"{self.transition.event}{self.bindings!r}"


# --------------------------------------------------------------------------- the spec


class Spec:
    """A whole declaration, checked for well-formedness, for one choice of sizes.

    Attributes:
        sizes: the size parameters (a frozen dataclass).
        fields: the state's fields, in order.
        components: the machines, by name.
        transitions: every transition, in declaration order.
        invariants, step_properties, progress: the properties.
        State: the ``namedtuple`` type of a state (fields in order).
    """

    def __init__(
        self,
        *,
        sizes: Any,
        fields: Sequence[Field],
        components: Sequence[Component],
        transitions: Sequence[Transition],
        initial: Callable[[Any, Any], Mapping[str, Any]],
        invariants: Sequence[Invariant],
        step_properties: Sequence[StepProperty],
        progress: Sequence[Progress],
    ) -> None:
        self.sizes = sizes
        self.fields = tuple(fields)
        self.field_by_name = {f.name: f for f in self.fields}
        self.components = {c.name: c for c in components}
        self.transitions = tuple(transitions)
        self._initial = initial
        self.invariants = tuple(invariants)
        self.step_properties = tuple(step_properties)
        self.progress = tuple(progress)
        self.State: Any = namedtuple("State", [f.name for f in self.fields])  # type: ignore[misc]
        self._check()

    @functools.cached_property
    def instances(self) -> tuple[Instance, ...]:
        """Every transition with every choice of its parameters (made on first use: a
        checker that steps named instances never needs them all)."""
        return tuple(self._instances())

    # ---- well-formedness
    def _check(self) -> None:
        names = [t.name for t in self.transitions]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise DeclarationError(f"transition names must be unique; repeated: {sorted(dupes)}")
        by_event: dict[str, Transition] = {}
        for t in self.transitions:
            if t.component not in self.components:
                raise DeclarationError(
                    f"transition {t.name} names component {t.component!r}, which is not "
                    f"declared (declared: {sorted(self.components)})."
                )
            control = self.field_by_name[self.components[t.component].control]
            for state in (*t.source, *([] if t.dest is None else [t.dest])):
                if not control.domain.contains(state):
                    raise DeclarationError(
                        f"transition {t.name}: {state!r} is not a state of "
                        f"{control.name} ({control.domain.describe()})."
                    )
            first = by_event.setdefault(t.event, t)
            if [p.name for p in first.params] != [p.name for p in t.params]:
                raise DeclarationError(
                    f"transitions {first.name} and {t.name} answer event {t.event!r} with "
                    "different parameters; every transition of an event takes the same ones."
                )

        events = {t.event for t in self.transitions}
        for prop in self.progress:
            unknown = sorted(set(prop.fairness) - events)
            if unknown:
                raise DeclarationError(
                    f"progress property {prop.name} assumes fairness of {unknown}, which are "
                    f"no events of the model (events: {sorted(events)})."
                )

    def _instances(self) -> Iterator[Instance]:
        for t in self.transitions:
            for combo in itertools.product(*(p.domain_for(self.sizes) for p in t.params)):
                values = {p.name: v for p, v in zip(t.params, combo, strict=True)}
                yield Instance(t, Bindings(self.sizes, values))

    def replace(self, **changes: Any) -> Spec:
        """A new spec with some of the constructor's arguments changed (for broken
        variants in tests, or another set of transitions)."""
        args: dict[str, Any] = {
            "sizes": self.sizes,
            "fields": self.fields,
            "components": tuple(self.components.values()),
            "transitions": self.transitions,
            "initial": self._initial,
            "invariants": self.invariants,
            "step_properties": self.step_properties,
            "progress": self.progress,
        }
        args.update(changes)
        return Spec(**args)

    # ---- helpers shared by both interpretations
    def control_of(self, transition: Transition) -> str:
        """The name of the control field of the transition's component."""
        return self.components[transition.component].control

    def initial_fields(self, ring_base: Any) -> dict[str, Any]:
        """The initial value of every field, given the ring's starting index."""
        values = dict(self._initial(self.sizes, ring_base))
        missing = [f.name for f in self.fields if f.name not in values]
        if missing:
            raise DeclarationError(f"the initial state leaves fields unset: {missing}")
        return values

    def events(self) -> dict[str, tuple[Transition, ...]]:
        """Transitions grouped by the event they answer, in declaration order."""
        grouped: dict[str, list[Transition]] = {}
        for t in self.transitions:
            grouped.setdefault(t.event, []).append(t)
        return {e: tuple(ts) for e, ts in grouped.items()}

    def transition(self, name: str) -> Transition:
        """The transition called ``name``."""
        for t in self.transitions:
            if t.name == name:
                return t
        raise DeclarationError(f"no transition is called {name!r}")

    def invariant(self, name: str) -> Invariant:
        """The invariant called ``name``."""
        for inv in self.invariants:
            if inv.name == name:
                return inv
        raise DeclarationError(f"no invariant is called {name!r}")
