"""Exploring the reference driver: every interleaving of environment events, within
bounds, run on the driver code itself (``xbdspec explore --target reference``).

The search drives the reference and the model in lock-step through
:class:`xbdspec.conformance.harness.LockStep`: a state is a snapshot of the reference
(:class:`StructuralSnapshots`: every object of the simulated machine with its state,
:mod:`xbdspec.explore.snapshots`; the back end's RAM disk by the pages written to it)
with the model states consistent with everything it showed so far.  From each state it
tries every environment event the model enables there, with every parameter choice, and
for the events that start bus_dma loads every answer (at once, deferred, failed).  A
step where the reference departs from the model is a *divergence*: the search records
it with the shortest program leading to it (breadth-first), classifies it against the
documented findings of the seed (``xbdspec.conformance.findings``), writes it as a
replay file, and does not expand past it.

Speed (docs/explorer.md, "The reference target"): a restore writes the objects' states
back into the same objects (some 50 microseconds, the deep copy's was five
milliseconds) and a snapshot after a restore walks only what changed; a load answer's
step is counted without being run when the first answer's run made no load and the
model's internal steps do not depend on the answer either (:func:`_same_as_default`);
the state key is the candidates the step's observation left (:func:`_state_key`); the
oldest generation of the garbage collector is spared during the search
(:func:`xbdspec.gcpolicy.old_objects_spared`).

Two states are the same when the reference shows the same abstract state (the
refinement mapping of ``docs/conformance.md``) and the same model states are
consistent with it: what the reference keeps beyond its abstract state (grant
numbers, data bytes) is not distinguished.  Commands are not permuted: the
reference's choice of command is part of what it shows.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbdspec.conformance.contract import EnvChoices, ImplementationError, Observation, Step
from xbdspec.conformance.findings import FIXED_PROFILE, classify
from xbdspec.conformance.harness import Divergence, LockStep
from xbdspec.conformance.reference_adapter import ReferenceImplementation, reference_sizes
from xbdspec.conformance.replay import dumps
from xbdspec.gcpolicy import old_objects_spared
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import Dma
from xbdspec.reference.platform import Fixes

from .snapshots import PAGE_SHIFT, PageTrackedBuffer, Snapshot, Unsupported, take

#: events that may run xbd_startio (and so start bus_dma loads): each is tried with
#: every answer of the first load
LOAD_EVENTS = frozenset(
    {
        "strategy",
        "interrupt",
        "grants_returned",
        "resume",
        "backend_watch",
        "dma_callback",
        "dma_callback_error",
    }
)
ANSWERS = (EnvChoices(), EnvChoices((Dma.DEFERRED,)), EnvChoices((Dma.FAILED,)))

#: the reference's sizes when none are given: the conformance sizes with two bios
DEFAULT_REFERENCE_SIZES = dataclasses.replace(reference_sizes(), bios=2)
#: where the search stops when no --max-states is given
REFERENCE_MAX_STATES = 1_500

#: a buffer at least this large (the back end's RAM disk: 8 MiB) is snapshotted by the
#: pages written to it, not copied whole
LARGE_BUFFER = 1 << 16


class StructuralSnapshots:
    """Snapshots of a :class:`ReferenceImplementation` without deep copies.

    ``ReferenceImplementation.snapshot`` deep-copies the whole run, the back end's
    8 MiB RAM disk included: about 5 ms a snapshot and as much a restore, which made
    the search some 15-25 states a second.  Here a snapshot is a
    :class:`xbdspec.explore.snapshots.Snapshot` of the implementation's attributes:
    every mutable object of the simulated machine (some 200 at depth 8) with a
    shallow copy of its state, and the back end's disk by its written pages (the disk
    is replaced, once, by a :class:`PageTrackedBuffer` of the same content, which the
    back end keeps writing into: it only ever assigns slices of it).  A restore writes
    each state back into the same objects: nothing is rebuilt, so nothing is left to
    the garbage collector either.  What the walk cannot restore by its state (a
    closure registered as a callback, say) falls back to the implementation's own
    deep copy for that snapshot.
    """

    def __init__(self, impl: ReferenceImplementation) -> None:
        self.impl = impl
        self.fallbacks = 0
        self._restored: Snapshot | None = None

    def _disk(self) -> None:
        """Make the back end's disk a :class:`PageTrackedBuffer` (the first time)."""
        backend: Any = getattr(getattr(self.impl, "platform", None), "backend", None)
        disk = getattr(backend, "disk", None)
        if type(disk) is bytearray and len(disk) >= LARGE_BUFFER:
            tracked = PageTrackedBuffer(len(disk))
            page, zero = 1 << PAGE_SHIFT, bytes(1 << PAGE_SHIFT)
            view = memoryview(disk)
            for start in range(0, len(disk), page):  # only the pages already written
                chunk = view[start : start + page]
                if chunk != zero[: len(chunk)]:
                    tracked[start : start + len(chunk)] = chunk
            backend.disk = tracked

    def snapshot(self) -> object:
        """The implementation's state now (walking only what changed since the
        snapshot last restored, when there is one: :func:`take`'s ``base``)."""
        self._disk()
        try:
            return take(self.impl.__dict__, self._restored)
        except Unsupported:
            self.fallbacks += 1
            self._restored = None
            return self.impl.snapshot()

    def restore(self, snapshot: object) -> None:
        """Return to ``snapshot`` (it stays usable)."""
        if isinstance(snapshot, Snapshot):
            snapshot.restore()
            self._restored = snapshot
        else:
            self.impl.restore(snapshot)
            self._restored = None


class DeepCopySnapshots:
    """The implementation's own snapshots (deep copies): what
    :class:`StructuralSnapshots` is measured and tested against."""

    def __init__(self, impl: ReferenceImplementation) -> None:
        self.impl = impl

    def snapshot(self) -> object:
        """A deep copy of the run."""
        return self.impl.snapshot()

    def restore(self, snapshot: object) -> None:
        """Back to the deep copy (which stays usable)."""
        self.impl.restore(snapshot)


@dataclass
class _Node:
    snapshot: object
    candidates: list[Any]
    steps: list[Step]


@dataclass
class ReferenceViolation:
    """The first (shortest) program reaching one kind of departure from the model.

    Attributes:
        property: the finding's name, or what was broken for a new divergence.
        known: whether a documented finding of the seed explains it.
        steps: the environment events, from the start.
        detail: the harness's report of the divergence.
        replay: the replay file written, if any.
    """

    property: str
    known: bool
    steps: list[Step]
    detail: str
    replay: Path | None = None


@dataclass
class ReferenceReport:
    """What exploring the reference found.

    Attributes:
        states, transitions, depth: the search's figures (a load answer whose step was
            counted without being run, ``answers_reused`` of them, is a transition).
        seconds, cpu_seconds: wall-clock and processor time of the search.
        complete: no state was left out for ``max_states`` (and no Ctrl-C stopped it).
        max_states: the state bound the search ran under.
        interrupted: Ctrl-C stopped the search; the figures are those reached by then.
        violations: the first program reaching each kind of departure.
    """

    sizes: Sizes
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0
    complete: bool = True
    violations: dict[str, ReferenceViolation] = field(default_factory=dict)
    implementation: str = "reference"
    answers_reused: int = 0
    cpu_seconds: float = 0.0
    max_states: int = 0
    interrupted: bool = False

    def as_json(self) -> dict[str, Any]:
        """The object ``xbdspec explore --target reference --json`` prints."""
        return {
            "target": self.implementation,
            "sizes": dataclasses.asdict(self.sizes),
            "complete": self.complete,
            "max_states": self.max_states,
            "interrupted": self.interrupted,
            "states": self.states,
            "transitions": self.transitions,
            "depth": self.depth,
            "seconds": round(self.seconds, 3),
            "states_per_second": round(self.states / self.seconds) if self.seconds else 0,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "states_per_cpu_second": (
                round(self.states / self.cpu_seconds) if self.cpu_seconds else 0
            ),
            "answers_reused": self.answers_reused,
            "violations": [
                {
                    "property": v.property,
                    "kind": "known-finding" if v.known else "divergence",
                    "known": v.known,
                    "trace_length": len(v.steps),
                    "events": [s.label() for s in v.steps],
                    "replay": str(v.replay) if v.replay else None,
                }
                for v in self.violations.values()
            ],
        }

    @property
    def new(self) -> list[ReferenceViolation]:
        """The departures no documented finding explains."""
        return [v for v in self.violations.values() if not v.known]


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value  # type: ignore[no-any-return]


class _Remembering:
    """The implementation as the lock-step sees it, keeping the last observation
    ``apply`` returned (the search's state key), so that it is not abstracted twice."""

    def __init__(self, impl: ReferenceImplementation) -> None:
        self._impl = impl
        self.last: Observation = Observation(fields={})

    def apply(self, event: str, params: Any, env: EnvChoices) -> Observation:
        self.last = self._impl.apply(event, params, env)
        return self.last

    def __getattr__(self, name: str) -> Any:
        return getattr(self._impl, name)


def _state_key(lock: LockStep, fields: Any) -> Hashable:
    """The search's key of the state the reference shows with ``fields``, once the
    lock step matched them: the candidates, the names of the fields shown, and the
    values of those that are not model fields.

    This is the same relation as comparing the candidates and every field's value:
    the candidates are the model states equal to the observation on every model
    field it shows (:meth:`LockStep._match`), so two observations with the same
    candidates and the same names agree on those fields already."""
    plan = lock.model.observation_plan(tuple(fields))
    extra = tuple(sorted((name, _frozen(fields[name])) for name in plan.extra))
    return (frozenset(lock.candidates), plan.shown, extra)


def _same_as_default(
    lock: LockStep,
    node: _Node,
    default: tuple[str, dict[str, Any], bool] | None,
    event: str,
    params: dict[str, Any],
    env: EnvChoices,
) -> bool:
    """Whether running ``event(**params)`` from ``node`` with the load answers ``env``
    would repeat the run with the first answer, which was just made: the reference made
    no bus_dma load in that run (an answer is read only by a load, so its run with any
    answer is the same), and for every candidate the model's closure with ``env`` is
    the one with the first answer (it is, without computing it, when no internal step
    that takes an answer was enabled on the first answer's way:
    :meth:`ModelSide.answers_matter`).  Then both sides are where the first answer took
    them, and the step is counted without being run again."""
    if default is None or default[0] != event or default[1] != params or not default[2]:
        return False
    first, model = ANSWERS[0], lock.model
    return all(
        not model.answers_matter(state, event, params, first)
        or model.closure(state, event, params, env) == model.closure(state, event, params, first)
        for state in node.candidates
    )


def _steps_from(lock: LockStep) -> Iterator[tuple[str, dict[str, Any], EnvChoices]]:
    """Every step to try from the lock step's candidates: each environment event the
    model enables, in declaration order, with each parameter set (as
    :meth:`LockStep.enabled` gives them, read from :meth:`LockStep.options`' table of
    all events at once; not to be changed) and, for a load event, each answer."""
    table = lock.options()
    for event in lock.model.environment_events:
        for params in table.get(event, ()):
            for env in ANSWERS if event in LOAD_EVENTS else ANSWERS[:1]:
                yield event, params, env


def explore_reference(
    sizes: Sizes | None = None,
    *,
    max_states: int = REFERENCE_MAX_STATES,
    replay_dir: Path | None = None,
    progress: Callable[[ReferenceReport, int], None] | None = None,
    fixes: Fixes | None = None,
    structural: bool = True,
    reuse_answers: bool = True,
) -> ReferenceReport:
    """Breadth-first exploration of the reference against the model.

    With ``fixes`` (the ``reference-fixed`` profile: ``Fixes.all()``) the reference runs
    with them and no divergence counts as a known finding of the seed.

    ``structural`` (the default) snapshots with :class:`StructuralSnapshots`; without
    it, with the implementation's own deep copies.  ``reuse_answers`` (the default)
    counts a load answer's step without running it when it would repeat the first
    answer's (:func:`_same_as_default`).  Both change the speed only: the tests and
    the benchmark compare the figures with both off."""
    sizes = sizes or DEFAULT_REFERENCE_SIZES
    report = ReferenceReport(sizes, max_states=max_states)
    start = time.perf_counter()
    cpu = time.process_time()
    impl = (
        ReferenceImplementation()
        if fixes is None
        else ReferenceImplementation(fixes, name=FIXED_PROFILE)
    )
    report.implementation = impl.name
    watched = _Remembering(impl)
    lock = LockStep(watched, sizes)
    first = lock.start()
    if first is not None:
        _record(report, first, [], replay_dir)
        report.seconds = time.perf_counter() - start
        report.cpu_seconds = time.process_time() - cpu
        return report
    snapshots: StructuralSnapshots | DeepCopySnapshots = (
        StructuralSnapshots(impl) if structural else DeepCopySnapshots(impl)
    )
    root = _Node(snapshots.snapshot(), list(lock.candidates), [])
    seen: set[Hashable] = {_state_key(lock, impl.observe().fields)}
    frontier: deque[tuple[_Node, int]] = deque([(root, 0)])
    try:
        with old_objects_spared():
            while frontier:
                node, depth = frontier.popleft()
                report.depth = max(report.depth, depth)
                lock.candidates = list(node.candidates)
                options = list(_steps_from(lock))
                # the first answer's run of the event last tried: (event, params, no load made)
                default: tuple[str, dict[str, Any], bool] | None = None
                for event, params, env in options:
                    report.transitions += 1
                    if (
                        reuse_answers
                        and env.dma
                        and _same_as_default(lock, node, default, event, params, env)
                    ):
                        report.answers_reused += 1
                        continue
                    snapshots.restore(node.snapshot)
                    lock.candidates = list(node.candidates)
                    lock.steps = list(node.steps)
                    loads = impl.platform.busdma.loads if impl.platform is not None else -1
                    try:
                        divergence = lock.step(event, params, env)
                    except ImplementationError as exc:
                        default = None
                        _record_error(report, str(exc), list(lock.steps), replay_dir)
                        continue
                    if not env.dma:
                        unloaded = impl.platform is not None and impl.platform.busdma.loads == loads
                        default = (event, params, unloaded)
                    if divergence is not None:
                        _record(report, divergence, list(lock.steps), replay_dir)
                        continue
                    # the observation the step just made (apply's), not a second abstraction
                    key = _state_key(lock, watched.last.fields)
                    if key in seen:
                        continue
                    if len(seen) >= max_states:
                        report.complete = False
                        continue
                    seen.add(key)
                    frontier.append(
                        (
                            _Node(snapshots.snapshot(), list(lock.candidates), list(lock.steps)),
                            depth + 1,
                        )
                    )
                report.states = len(seen)
                if progress is not None:
                    progress(report, len(frontier))
    except KeyboardInterrupt:
        # Ctrl-C: what was found so far is the report (its replays are written)
        report.interrupted = True
        report.complete = False
    report.states = len(seen)
    report.seconds = time.perf_counter() - start
    report.cpu_seconds = time.process_time() - cpu
    return report


def _record(
    report: ReferenceReport, divergence: Divergence, steps: list[Step], replay_dir: Path | None
) -> None:
    finding = classify(divergence, report.implementation)
    name = finding.name if finding is not None else f"new-{divergence.kind}"
    if name in report.violations:
        return
    violation = ReferenceViolation(name, finding is not None, steps, divergence.report())
    if replay_dir is not None:
        replay_dir.mkdir(parents=True, exist_ok=True)
        violation.replay = replay_dir / f"{name}.jsonl"
        violation.replay.write_text(dumps(report.sizes, steps))
    report.violations[name] = violation


def _record_error(
    report: ReferenceReport, message: str, steps: list[Step], replay_dir: Path | None
) -> None:
    name = "harness-error"
    if name not in report.violations:
        report.violations[name] = ReferenceViolation(name, False, steps, message)
