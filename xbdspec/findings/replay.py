"""Each finding's minimal counterexample, replayed on the reference.

A finding's replay is one of two kinds:

* a **program** (``replays/<finding>.jsonl``, the conformance replay format of
  :mod:`xbdspec.conformance.replay`): environment events run in lock-step with the model
  (:class:`~xbdspec.conformance.harness.LockStep`); the violation is the divergence, which
  the conformance classifier must name as this finding;
* a **scenario** (:mod:`xbdspec.findings.scenario`): calls on the simulated platform, for
  findings outside the model's vocabulary (hostile xenstore values, allocation failures).

:func:`replay` runs either with the given :class:`~xbdspec.reference.Fixes`: on the seed's
behaviour (``Fixes()``) it must show the violation; with the finding's fix on it must run
clean, every event applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xbdspec.conformance.contract import Step
from xbdspec.conformance.findings import classify
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import run_program as lock_step_program
from xbdspec.conformance.reference_adapter import ReferenceImplementation
from xbdspec.conformance.replay import loads
from xbdspec.model.state import Sizes
from xbdspec.reference.platform import Fixes

from .scenario import SCENARIOS, run_scenario

#: the programs of findings found against the model
REPLAYS = Path(__file__).resolve().parent / "replays"
#: programs of rejected candidates: they must run clean on the seed's behaviour
REJECTED_REPLAYS = REPLAYS / "rejected"


@dataclass(frozen=True)
class Outcome:
    """What one replay did.

    Attributes:
        finding: the finding replayed.
        kind: ``"program"`` or ``"scenario"``.
        fixes: the fixes that were on.
        steps: the counterexample's events, readable, in order.
        violation: what went wrong (``None``: clean).
        classified_as: for a program, the finding the classifier named (``None``: none).
    """

    finding: str
    kind: Literal["program", "scenario"]
    fixes: tuple[str, ...]
    steps: tuple[str, ...]
    violation: str | None
    classified_as: str | None = None

    @property
    def clean(self) -> bool:
        return self.violation is None


def program_path(finding: str) -> Path:
    """The program file of ``finding`` (it may not exist: then it has a scenario)."""
    return REPLAYS / f"{finding}.jsonl"


def kind_of(finding: str) -> Literal["program", "scenario"] | None:
    """How ``finding`` is replayed, or ``None`` when it has no replay at all."""
    if program_path(finding).exists():
        return "program"
    if finding in SCENARIOS:
        return "scenario"
    return None


def load_program(path: Path) -> tuple[Sizes, list[Step]]:
    """A program file's sizes and events (errors name the file and line)."""
    return loads(path.read_text(encoding="utf-8"), str(path))


def run_program(finding: str, path: Path, fixes: Fixes) -> Outcome:
    """Run a program in lock-step with the model on the reference with ``fixes``."""
    sizes, steps = load_program(path)
    lock = LockStep(ReferenceImplementation(fixes), sizes)
    labels = tuple(s.label() for s in steps)
    violation: str | None = None
    classified: str | None = None
    try:
        divergence = lock_step_program(lock.impl, lock, steps)
    finally:
        lock.impl.close()
    if divergence is not None:
        found = classify(divergence)
        classified = found.name if found else None
        violation = _describe(divergence.report())
    elif len(lock.steps) < len(steps):
        # the program stopped at an event the model does not enable: it is not clean
        missed = steps[len(lock.steps)]
        violation = f"event {len(lock.steps) + 1} ({missed.label()}) is not enabled in the model"
    return Outcome(finding, "program", fixes.enabled(), labels, violation, classified)


def _describe(report: str) -> str:
    """The divergence report without its program listing (the steps say it)."""
    lines = report.splitlines()
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.strip() == "program:":
            skipping = True
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept)


def replay(finding: str, fixes: Fixes) -> Outcome:
    """Replay ``finding``'s counterexample on the reference with ``fixes``.

    Raises:
        KeyError: ``finding`` has no replay.
    """
    kind = kind_of(finding)
    if kind == "program":
        return run_program(finding, program_path(finding), fixes)
    if kind == "scenario":
        run = run_scenario(finding, fixes)
        violation = "; ".join(run.violations) if run.violations else None
        return Outcome(finding, "scenario", fixes.enabled(), tuple(run.steps), violation)
    raise KeyError(f"finding {finding!r} has no replay (no program, no scenario)")
