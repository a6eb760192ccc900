"""The findings: every place the seed's logic departs from the protocol, explained.

Each :class:`Finding` is one divergence the toolkit found, with its severity, the seed
functions involved, why the logic goes wrong there, how it was found, and the fix (an
opt-in field of :class:`xbdspec.reference.Fixes` with the finding's name).  Its minimal
counterexample is its replay (:mod:`xbdspec.findings.replay`): a lock-step program against
the model, or a reference-level scenario.  :data:`REJECTED` lists behaviour that looks wrong
and is not, with the reason.

``docs/findings/`` is generated from this module (``python -m xbdspec.docsgen``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(Enum):
    """How bad a finding is, worst first (the order the index sorts by)."""

    PANIC = "panic"
    UNDEFINED = "undefined behaviour"
    LOST_IO = "lost or duplicated I/O"
    HANG = "hang"
    WRONG = "wrong result"
    COSMETIC = "cosmetic"


class FoundBy(Enum):
    """The tool that found a finding first."""

    DIFFERENTIAL = "differential test against the model (xbdspec difftest)"
    EXPLORER = "exploration of the model, then the differential test (xbdspec explore)"
    PROOF = "z3 proof of the seed's arithmetic (xbdspec prove)"
    REFERENCE = "reference run with hostile or failing platform inputs"
    READING = "reading the seed, then a reference replay"


@dataclass(frozen=True)
class Finding:
    """One divergence of the seed from the protocol.

    Attributes:
        name: kebab-case; the fix field (``Fixes.<name with underscores>``), the replay
            and the page (``docs/findings/<name>.md``) are named after it.
        title: one line, what goes wrong.
        severity: see :class:`Severity`.
        seed_functions: the seed functions involved, the faulty one first.
        summary: one sentence for the index.
        explanation: why the logic goes wrong (Markdown paragraphs).
        found_by: see :class:`FoundBy`.
        how_found: how the tool found it, in a sentence or two.
        fix: what the opt-in fix changes (Markdown).
        seed_note: its row in ``docs/seed-notes.md`` (0: none).
        model_change: where the model was wrong on the way and was fixed (empty: it was not).
        proof: the proof obligation refuted by it, if one is.
    """

    name: str
    title: str
    severity: Severity
    seed_functions: tuple[str, ...]
    summary: str
    explanation: str
    found_by: FoundBy
    how_found: str
    fix: str
    seed_note: int = 0
    model_change: str = ""
    proof: str = ""

    @property
    def fix_field(self) -> str:
        """The :class:`~xbdspec.reference.Fixes` field that fixes it."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Rejected:
    """Behaviour that looked wrong, was examined, and is not a defect.

    Attributes:
        name: kebab-case.
        seed_functions: where it is.
        looks_wrong: what made it a candidate.
        why_not: why it is correct (or outside the driver's responsibility).
    """

    name: str
    seed_functions: tuple[str, ...]
    looks_wrong: str
    why_not: str


FINDINGS: tuple[Finding, ...] = ()

REJECTED: tuple[Rejected, ...] = ()

BY_NAME = {f.name: f for f in FINDINGS}
