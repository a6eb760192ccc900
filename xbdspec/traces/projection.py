"""The handshake projection: what a xenstore log can show of the model, and how a
log's state writes are checked against it.

A xenstore access log shows each end's ``state`` writes, the keys each end publishes,
and the tool stack's ``online`` key; it cannot show the driver's queues, its ring or
its watch handlers.  The projection keeps the model's own transitions (it steps
:class:`~xbdspec.model.concrete.Stepper`; there is no second transition table) and
splits them by their effect on the *observed fields*:

* ``fe_state`` (the front end's ``state`` node), ``be_state`` (the back end's) and
  ``be_online`` (the back end's ``online`` key, which the tool stack sets to 0 to
  unplug): a transition that changes exactly one of them is *observable* as the
  matching write;
* every other transition is *unobservable* (watch deliveries that change nothing
  visible, ``open`` and ``close`` of the disk, the locked tails of handlers, the
  request path) and may happen any number of times between two lines of the log.

A device is checked by keeping the set of model states consistent with the log so
far: on each write, take the closure of the set under unobservable steps, then the
observable steps that make exactly that write.  An empty set is a divergence.  The
set only ever holds states reachable from the initial state with no I/O submitted
(the disk layer's ``strategy`` is left out: I/O can delay a handshake step but never
enables one, so the handshake sequences are the same), a few thousand at most, so
the memory used per device is bounded whatever the length of the log.

The front end's transport keys map to the model's ``fe_published`` (the abstraction
function is :func:`xbdspec.traces.vbd.transport_published`); the model's invariants
that read only observed fields and ``fe_published`` (PublishedBeforeInitialised,
BackendConnectedAfterPublish) are then checked on the log itself.

Behaviours ``blkif.h`` allows but the model does not (see ``docs/traces.md``) are
named in :data:`KNOWN_GAPS`; a refused write that matches one is reported as such,
and checking resumes from every reachable model state that agrees with the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from xbdspec.model.concrete import Stepper
from xbdspec.model.declaration import Instance, Invariant
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import XenbusState

X = XenbusState

#: The fields a xenstore log shows, in the order of a projection tuple.
OBSERVED: tuple[str, ...] = ("fe_state", "be_state", "be_online")
#: The model's flag that the front end's transport keys stand for.
PUBLISHED_FIELD = "fe_published"
#: Events left out of the projection: the disk layer's I/O submissions and the kernel
#: dumper's call (``xbd_dump`` writes no xenstore node: a log cannot show it)
NO_IO_EVENTS: frozenset[str] = frozenset({"strategy", "dump"})
#: The fields shown when a report prints a model state.
HANDSHAKE_FIELDS: tuple[str, ...] = (
    "fe_state",
    "be_state",
    "be_online",
    "fe_published",
    "be_published",
    "fe_watch_pending",
    "be_watch_pending",
    "fe_seen_be",
    "fe_pc",
    "users",
    "disk",
    "drv_state",
    "susp_pc",
)

_FIELD_INDEX = {name: i for i, name in enumerate(OBSERVED)}

State = Any
States = frozenset[Any]
Projection = tuple[Any, ...]


@dataclass(frozen=True)
class Observation:
    """One write the log shows: ``field`` (one of :data:`OBSERVED`) becomes ``value``."""

    field: str
    value: Any

    def describe(self) -> str:
        """``front end writes state Initialised (3)`` and the like."""
        return describe_write(self.field, self.value)


def describe_write(field: str, value: Any) -> str:
    """A write in words."""
    if field == "be_online":
        return f"tool stack writes back end online={int(bool(value))}"
    side = "front end" if field == "fe_state" else "back end"
    return f"{side} writes state {X(value).name} ({int(value)})"


@dataclass(frozen=True)
class Outcome:
    """The result of checking one write.

    Attributes:
        states: the model states consistent with the log after the write (empty: refused).
        via: the names of the model transitions that make the write.
    """

    states: States
    via: tuple[str, ...]


@dataclass(frozen=True)
class KnownGap:
    """A behaviour ``blkif.h`` allows that the model refuses (reported, not failed).

    Attributes:
        name: how reports call it.
        applies: ``applies(before, observation)``, with ``before`` the observed
            projection before the write.
        doc: the legal sequence and where ``blkif.h`` allows it.
    """

    name: str
    applies: Callable[[Projection, Observation], bool]
    doc: str


KNOWN_GAPS: tuple[KnownGap, ...] = (
    KnownGap(
        "FrontConnectedWithoutInitialised",
        lambda b, o: o.field == "fe_state" and o.value == X.Connected and b[0] == X.Initialising,
        "Mini-OS writes its transport keys and goes straight from Initialising to "
        "Connected; back ends connect on Initialised or Connected. The model's front end "
        "passes through Initialised.",
    ),
    KnownGap(
        "FrontClosedDirectly",
        lambda b, o: (
            o.field == "fe_state"
            and o.value == X.Closed
            and b[0] in (X.Initialising, X.Initialised, X.Connected)
        ),
        "Linux 6.1 (blkfront_closing -> xenbus_frontend_closed) and NetBSD answer the back "
        "end's Closing by writing Closed directly; xenbus.h allows it and the protocol "
        "model accepts it (frontend_closed). This checker follows the FreeBSD model, "
        "whose front end passes through Closing.",
    ),
)


def project(state: State) -> Projection:
    """The observed fields of a model state."""
    return (state.fe_state, state.be_state, state.be_online)


class _Recorder:
    """Stands for a state and records which fields a predicate reads."""

    def __init__(self, state: State) -> None:
        self._state = state
        self.read: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.read.add(name)
        return getattr(self._state, name)


class HandshakeProjection:
    """The model seen through a xenstore log (one per set of sizes, shared by devices).

    Attributes:
        stepper: the model's concrete interpretation.
        invariants: the model's invariants the log can check (they read only observed
            fields and ``fe_published``).
    """

    def __init__(self, sizes: Sizes | None = None) -> None:
        self.spec = build_spec(sizes or Sizes())
        self.stepper = Stepper(self.spec)
        self.initial: State = self.stepper.initial()
        self._succ: dict[State, tuple[tuple[Instance, State], ...]] = {}
        self._closure: dict[State, States] = {}
        self._set_closure: dict[States, States] = {}
        self._observe: dict[tuple[States, Observation], Outcome] = {}
        self._invariant_ok: dict[tuple[State, bool], tuple[str, ...]] = {}
        self._published: dict[tuple[States, bool], tuple[States, tuple[str, ...]]] = {}
        self._reachable: States | None = None
        self.invariants: tuple[Invariant, ...] = self._log_invariants()

    # ---- the model's steps, memoised
    def successors(self, state: State) -> tuple[tuple[Instance, State], ...]:
        """The model's steps from ``state``, without I/O submissions."""
        found = self._succ.get(state)
        if found is None:
            found = tuple(
                (i, t)
                for i, t in self.stepper.successors(state)
                if i.transition.event not in NO_IO_EVENTS
            )
            self._succ[state] = found
        return found

    def closure(self, states: States) -> States:
        """``states`` and every state reachable from them through unobservable steps."""
        found = self._set_closure.get(states)
        if found is None:
            acc: set[State] = set()
            for s in states:
                acc |= self._state_closure(s)
            found = frozenset(acc)
            self._set_closure[states] = found
        return found

    def _state_closure(self, state: State) -> States:
        found = self._closure.get(state)
        if found is not None:
            return found
        seen = {state}
        todo = [state]
        while todo:
            s = todo.pop()
            p = project(s)
            for _, t in self.successors(s):
                if t not in seen and project(t) == p:
                    seen.add(t)
                    todo.append(t)
        found = frozenset(seen)
        self._closure[state] = found
        return found

    def reachable(self) -> States:
        """Every state reachable from the initial state without I/O (computed once)."""
        if self._reachable is None:
            seen = {self.initial}
            todo = [self.initial]
            while todo:
                s = todo.pop()
                for _, t in self.successors(s):
                    if t not in seen:
                        seen.add(t)
                        todo.append(t)
            self._reachable = frozenset(seen)
        return self._reachable

    # ---- checking writes
    def observe(self, states: States, obs: Observation) -> Outcome:
        """The states after the write ``obs`` from any state consistent with the log.

        A write of the value a field already has changes nothing (xenstore fires the
        watch; the peer's handler finds nothing to do).
        """
        key = (states, obs)
        found = self._observe.get(key)
        if found is not None:
            return found
        index = _FIELD_INDEX[obs.field]
        after: set[State] = set()
        via: set[str] = set()
        for s in self.closure(states):
            ps = project(s)
            if ps[index] == obs.value:
                after.add(s)
                continue
            for instance, t in self.successors(s):
                pt = project(t)
                if pt[index] == obs.value and _differs_only_at(ps, pt, index):
                    after.add(t)
                    via.add(instance.transition.name)
        found = Outcome(frozenset(after), tuple(sorted(via)))
        self._observe[key] = found
        return found

    def allowed(self, states: States) -> list[str]:
        """The writes the model allows next, each with the transitions that make it."""
        moves: dict[str, set[str]] = {}
        for s in self.closure(states):
            ps = project(s)
            for instance, t in self.successors(s):
                pt = project(t)
                for i, name in enumerate(OBSERVED):
                    if ps[i] != pt[i] and _differs_only_at(ps, pt, i):
                        label = describe_write(name, pt[i])
                        moves.setdefault(label, set()).add(
                            f"{instance.label} by {instance.transition.name}"
                        )
        return [f"{label} [{', '.join(sorted(v))}]" for label, v in sorted(moves.items())]

    def resynchronise(self, states: States, obs: Observation) -> States:
        """After a known gap: every reachable state that agrees with the log's view
        after the write (empty when the model has no such state)."""
        index = _FIELD_INDEX[obs.field]
        targets = set()
        for s in self.closure(states):
            p = list(project(s))
            p[index] = obs.value
            targets.add(tuple(p))
        return frozenset(r for r in self.reachable() if project(r) in targets)

    def join(self, obs: Observation) -> States:
        """A device first seen mid-handshake: every reachable state with ``obs``'s value."""
        index = _FIELD_INDEX[obs.field]
        return frozenset(r for r in self.reachable() if project(r)[index] == obs.value)

    def gap(self, states: States, obs: Observation) -> KnownGap | None:
        """The known gap a refused write matches, if any."""
        for before in {project(s) for s in states}:
            for gap in KNOWN_GAPS:
                if gap.applies(before, obs):
                    return gap
        return None

    # ---- invariants on the log
    def _log_invariants(self) -> tuple[Invariant, ...]:
        readable = {*OBSERVED, PUBLISHED_FIELD}
        chosen = []
        for inv in self.spec.invariants:
            probe = _Recorder(self.initial)
            inv.holds(probe, self.spec.sizes)
            if probe.read <= readable and PUBLISHED_FIELD in probe.read:
                chosen.append(inv)
        return tuple(chosen)

    def check_published(self, states: States, published: bool) -> tuple[States, tuple[str, ...]]:
        """Keep the states whose observed fields, with ``fe_published`` as the log shows
        it, satisfy :attr:`invariants`; also the names of the invariants that fail when
        none is kept."""
        key = (states, published)
        found = self._published.get(key)
        if found is not None:
            return found
        kept: set[State] = set()
        failed: set[str] = set()
        for s in states:
            names = self._broken(s, published)
            if names:
                failed.update(names)
            else:
                kept.add(s)
        found = frozenset(kept), (tuple(sorted(failed)) if not kept else ())
        self._published[key] = found
        return found

    def _broken(self, state: State, published: bool) -> tuple[str, ...]:
        key = (state, published)
        found = self._invariant_ok.get(key)
        if found is None:
            seen = state._replace(**{PUBLISHED_FIELD: published})
            k = self.spec.sizes
            found = tuple(inv.name for inv in self.invariants if not inv.holds(seen, k))
            self._invariant_ok[key] = found
        return found

    def describe_states(self, states: Iterable[State], limit: int = 3) -> list[dict[str, Any]]:
        """Up to ``limit`` distinct model states, shown by their handshake fields."""
        shown: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for s in sorted(
            states, key=lambda s: tuple(_plain(getattr(s, f)) for f in HANDSHAKE_FIELDS)
        ):
            row = tuple(getattr(s, f) for f in HANDSHAKE_FIELDS)
            if row in seen:
                continue
            seen.add(row)
            shown.append({f: _name(v) for f, v in zip(HANDSHAKE_FIELDS, row, strict=True)})
            if len(shown) == limit:
                break
        return shown


def _differs_only_at(a: Projection, b: Projection, index: int) -> bool:
    return all(x == y for i, (x, y) in enumerate(zip(a, b, strict=True)) if i != index)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, (bool, int)) else str(value)


def _name(value: Any) -> Any:
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else value
