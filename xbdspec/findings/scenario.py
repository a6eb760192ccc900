"""Reference-level replays: a finding's minimal counterexample as calls on the simulated
platform.

Some findings lie outside the model's vocabulary (a hostile ``max-ring-page-order``, a
response id past the shadow array, a grant leaked per resume); their replay drives the
reference directly.  A scenario is a function of a :class:`Run`: it builds the platform
with the fixes under test (:meth:`Run.platform`), narrates each event (:meth:`Run.step`)
and states what the protocol requires (:meth:`Run.expect`).  A driver fault
(:class:`~xbdspec.reference.faults.DriverFault`: panic, failed ``KASSERT``, undefined
behaviour, hang) ends the run and is its violation.

A scenario shows the finding on the seed's behaviour (``Fixes()``) and runs clean with the
finding's fix on; :mod:`xbdspec.findings.replay` checks both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xbdspec.reference.faults import DriverFault
from xbdspec.reference.platform import Fixes, Platform


@dataclass
class Run:
    """One execution of a scenario.

    Attributes:
        fixes: the fixes the reference runs with.
        steps: the events so far, in words, in order.
        violations: what the protocol required and did not happen (empty: clean).
    """

    fixes: Fixes
    steps: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def platform(self, **kwargs: Any) -> Platform:
        """A fresh simulated platform running with this run's fixes."""
        return Platform(fixes=self.fixes, **kwargs)

    def step(self, text: str) -> None:
        """Record an event of the counterexample (what the test does next)."""
        self.steps.append(text)

    def expect(self, condition: bool, requirement: str) -> None:
        """Record ``requirement`` as violated unless ``condition`` holds."""
        if not condition:
            self.violations.append(requirement)


ScenarioFunction = Callable[[Run], None]

#: finding name -> its reference-level replay
SCENARIOS: dict[str, ScenarioFunction] = {}


def scenario(finding: str) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register the decorated function as the replay of ``finding``."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        if finding in SCENARIOS:
            raise ValueError(f"finding {finding!r} has two scenarios")
        SCENARIOS[finding] = function
        return function

    return register


def run_scenario(finding: str, fixes: Fixes) -> Run:
    """Run the scenario of ``finding`` with ``fixes``; a driver fault is its violation."""
    run = Run(fixes)
    try:
        SCENARIOS[finding](run)
    except DriverFault as fault:
        run.violations.append(f"{type(fault).__name__} in {fault}")
    return run
