"""What an obligation is and what proving it gives: plain records, no solver.

Each obligation says what it proves (``name``, ``statement``), how (``kind``), for
which sizes or values (``bound``), and what the project expects (``expected``, with
the finding a refutation documents).  Running it gives an :class:`Outcome`:
proved, refuted with a counterexample a person can read and a program can replay,
or unknown with the reason and the time.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Result(enum.Enum):
    """Three-way: never a bool."""

    PROVED = "proved"
    REFUTED = "refuted"
    UNKNOWN = "unknown"


@dataclass
class Outcome:
    """The result of one obligation.

    Attributes:
        result: proved, refuted or unknown.
        seconds: wall time spent.
        detail: one line for the table (the transition and invariant that failed, the
            depth reached, the reason for unknown).
        counterexample: readable lines (events and state changes step by step).
        replay: the same counterexample as JSON a program can replay.
    """

    result: Result
    seconds: float
    detail: str = ""
    counterexample: list[str] = field(default_factory=list)
    replay: dict[str, Any] | None = None


@dataclass(frozen=True)
class Obligation:
    """One claim the prover discharges.

    Attributes:
        name: named for what it proves (``interrupt_preserves_invariants``).
        kind: ``initial``, ``inductive``, ``step``, ``determinism``, ``live-guard``,
            ``falsifiable``, ``bounded``, ``k-induction`` or ``arithmetic``.
        bound: the sizes or values it covers, in words.
        statement: what it says.
        run: discharges it.
        expected: the result the project expects.
        finding: for an expected refutation, the finding it documents.
    """

    name: str
    kind: str
    bound: str
    statement: str
    run: Callable[[], Outcome]
    expected: Result = Result.PROVED
    finding: str | None = None
