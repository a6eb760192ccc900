"""The lock-step checker: an implementation and the model, event by event.

After each environment event the harness asks the model which states the event can
lead to once the driver's internal steps have run (``io_pc`` and ``fe_pc`` back to
IDLE), choosing among the model's internal nondeterminism (which free command, which
transition of several) and following the environment's DMA answers.  The states whose
observable fields equal the implementation's observation are the new candidates; none
is a :class:`Divergence`.  Every model invariant is evaluated on the candidates, and on
the implementation's own abstract state when its observation is complete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from xbdspec.explore.fast import FastStepper
from xbdspec.model.concrete import Stepper
from xbdspec.model.declaration import Instance, Spec
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import DUMP_YIELD_EVENTS, BlkifStatus, Dma, DumpPc, FrontPc, IoPc

from .contract import (
    INTERNAL_EVENTS,
    EnvChoices,
    Implementation,
    ImplementationError,
    Observation,
    Step,
)
from .values import encode_state, plain

#: Internal steps explored after one environment event before the harness gives up.
CLOSURE_LIMIT = 5_000

#: Entries kept in the model side's memo tables before they are cleared.
MEMO_LIMIT = 200_000

#: The handshake the harness drives through the model for implementations that start
#: connected (the request-path cores): back end InitWait, front Initialised, back end
#: Connected, front Connected, the last watch event, one user opens the disk.
CONNECT_PREFIX: tuple[tuple[str, dict[str, Any]], ...] = (
    ("backend_publish", {"barrier": None, "flush": None}),
    ("backend_watch", {}),
    ("frontend_watch", {}),
    ("backend_watch", {}),
    ("frontend_watch", {}),
    ("open", {}),
)


class _Unencoded:
    """Model states waiting to be made plain values (:class:`_EncodedOnRead`): most
    divergences the explorer meets are only classified and counted, so their
    candidates are never read (encoding every one was some 4 % of a search)."""

    __slots__ = ("encode", "states")

    def __init__(self, states: list[Any], encode: Callable[[Any], dict[str, Any]]) -> None:
        self.states = states
        self.encode = encode

    def encoded(self) -> list[dict[str, Any]]:
        """The states as plain dicts, in order."""
        return [self.encode(s) for s in self.states]


class _EncodedOnRead:
    """The descriptor behind :attr:`Divergence.candidates`: it holds the plain dicts,
    or an :class:`_Unencoded` that is encoded on the first read (and kept).  A caller
    may still give plain dicts; every reader (the report, ``repr``, ``==``,
    ``dataclasses.replace``) sees the list of dicts either way."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = f"_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> list[dict[str, Any]]:
        if obj is None:  # on the class: no default value (the field stays required)
            raise AttributeError(self._key)
        value = obj.__dict__[self._key]
        if type(value) is _Unencoded:
            value = obj.__dict__[self._key] = value.encoded()
        return value  # type: ignore[no-any-return]

    def __set__(self, obj: Any, value: list[dict[str, Any]] | _Unencoded) -> None:
        obj.__dict__[self._key] = value


@dataclass
class Divergence:
    """The implementation and the model disagree.

    Attributes:
        kind: ``"mismatch"`` (no model state explains the observation) or ``"fault"``
            (the implementation crashed).  An observation that matches a model state
            cannot break an invariant: the abstract state then is that model state.
        steps: the environment events so far, the failing one last.
        observed: the implementation's observation (plain values).
        candidates: the model states the failing event could lead to (plain values;
            made plain on the first read, :class:`_EncodedOnRead`).
        differences: ``field -> (model, implementation)`` against the closest candidate.
        invariants: model invariants the implementation's abstract state breaks.
        fault: the implementation's crash, if any.
        finding: the known finding this divergence is classified as, if any.
        met_with: the other known findings its signature shows together with
            ``finding`` (known defects met in one program; empty: the finding alone).
        transition: the model's transition of the failing environment event that leads
            to the closest candidate (the one ``differences`` is taken against; for a
            fault, the first candidate): what the implementation should have done.
        path: that candidate's whole path, the driver's internal transitions included.
        configuration: the name of the campaign configuration it was found under.
    """

    kind: str
    steps: list[Step]
    observed: dict[str, Any]
    candidates: list[dict[str, Any]]
    differences: dict[str, tuple[Any, Any]]
    invariants: list[str]
    fault: str | None = None
    finding: str | None = None
    met_with: tuple[str, ...] = ()
    transition: str | None = None
    path: tuple[str, ...] = ()
    configuration: str | None = None

    @property
    def last(self) -> Step:
        """The event at which the implementation departed from the model."""
        return self.steps[-1]

    def report(self) -> str:
        """A readable account: the program, what the model allows, what differs."""
        lines = [f"divergence ({self.kind}) at step {len(self.steps)}: {self.last.label()}"]
        if self.finding:
            met = f" (met with {', '.join(self.met_with)})" if self.met_with else ""
            lines.append(f"  classified as known finding: {self.finding}{met}")
        lines.append("  program:")
        lines += [f"    {i + 1:3}. {s.label()}" for i, s in enumerate(self.steps)]
        if self.fault:
            lines.append(f"  implementation fault: {self.fault}")
        if self.differences:
            lines.append(
                f"  field            model  <->  implementation   "
                f"({len(self.candidates)} model states reachable)"
            )
            for name, (want, got) in sorted(self.differences.items()):
                lines.append(
                    f"    {name:16} {named_value(name, want):>12}  <->  {named_value(name, got)}"
                )
        if self.invariants:
            lines.append(
                "  model invariants broken by the implementation's abstract state: "
                + ", ".join(self.invariants)
            )
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        """The divergence as JSON-friendly data (``xbdspec difftest --json``)."""
        from .signatures import signature_of

        return {
            "kind": self.kind,
            "finding": self.finding,
            "met_with": list(self.met_with),
            "signature": signature_of(self).as_json(),
            "configuration": self.configuration,
            "transition": self.transition,
            "step": len(self.steps),
            "event": self.last.label(),
            "program": [s.label() for s in self.steps],
            "fault": self.fault,
            "differences": {k: [plain(a), plain(b)] for k, (a, b) in self.differences.items()},
            "invariants": self.invariants,
        }


# (set after the dataclass is made: a descriptor as the field's default would make the
# field look optional to the type checker)
_candidates = _EncodedOnRead()
_candidates.__set_name__(Divergence, "candidates")
Divergence.candidates = _candidates  # type: ignore[assignment]


def named_value(field_name: str, value: Any) -> str:
    """A field's value as a table shows it: an enum field's values by their names
    (``[FREE, BUSY]``, not ``[0, 2]``), a value outside the domain as its number,
    anything else as it prints."""
    domain = _field_domains().get(field_name)
    enum_type = domain.enum_type if domain is not None else None

    def one(item: Any) -> str:
        if isinstance(item, list | tuple):
            return "[" + ", ".join(one(v) for v in item) + "]"
        if enum_type is not None and isinstance(item, int) and not isinstance(item, bool):
            try:
                return str(enum_type(item).name)
            except ValueError:
                return str(item)
        return str(item)

    return one(value)


_DOMAINS: dict[str, Any] = {}


def _field_domains() -> dict[str, Any]:
    """The FreeBSD model's field domains by name (the same at every size)."""
    if not _DOMAINS:
        _DOMAINS.update({f.name: f.domain for f in build_spec(Sizes()).fields})
    return _DOMAINS


@dataclass
class Coverage:
    """How often each environment event and each model transition fired."""

    events: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Coverage) -> None:
        """Add another run's counts."""
        self.events.update(other.events)
        self.transitions.update(other.transitions)

    def report(self, spec: Spec) -> dict[str, Any]:
        """Counts for every event and transition of the model, zeros included."""
        return {
            "events": {e: self.events.get(e, 0) for e in spec.events() if e not in INTERNAL_EVENTS},
            "transitions": {t.name: self.transitions.get(t.name, 0) for t in spec.transitions},
        }


class ModelSide:
    """The model's half of the lock step: instances indexed for the closure search."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.spec = build_spec(sizes)
        self.stepper = Stepper(self.spec)
        # successors and invariants memoised on what each guard and effect reads (the
        # explorer's interpretation of the same declaration): states recur across programs
        self.fast = FastStepper(self.spec)
        self._events_of = tuple(i.transition.event for i in self.fast.instances)
        self._internal_kind: tuple[Any, ...] = tuple(_internal_kind(i) for i in self.fast.instances)
        # each instance's parameters, as given to events and in plain values (compared
        # with an event's parameters in the closure search)
        self._params_of: tuple[dict[str, Any], ...] = tuple(
            i.bindings.as_dict() for i in self.fast.instances
        )
        self._plain_params_of: tuple[dict[str, Any], ...] = tuple(
            {k: plain(v) for k, v in p.items()} for p in self._params_of
        )
        self.by_event: dict[str, list[Instance]] = {}
        for inst in self.spec.instances:
            self.by_event.setdefault(inst.transition.event, []).append(inst)
        self.internal = [i for i in self.spec.instances if i.transition.event in INTERNAL_EVENTS]
        self.environment_events = [e for e in self.spec.events() if e not in INTERNAL_EVENTS]
        self.field_names: tuple[str, ...] = tuple(self.spec.State._fields)
        self.field_position: dict[str, int] = {n: i for i, n in enumerate(self.field_names)}
        self._successors: dict[Any, list[tuple[int, Any]]] = {}
        self._enabled: dict[tuple[Any, str], list[Instance]] = {}
        self._parameters: dict[Any, dict[str, list[dict[str, Any]]]] = {}
        self._violated: dict[Any, list[str]] = {}
        self._closures: dict[tuple[Any, ...], list[tuple[Any, tuple[str, ...]]]] = {}
        # the keys of the closures on whose way an internal step took a DMA answer
        self._answer_used: set[tuple[Any, ...]] = set()
        self._names = tuple(i.transition.name for i in self.fast.instances)
        # an event's parameters (as given) -> their plain values in name order
        self._param_keys: dict[tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...]] = {}
        # (event, plain parameters) -> the positions of the instances answering it
        self._answering: dict[tuple[str, tuple[tuple[str, Any], ...]], frozenset[int]] = {}
        for i, params in enumerate(self._plain_params_of):
            key = (self._events_of[i], tuple(sorted(params.items())))
            self._answering[key] = self._answering.get(key, frozenset()) | {i}
        # the observation plans of _match, by the observation's field names in order
        self._plans: dict[tuple[str, ...], _ObservationPlan] = {}

    def successors(self, state: Any) -> list[tuple[int, Any]]:
        """Every step from ``state`` (instance position, state after), memoised: the
        closure search and the enabled events of one state ask for them many times."""
        found = self._successors.get(state)
        if found is None:
            if len(self._successors) > MEMO_LIMIT:
                self._successors.clear()
            found = self.fast.next_states(state)
            self._successors[state] = found
        return found

    def enabled(self, state: Any, event: str) -> list[Instance]:
        """The instances of ``event`` enabled in ``state`` (memoised: states recur)."""
        key = (state, event)
        found = self._enabled.get(key)
        if found is None:
            if len(self._enabled) > MEMO_LIMIT:
                self._enabled.clear()
            instances, events = self.fast.instances, self._events_of
            found = [instances[i] for i, _ in self.successors(state) if events[i] == event]
            self._enabled[key] = found
        return found

    def parameters(self, state: Any, event: str) -> list[dict[str, Any]]:
        """The distinct parameter sets of ``event`` enabled in ``state``, in declaration
        order (memoised per state for every event at once: a random program asks for
        each environment event in each state it reaches)."""
        table = self._parameters.get(state)
        if table is None:
            if len(self._parameters) > MEMO_LIMIT:
                self._parameters.clear()
            table = {}
            events = self._events_of
            for i, _ in self.successors(state):
                params = self._params_of[i]
                found = table.setdefault(events[i], [])
                if params not in found:
                    found.append(params)
            self._parameters[state] = table
        return table.get(event, [])

    def parameter_table(self, state: Any) -> dict[str, list[dict[str, Any]]]:
        """Every event enabled in ``state`` with its distinct parameter sets (the
        table :meth:`parameters` reads; not to be changed by the caller)."""
        self.parameters(state, "")
        return self._parameters[state]

    def violated(self, state: Any) -> list[str]:
        """The model invariants ``state`` breaks (memoised)."""
        found = self._violated.get(state)
        if found is None:
            if len(self._violated) > MEMO_LIMIT:
                self._violated.clear()
            found = self.fast.violated_invariants(state)
            self._violated[state] = found
        return found

    def observation_plan(self, observed: tuple[str, ...]) -> _ObservationPlan:
        """How to compare an observation showing the fields ``observed`` (in its order)
        with model states (memoised: an implementation shows the same fields each time)."""
        plan = self._plans.get(observed)
        if plan is None:
            plan = self._plans[observed] = _ObservationPlan(observed, self.field_position)
        return plan

    def param_key(self, params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """``params`` as a hashable key: ``(name, plain value)`` pairs in name order
        (memoised on the pairs as given, when they are hashable)."""
        given = tuple(params.items())
        try:
            found = self._param_keys.get(given)
        except TypeError:  # an unhashable value: no memo
            return tuple(sorted((k, plain(v)) for k, v in given))
        if found is None:
            if len(self._param_keys) > MEMO_LIMIT:
                self._param_keys.clear()
            found = tuple(sorted((k, plain(v)) for k, v in given))
            self._param_keys[given] = found
        return found

    def closure(
        self, state: Any, event: str, params: Mapping[str, Any], env: EnvChoices
    ) -> list[tuple[Any, tuple[str, ...]]]:
        """Every quiescent state ``event(**params)`` can lead to, with the transitions taken
        (memoised: programs share prefixes)."""
        key = (state, event, self.param_key(params), env)
        found = self._closures.get(key)
        if found is None:
            if len(self._closures) > MEMO_LIMIT:
                self._closures.clear()
                self._answer_used.clear()
            found = self._closure(state, event, key[2], env)
            self._closures[key] = found
        return found

    def answers_matter(
        self, state: Any, event: str, params: Mapping[str, Any], env: EnvChoices
    ) -> bool:
        """Whether the DMA answers could change :meth:`closure` of ``event(**params)``
        from ``state``: some internal step that takes an answer was enabled on the way
        with ``env``.  When none was, every other ``env`` follows the same steps to the
        same states (only the steps that take no answer were followed)."""
        key = (state, event, self.param_key(params), env)
        if key not in self._closures:
            self.closure(state, event, params, env)
        return key in self._answer_used

    def _closure(
        self, state: Any, event: str, params: tuple[tuple[str, Any], ...], env: EnvChoices
    ) -> list[tuple[Any, tuple[str, ...]]]:
        answering = self._answering.get((event, params), frozenset())
        names, internal, successors = self._names, self._internal_kind, self.successors
        starts: list[tuple[Any, tuple[str, ...], int]] = [
            (after, (names[i],), 0) for i, after in successors(state) if i in answering
        ]
        finals: list[tuple[Any, tuple[str, ...]]] = []
        seen: set[tuple[Any, int]] = set()
        frontier = list(starts)
        explored = 0
        answers, used = env.dma, False
        while frontier:
            s, path, sends = frontier.pop()
            if (s, sends) in seen:
                continue
            seen.add((s, sends))
            explored += 1
            if explored > CLOSURE_LIMIT:
                raise ImplementationError(
                    f"the model's internal steps after {event} did not settle within "
                    f"{CLOSURE_LIMIT} states; the model may loop internally"
                )
            dumping = s.dump_pc != DumpPc.IDLE
            if s.io_pc == IoPc.IDLE and s.fe_pc == FrontPc.IDLE and not dumping:
                finals.append((s, path))
                continue
            answer = answers[sends] if sends < len(answers) else Dma.IMMEDIATE  # env.dma_at
            for i, after in successors(s):
                kind = internal[i]
                if kind is None or (kind == "yield" and not dumping):
                    continue
                if kind == "plain" or kind == "yield":
                    frontier.append((after, (*path, names[i]), sends))
                else:
                    used = True
                    if kind == answer:
                        frontier.append((after, (*path, names[i]), sends + 1))
        if used:
            self._answer_used.add((state, event, params, env))
        return finals


def _internal_kind(instance: Instance) -> Any:
    """How the closure search treats an instance: ``None`` (an environment event: not
    inside a call), ``"plain"`` (an internal step), a ``Dma`` (an internal step taken
    only when bus_dma answers so), or ``"yield"``: the back end's steps while ``xbd_dump``
    polls (``DUMP_YIELD_EVENTS``; it answers every request OKAY, as the adapters'
    back ends do inside a dump)."""
    event = instance.transition.event
    values = instance.bindings.__dict__
    if event in DUMP_YIELD_EVENTS:
        return "yield" if values.get("status", BlkifStatus.OKAY) == BlkifStatus.OKAY else None
    if event not in INTERNAL_EVENTS:
        return None
    return values.get("dma", "plain")


class LockStep:
    """One implementation and the model, driven together.

    Attributes:
        impl: the implementation under test.
        model: the model's side.
        candidates: the model states consistent with every observation so far.
        steps: the environment events applied so far.
        coverage: events and transitions fired.
    """

    def __init__(self, impl: Implementation, sizes: Sizes, model: ModelSide | None = None) -> None:
        self.impl = impl
        self.caps = impl.capabilities()
        # a model side is built once per sizes and may be shared (its memo tables too)
        self.model = model if model is not None and model.sizes == sizes else ModelSide(sizes)
        self.candidates: list[Any] = []
        self.steps: list[Step] = []
        self.coverage = Coverage()
        # the program generator's tables of what it draws from, by profile and candidates
        # (:func:`~xbdspec.conformance.program.random_step`; they depend on what the
        # implementation answers, so they are kept with the lock step, not the model)
        self.draws: dict[tuple[Any, ...], Any] = {}
        # (the model fields an observation showed, the positions among them it left
        # unset) -> how many observations: what :attr:`compared` counts
        self._compared: Counter[tuple[tuple[str, ...], tuple[int, ...]]] = Counter()

    @property
    def compared(self) -> Counter[str]:
        """How often each model field was compared with what the implementation showed
        (a new ``Counter``)."""
        out: Counter[str] = Counter()
        for (names, unset), count in self._compared.items():
            for i, name in enumerate(names):
                if i not in unset:
                    out[name] += count
        return out

    # ---- start
    def start(self) -> Divergence | None:
        """Reset both sides to the implementation's start state; a divergence if the
        first observation already disagrees."""
        state = self.model.stepper.initial()
        self.steps = []
        if self.caps.start == "connected":
            barrier, flush = self.caps.features
            for event, params in CONNECT_PREFIX:
                if event == "backend_publish":
                    params = {"barrier": barrier, "flush": flush}
                finals = self.model.closure(state, event, params, EnvChoices())
                if not finals:
                    raise ImplementationError(f"the model refuses the connect prefix at {event}")
                state = finals[0][0]
        elif self.caps.start != "initial":
            raise ImplementationError(
                f"implementation {self.caps.name} asks to start {self.caps.start!r}; "
                "the start states are 'initial' and 'connected'"
            )
        self.candidates = [state]
        observation = self.impl.reset(self.model.sizes)
        return self._match([(state, ())], observation)

    # ---- what may happen next
    def supports(self, event: str) -> bool:
        """Whether the implementation answers ``event``."""
        if event in self.caps.refuses:
            return False
        return self.caps.events is None or event in self.caps.events

    def options(self) -> dict[str, list[dict[str, Any]]]:
        """Every event the implementation answers that the model allows in some
        candidate state, with its parameter sets (as :meth:`enabled` gives them, for
        all events at once; the lists are not to be changed by the caller)."""
        if len(self.candidates) == 1:
            table = self.model.parameter_table(self.candidates[0])
            return {e: p for e, p in table.items() if self.supports(e)}
        out: dict[str, list[dict[str, Any]]] = {}
        for state in self.candidates:
            for event, params in self.model.parameter_table(state).items():
                if not self.supports(event):
                    continue
                found = out.setdefault(event, [])
                found.extend(p for p in params if p not in found)
        return out

    def enabled(self, event: str) -> list[dict[str, Any]]:
        """Parameter sets of ``event`` the model allows in some candidate state."""
        if not self.supports(event):
            return []
        if len(self.candidates) == 1:
            return [dict(p) for p in self.model.parameters(self.candidates[0], event)]
        out: list[dict[str, Any]] = []
        for state in self.candidates:
            for params in self.model.parameters(state, event):
                if params not in out:
                    out.append(dict(params))
        return out

    # ---- one step
    def step(
        self, event: str, params: Mapping[str, Any], env: EnvChoices | None = None
    ) -> Divergence | None:
        """Apply ``event(**params)`` to both sides; a divergence or ``None``."""
        env = env or EnvChoices()
        self.steps.append(Step(event, dict(params), env))
        self.coverage.events[event] += 1
        finals: list[tuple[Any, tuple[str, ...]]] = []
        for state in self.candidates:
            finals += self.model.closure(state, event, params, env)
        if not finals:
            raise ImplementationError(
                f"{self.steps[-1].label()} is not enabled in the model; the harness only "
                "offers enabled events (a bug in the caller)"
            )
        observation = self.impl.apply(event, params, env)
        return self._match(finals, observation)

    def _match(
        self, finals: list[tuple[Any, tuple[str, ...]]], observation: Observation
    ) -> Divergence | None:
        observed = observation.fields
        plan = self.model.observation_plan(tuple(observed))
        values = plan.values(observed)
        unset = tuple(i for i, v in enumerate(values) if v is None) if None in values else ()
        self._compared[plan.names, unset] += 1
        # the candidates equal to the observation on every field it shows (one tuple
        # comparison each, as ``all(s[i] == v ...)`` field by field)
        get = plan.get
        matches = [(s, p) for s, p in finals if get(s) == values]
        if observation.fault is not None or not matches:
            return self._divergence(finals, matches, observation, plan, values)
        unique: list[Any] = []
        for state, _ in matches:
            if state not in unique:
                unique.append(state)
        for name in matches[0][1]:
            self.coverage.transitions[name] += 1
        self.candidates = unique
        for state in unique:
            model_broken = self.model.violated(state)
            if model_broken:
                raise ImplementationError(
                    f"the model itself breaks {model_broken} after "
                    f"{self.steps[-1].label() if self.steps else 'reset'}"
                )
        # A matching observation equals a model state on every compared field; with the
        # fields not compared taken from that state, the implementation's abstract state
        # is that state, whose invariants were just checked.
        return None

    def _divergence(
        self,
        finals: list[tuple[Any, tuple[str, ...]]],
        matches: list[tuple[Any, tuple[str, ...]]],
        observation: Observation,
        plan: _ObservationPlan,
        values: tuple[Any, ...],
    ) -> Divergence:
        """The divergence of ``observation`` from the model states ``finals`` (of which
        ``matches`` equal it on every field it shows: a fault then).

        The closest candidate is found in the model's representation (the observation's
        values as :meth:`_ObservationPlan.values` gives them, compared position by
        position: an enum equals its integer, a tuple the list it was shown as, so a
        field differs here exactly when its plain values differ); only what the report
        carries is made plain."""
        observed = dict(observation.fields)
        names = plan.names
        # each distinct state is encoded once
        encoded: dict[int, dict[str, Any]] = {}

        def encode(state: Any) -> dict[str, Any]:
            found = encoded.get(id(state))
            if found is None:
                found = encoded[id(state)] = encode_state(state)
            return found

        best: tuple[int, tuple[int, ...], tuple[str, ...], Any] | None = None
        for state, path in matches or finals:
            differing = tuple(
                i
                for i, (then, now) in enumerate(zip(plan.get(state), values, strict=True))
                if then != now
            )
            if best is None or (len(differing), path) < (best[0], best[2]):
                best = (len(differing), differing, path, state)
        path = best[2] if best else ()
        differences: dict[str, tuple[Any, Any]] = {}
        if best is not None and not matches:
            # only the differing fields are made plain (what encode_state would give
            # them), not the whole closest state
            expected = plan.get(best[3])
            differences = {names[i]: (plain(expected[i]), observed[names[i]]) for i in best[1]}
        return Divergence(
            kind="fault" if observation.fault is not None else "mismatch",
            steps=list(self.steps),
            observed=observed,
            candidates=_Unencoded([s for s, _ in finals], encode),  # type: ignore[arg-type]
            differences=differences,
            invariants=self._implementation_invariants(
                observation, matches or finals, plan, values
            ),
            fault=observation.fault,
            transition=path[0] if path else None,
            path=path,
        )

    def _implementation_invariants(
        self,
        observation: Observation,
        around: Iterable[tuple[Any, tuple[str, ...]]],
        plan: _ObservationPlan,
        values: tuple[Any, ...],
    ) -> list[str]:
        """Model invariants broken by the implementation's abstract state (complete
        observations only; fields not compared are taken from a model state)."""
        if not observation.complete:
            return []
        template = next(iter(around), None)
        if template is None:
            return []
        state = list(template[0])
        position = self.model.field_position
        for name, value in zip(plan.names, values, strict=True):
            if value is not None:
                state[position[name]] = value
        return self.model.violated(self.model.spec.State._make(state))


class _ObservationPlan:
    """How :meth:`LockStep._match` compares observations that show these fields.

    Attributes:
        names: the observed fields that are model fields, in the observation's order.
        get: a model state's values of ``names``, as a tuple.
        shown: every observed field's name (model fields or not).
        extra: the observed fields that are not model fields (never compared).
    """

    __slots__ = ("_kinds", "_listed", "_pick", "extra", "get", "names", "shown")

    def __init__(self, observed: tuple[str, ...], position: Mapping[str, int]) -> None:
        self.names = tuple(name for name in observed if name in position)
        self.shown = frozenset(observed)
        self.extra = tuple(name for name in observed if name not in position)
        indices = [position[name] for name in self.names]
        if len(indices) > 1:
            self.get: Any = itemgetter(*indices)
        elif indices:
            (only,) = indices
            self.get = lambda state: (state[only],)
        else:
            self.get = lambda state: ()
        names = self.names
        self._pick: Any = (
            itemgetter(*names)
            if len(names) > 1
            else lambda fields: tuple(map(fields.__getitem__, names))
        )
        # the types of the values last given (one a name) and the positions among them
        # that were lists: an implementation shows each field with the same type each
        # time, so the lists are found again only when some type changed
        self._kinds: tuple[type, ...] | None = None
        self._listed: tuple[int, ...] = ()

    def values(self, observed: Mapping[str, Any]) -> tuple[Any, ...]:
        """The observation's values of :attr:`names`, in the model's representation
        (lists become tuples).

        The values are picked in one call and their types compared with the last
        observation's (both in C); only the positions that held lists then are
        converted, and the lists are looked for again whenever a type changed."""
        got: tuple[Any, ...] = self._pick(observed)
        kinds = tuple(map(type, got))
        if kinds != self._kinds:
            self._kinds = kinds
            self._listed = tuple(i for i, v in enumerate(got) if isinstance(v, list))
        if not self._listed:
            return got
        out = list(got)
        for i in self._listed:
            out[i] = tuple(out[i])
        return tuple(out)
