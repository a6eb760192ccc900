"""The hypothesis stateful test, generated from the model's event vocabulary.

:func:`conformance_machine` builds a ``RuleBasedStateMachine`` with one rule per
environment event of the model (internal events are the implementation's business).
A rule's precondition is the model's guard: the event is enabled in some candidate
state (``Stepper.is_enabled``); its parameters are drawn from the enabled instances,
i.e. from the ``Param`` domains the guards allow; the DMA answers are drawn as well.
Hypothesis's built-in swarm testing switches rules off at random per example, which
is what brings the rare paths (single-stepping, grant shortage, deferred mappings,
suspend with queues not empty) within a short program's reach.

After every step the model and the implementation are compared and the model's
invariants are checked on both (see :class:`~xbdspec.conformance.harness.LockStep`).
A divergence that is a known finding ends the example quietly (and is counted); any
other fails the test, prints the minimal program and writes it as a replay file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import Dma

from . import replay
from .contract import EnvChoices, Implementation, Step
from .findings import classify
from .harness import Coverage, Divergence, LockStep, ModelSide
from .program import EVENT_WEIGHTS, FULL, IMMEDIATE_LOADS, Profile


@dataclass
class Tally:
    """What the examples of one stateful test met, across examples.

    Attributes:
        coverage: events and transitions fired.
        known: known finding name -> how many examples ended on it.
        examples, steps: how many examples ran and events they applied.
    """

    coverage: Coverage = field(default_factory=Coverage)
    known: dict[str, int] = field(default_factory=dict)
    examples: int = 0
    steps: int = 0


class DivergenceFound(AssertionError):
    """The implementation departed from the model in a way no known finding explains."""


def conformance_machine(
    factory: Callable[[], Implementation],
    sizes: Sizes,
    *,
    profile: Profile = FULL,
    known_ok: bool = True,
    replay_path: Path | None = None,
    tally: Tally | None = None,
    reuse: bool = False,
) -> type[RuleBasedStateMachine]:
    """A state machine driving ``factory()`` and the model for ``sizes`` in lock step.

    ``known_ok``: a known finding ends the example without failing it.  ``replay_path``:
    where a failing program is written (JSON lines, see :mod:`.replay`).  ``reuse``:
    one implementation serves every example (``reset`` between them), which saves
    starting a process per example; call ``machine.close_shared()`` when done.
    """
    counts = tally if tally is not None else Tally()
    shared: list[Implementation] = []
    # one model side for every example: building it (the compiled stepper, the instance
    # tables) costs more than a short example, and its memo tables carry across examples
    model = ModelSide(sizes)

    def obtain() -> Implementation:
        if not reuse:
            return factory()
        if not shared:
            shared.append(factory())
        return shared[0]

    dma_modes = tuple(m for m, _ in profile.dma)
    env_strategy = st.one_of(
        st.just(EnvChoices()),
        st.lists(st.sampled_from(dma_modes), min_size=1, max_size=2).map(
            lambda ms: EnvChoices(tuple(ms))
        ),
    )

    class ConformanceMachine(RuleBasedStateMachine):
        """The model and one implementation in lock step (generated; see the module)."""

        def __init__(self) -> None:
            super().__init__()
            self.impl = obtain()
            self.lock = LockStep(self.impl, sizes, model)
            self.stopped = False
            counts.examples += 1
            self._check(self.lock.start())

        def _check(self, divergence: Divergence | None) -> None:
            if divergence is None:
                return
            finding = classify(divergence, self.lock.caps.name)
            if finding is not None and known_ok:
                counts.known[finding.name] = counts.known.get(finding.name, 0) + 1
                self.stopped = True
                return
            if replay_path is not None:
                replay.write(replay_path, sizes, divergence.steps)
            where = f"\n  replay file: {replay_path}" if replay_path is not None else ""
            raise DivergenceFound(divergence.report() + where)

        def _options(self, event: str) -> list[dict[str, Any]]:
            options = self.lock.enabled(event)
            if event == "strategy":
                options = [p for p in options if p["kind"] in profile.kinds]
            return options

        def _fire(self, event: str, data: Any) -> None:
            gate = _GATES.get(event)
            if gate is not None and not data.draw(gate, label=f"{event} happens now"):
                return
            params = data.draw(st.sampled_from(self._options(event)), label=f"{event} params")
            env = (
                EnvChoices()
                if event in IMMEDIATE_LOADS
                else data.draw(env_strategy, label="dma answers")
            )
            step = Step(event, dict(params), env)
            if profile.allows is not None and not profile.allows(self.lock, step):
                return
            counts.steps += 1
            self._check(self.lock.step(step.event, step.params, step.env))
            counts.coverage.events[event] += 1

        @precondition(lambda self: self.stopped or not any(self._options(e) for e in events))
        @rule()
        def idle(self) -> None:
            """Nothing to do: a known finding ended the lock step, or no environment
            event is enabled (the device is closed for good)."""

        def teardown(self) -> None:
            counts.coverage.transitions.update(self.lock.coverage.transitions)
            if not reuse:
                self.impl.close()

        @staticmethod
        def close_shared() -> None:
            """Close the implementation shared by the examples (``reuse=True``)."""
            while shared:
                shared.pop().close()

    events = [e for e in model.environment_events if profile.events is None or e in profile.events]
    ConformanceMachine._events = events
    for event in events:
        _add_rule(ConformanceMachine, event)
    ConformanceMachine.__name__ = ConformanceMachine.__qualname__ = "ConformanceMachine"
    return ConformanceMachine


def _gate(weight: float) -> st.SearchStrategy[bool]:
    """True with probability about ``weight / 5``, shrinking towards False (skip)."""
    tenths = max(1, min(10, round(weight * 2)))
    return st.sampled_from([False] * (10 - tenths) + [True] * tenths)


#: Events rarer than the request path: each rule run fires them only sometimes, so
#: that unplugging and suspending do not end most programs before any I/O.
_GATES = {e: _gate(w) for e, w in EVENT_WEIGHTS.items() if w < 5.0}


def _add_rule(cls: type, event: str) -> None:
    def fire(self: Any, data: Any) -> None:
        self._fire(event, data)

    fire.__name__ = fire.__qualname__ = event
    fire.__doc__ = f"The environment event {event!r}, with parameters the model's guards allow."
    guarded = precondition(lambda self: not self.stopped and bool(self._options(event)))(fire)
    setattr(cls, event, rule(data=st.data())(guarded))


def rules_of(machine: type[RuleBasedStateMachine]) -> set[str]:
    """The environment events a generated machine has rules for."""
    return set(getattr(machine, "_events", []))


__all__ = ["DivergenceFound", "Dma", "Tally", "conformance_machine", "rules_of"]
