"""Exploring the reference driver: every interleaving of environment events, within
bounds, run on the driver code itself (``xbdspec explore --target reference``).

The search drives the reference and the model in lock-step through
:class:`xbdspec.conformance.harness.LockStep`: a state is a snapshot of the reference
(``ReferenceImplementation.snapshot``) with the model states consistent with
everything it showed so far.  From each state it tries every environment event the
model enables there, with every parameter choice, and for the events that start bus_dma
loads every answer (at once, deferred, failed).  A step where the reference departs
from the model is a *divergence*: the search records it with the shortest program
leading to it (breadth-first), classifies it against the documented findings of the
seed (``xbdspec.conformance.findings``), writes it as a replay file, and does not
expand past it.

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

from xbdspec.conformance.contract import EnvChoices, ImplementationError, Step
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
#: where the search stops when no --max-states is given: each state is a deep copy of
#: the simulated machine, so the reference explores about 10-20 states a second
REFERENCE_MAX_STATES = 1_500


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
    """What exploring the reference found."""

    sizes: Sizes
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0
    complete: bool = True
    violations: dict[str, ReferenceViolation] = field(default_factory=dict)
    implementation: str = "reference"

    def as_json(self) -> dict[str, Any]:
        """The object ``xbdspec explore --target reference --json`` prints."""
        return {
            "target": self.implementation,
            "sizes": dataclasses.asdict(self.sizes),
            "complete": self.complete,
            "states": self.states,
            "transitions": self.transitions,
            "depth": self.depth,
            "seconds": round(self.seconds, 3),
            "states_per_second": round(self.states / self.seconds) if self.seconds else 0,
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
) -> ReferenceReport:
    """Breadth-first exploration of the reference against the model.

    With ``fixes`` (the ``reference-fixed`` profile: ``Fixes.all()``) the reference runs
    with them and no divergence counts as a known finding of the seed."""
    sizes = sizes or DEFAULT_REFERENCE_SIZES
    report = ReferenceReport(sizes)
    start = time.perf_counter()
    impl = (
        ReferenceImplementation()
        if fixes is None
        else ReferenceImplementation(fixes, name=FIXED_PROFILE)
    )
    report.implementation = impl.name
    lock = LockStep(impl, sizes)
    first = lock.start()
    if first is not None:
        _record(report, first, [], replay_dir)
        report.seconds = time.perf_counter() - start
        return report
    root = _Node(impl.snapshot(), list(lock.candidates), [])
    seen: set[Hashable] = {(frozenset(lock.candidates), _frozen(dict(impl.observe().fields)))}
    frontier: deque[tuple[_Node, int]] = deque([(root, 0)])
    while frontier:
        node, depth = frontier.popleft()
        report.depth = max(report.depth, depth)
        lock.candidates = list(node.candidates)
        options = list(_steps_from(lock))
        for event, params, env in options:
            impl.restore(node.snapshot)
            lock.candidates = list(node.candidates)
            lock.steps = list(node.steps)
            report.transitions += 1
            try:
                divergence = lock.step(event, params, env)
            except ImplementationError as exc:
                _record_error(report, str(exc), list(lock.steps), replay_dir)
                continue
            if divergence is not None:
                _record(report, divergence, list(lock.steps), replay_dir)
                continue
            key = (frozenset(lock.candidates), _frozen(dict(impl.observe().fields)))
            if key in seen:
                continue
            if len(seen) >= max_states:
                report.complete = False
                continue
            seen.add(key)
            frontier.append(
                (_Node(impl.snapshot(), list(lock.candidates), list(lock.steps)), depth + 1)
            )
        report.states = len(seen)
        if progress is not None:
            progress(report, len(frontier))
    report.states = len(seen)
    report.seconds = time.perf_counter() - start
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
