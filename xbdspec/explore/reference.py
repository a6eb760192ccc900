"""Exploring the reference driver: every interleaving of environment events, within
bounds, run on the driver code itself (``xbdspec explore --target reference``).

The search drives the reference and the model in lock-step through
:class:`xbdspec.conformance.harness.LockStep`: a state is a snapshot of the reference
(:class:`StructuralSnapshots`: its attributes pickled, the back end's RAM disk by the
pages written to it) with the model states consistent with everything it showed so
far.  From each state it tries every environment event the
model enables there, with every parameter choice, and for the events that start bus_dma
loads every answer (at once, deferred, failed).  A step where the reference departs
from the model is a *divergence*: the search records it with the shortest program
leading to it (breadth-first), classifies it against the documented findings of the
seed (``xbdspec.conformance.findings``), writes it as a replay file, and does not
expand past it.

Speed (docs/explorer.md, "The reference target"): a snapshot and a restore cost about
a quarter of a millisecond instead of the deep copy's five; a load answer's step is
counted without being run when the first answer's run made no load and the model's
internal steps do not depend on the answer either (:func:`_same_as_default`); the
state key reuses the observation the step made.

Two states are the same when the reference shows the same abstract state (the
refinement mapping of ``docs/conformance.md``) and the same model states are
consistent with it: what the reference keeps beyond its abstract state (grant
numbers, data bytes) is not distinguished.  Commands are not permuted: the
reference's choice of command is part of what it shows.
"""

from __future__ import annotations

import dataclasses
import pickle
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
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import Dma
from xbdspec.reference.platform import Fixes

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
#: the pages :class:`PageTrackedBuffer` tracks
PAGE_SHIFT = 12


class PageTrackedBuffer(bytearray):
    """A ``bytearray`` that remembers which pages were ever written through item or
    slice assignment (``buf[a:b] = data``, how the back end writes its RAM disk).

    The buffer starts zeroed (as the back end's RAM disk does), so its content is
    the pages in :attr:`written` alone: a snapshot keeps those, a restore writes
    them back and zeroes the pages written since.  Writes that bypass ``__setitem__``
    (a ``memoryview`` of the buffer, ``+=``) would not be tracked: the back end makes
    none, and a test compares restored buffers with deep copies along an exploration.
    """

    __slots__ = ("written",)

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.written: set[int] = set()

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
        super().__setitem__(index, value)

    def pages(self) -> dict[int, bytes]:
        """The content of every page ever written (the others are zero)."""
        view = memoryview(self)
        return {
            page: bytes(view[page << PAGE_SHIFT : (page + 1) << PAGE_SHIFT])
            for page in self.written
        }

    def load(self, pages: dict[int, bytes]) -> None:
        """Make the content what :meth:`pages` gave."""
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


class StructuralSnapshots:
    """Snapshots of a :class:`ReferenceImplementation` without deep copies.

    ``ReferenceImplementation.snapshot`` deep-copies the whole run, the back end's
    8 MiB RAM disk included: about 5 ms a snapshot and as much a restore, which made
    the search some 15-25 states a second.  Here a snapshot is two parts:

    * the implementation's attributes pickled by the C pickler (the whole object
      graph with its sharing, without ``copy.deepcopy``'s Python call per object),
      with the back end's disk detached for the time of the dump;
    * the disk's written pages: the disk is replaced, once, by a
      :class:`PageTrackedBuffer` of the same content, which the back end keeps
      writing into (it only ever assigns slices of it).

    A restore unpickles the attributes, writes the snapshot's pages back into the one
    live disk (zeroing the pages written since) and attaches it to the unpickled back
    end.  What the pickle cannot hold (a lambda registered as a callback, say) falls
    back to the implementation's own deep copy for that snapshot.
    """

    def __init__(self, impl: ReferenceImplementation) -> None:
        self.impl = impl
        self.fallbacks = 0

    def _disk(self) -> tuple[Any, PageTrackedBuffer | None]:
        """The back end and its disk, made a :class:`PageTrackedBuffer` the first time."""
        backend: Any = getattr(getattr(self.impl, "platform", None), "backend", None)
        disk = getattr(backend, "disk", None)
        if type(disk) is PageTrackedBuffer:
            return backend, disk
        if type(disk) is bytearray and len(disk) >= LARGE_BUFFER:
            tracked = PageTrackedBuffer(len(disk))
            page, zero = 1 << PAGE_SHIFT, bytes(1 << PAGE_SHIFT)
            view = memoryview(disk)
            for start in range(0, len(disk), page):  # only the pages already written
                chunk = view[start : start + page]
                if chunk != zero[: len(chunk)]:
                    tracked[start : start + len(chunk)] = chunk
            backend.disk = tracked
            return backend, tracked
        return backend, None

    def snapshot(self) -> object:
        """The implementation's state now."""
        backend, disk = self._disk()
        if disk is None:
            backend = None
        try:
            if backend is not None:
                backend.disk = bytearray()  # detached: the pages go beside the pickle
            data = pickle.dumps(self.impl.__dict__, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            self.fallbacks += 1
            return ("deepcopy", self.impl.snapshot())
        finally:
            if backend is not None:
                backend.disk = disk
        return (data, disk.pages() if disk is not None else None, disk)

    def restore(self, snapshot: object) -> None:
        """Return to ``snapshot`` (it stays usable)."""
        assert isinstance(snapshot, tuple)
        if isinstance(snapshot[0], str):  # ("deepcopy", the implementation's own)
            self.impl.restore(snapshot[1])
            return
        data, pages, disk = snapshot
        attributes = pickle.loads(data)
        if disk is not None:
            disk.load(pages)
            attributes["platform"].backend.disk = disk
        self.impl.__dict__.update(attributes)


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


def _key(fields: Any) -> Hashable:
    """An observation's fields as a hashable key: ``(name, value)`` pairs in name order,
    lists as tuples (what :func:`_frozen` gives, without its recursion for the flat
    values an abstract state has)."""
    out = []
    for name, value in sorted(fields.items()):
        if type(value) is list:
            value = tuple(value) if all(type(v) in (int, bool) for v in value) else _frozen(value)
        elif isinstance(value, dict | tuple):
            value = _frozen(value)
        out.append((name, value))
    return tuple(out)


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
    the one with the first answer.  Then both sides are where the first answer took
    them, and the step is counted without being run again."""
    if default is None or default[0] != event or default[1] != params or not default[2]:
        return False
    first = ANSWERS[0]
    return all(
        lock.model.closure(state, event, params, env)
        == lock.model.closure(state, event, params, first)
        for state in node.candidates
    )


def _steps_from(lock: LockStep) -> Iterator[tuple[str, dict[str, Any], EnvChoices]]:
    for event in lock.model.environment_events:
        for params in lock.enabled(event):
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
    seen: set[Hashable] = {(frozenset(lock.candidates), _key(impl.observe().fields))}
    frontier: deque[tuple[_Node, int]] = deque([(root, 0)])
    try:
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
                key = (frozenset(lock.candidates), _key(watched.last.fields))
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
