"""What a check found: records, their JSON form and their text form.

Verdicts, per device, from worst to best.  Against the protocol model (the default):
``violation`` (the log did something the headers do not allow; the first such commit
is reported and the device is not checked further), ``unverifiable`` (a line that
matters was cut or refused, so the rest could only be guessed; checking stops there),
``tolerated`` (a named deviation real peers accept), ``conforms``.  Against the FreeBSD
model (``--frontend freebsd``): ``divergent``, ``unverifiable``, ``outside-model`` (a
behaviour ``blkif.h`` allows but the FreeBSD model does not), ``valid``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERDICTS = ("violation", "unverifiable", "tolerated", "conforms")
FREEBSD_VERDICTS = ("divergent", "unverifiable", "outside-model", "valid")

#: Exit statuses of ``xbdspec check`` (2 is the CLI's for an input error).
EXIT_VALID = 0
EXIT_DIVERGENT = 1
EXIT_UNVERIFIABLE = 3


@dataclass(frozen=True)
class Divergence:
    """The first step of a trace the model does not allow.

    Attributes:
        line: the line of the trace where it happened (a transaction's commit line
            for writes made inside it).
        event: what the trace did there, in words or as ``event(params)``.
        allowed: what the model allowed at that point.
        reason: why it is refused (the guard, or the invariant it breaks).
        state: the model state (or, for a log, the states consistent with it).
    """

    line: int
    event: str
    allowed: list[str]
    reason: str
    state: Any

    def as_json(self) -> dict[str, Any]:
        """The ``first_divergence`` object of ``--json``."""
        return {
            "line": self.line,
            "event": self.event,
            "allowed": self.allowed,
            "reason": self.reason,
            "state": self.state,
        }


@dataclass(frozen=True)
class Finding:
    """A line that was not a divergence but matters: a known gap, an unverifiable write."""

    line: int
    kind: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "kind": self.kind, "message": self.message}


@dataclass
class DeviceReport:
    """One device (a JSONL trace is one device: the model itself).

    Attributes:
        name: ``vbd 768 of domain 5`` or ``model``.
        final: the final state: the observed values, and what the model was in.
        first_divergence, unverifiable: the first of each, if any.
        gaps: the known gaps met (bounded).
        observations: the relevant writes checked.
        lifecycles: how many times the device was created (a detach and re-attach of
            the same virtual device makes a second).
        joined_at: the line of the first state write when the log starts in the middle
            of the device's handshake (checked from every model state agreeing with it).
    """

    name: str
    paths: dict[str, str] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    first_divergence: Divergence | None = None
    unverifiable: Finding | None = None
    gaps: list[Finding] = field(default_factory=list)
    observations: int = 0
    lifecycles: int = 0
    joined_at: int | None = None
    levels: str = "freebsd"

    @property
    def verdict(self) -> str:
        """Against the protocol model: ``violation``, ``unverifiable``, ``tolerated``
        (a named deviation) or ``conforms``; against the FreeBSD model (``--frontend
        freebsd``): ``divergent``, ``unverifiable``, ``outside-model`` or ``valid``."""
        protocol = self.levels == "protocol"
        if self.first_divergence is not None:
            return "violation" if protocol else "divergent"
        if self.unverifiable is not None:
            return "unverifiable"
        if self.gaps:
            return "tolerated" if protocol else "outside-model"
        return "conforms" if protocol else "valid"

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.name,
            "paths": self.paths,
            "verdict": self.verdict,
            "final": self.final,
            "first_divergence": None
            if self.first_divergence is None
            else self.first_divergence.as_json(),
            "unverifiable": None if self.unverifiable is None else self.unverifiable.as_json(),
            "gaps": [g.as_json() for g in self.gaps],
            "observations": self.observations,
            "lifecycles": self.lifecycles,
            "joined_mid_handshake_at": self.joined_at,
            "checked_against": self.levels,
        }


def _state_lines(label: str, state: Any) -> list[str]:
    """A model state as the text report shows it: ``field=value, ...`` (no Python
    ``repr``); several states consistent with a log, one line each."""
    from xbdspec.output import plain

    if isinstance(state, list) and len(state) > 1 and all(isinstance(s, dict) for s in state):
        return [f"{label}: one of {len(state)} states:"] + [
            f"{' ' * (len(label) - len(label.lstrip()) + 2)}{plain(s)}" for s in state
        ]
    if isinstance(state, list) and len(state) == 1:
        state = state[0]
    return [f"{label}: {plain(state)}"]


@dataclass
class CheckResult:
    """The whole check.

    Attributes:
        source: the trace's file name.
        format: ``jsonl`` or ``oxenstored``.
        events: the events (JSONL) or log lines (oxenstored) read.
        devices: one report per device seen.
        notes: findings that belong to no device (a cut line that may concern a vbd).
        seconds: the wall time of the check.
    """

    source: str
    format: str
    events: int = 0
    devices: list[DeviceReport] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    #: where a malformed line stopped the check (its verdicts are those reached before)
    stopped_at: str = ""

    @property
    def first_divergence(self) -> Divergence | None:
        found = [d.first_divergence for d in self.devices if d.first_divergence is not None]
        return min(found, key=lambda d: d.line) if found else None

    @property
    def valid(self) -> bool:
        """No divergence and nothing unverifiable."""
        passing = ("valid", "outside-model", "conforms", "tolerated")
        return (
            all(d.verdict in passing for d in self.devices)
            and not self.notes
            and not self.stopped_at
        )

    @property
    def exit_code(self) -> int:
        if self.first_divergence is not None:
            return EXIT_DIVERGENT
        return EXIT_VALID if self.valid else EXIT_UNVERIFIABLE

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` document."""
        first = self.first_divergence
        return {
            "source": self.source,
            "format": self.format,
            "events": self.events,
            "valid": self.valid,
            "first_divergence": None if first is None else first.as_json(),
            "devices": [d.as_json() for d in self.devices],
            "notes": [n.as_json() for n in self.notes],
            "stopped_at": self.stopped_at or None,
            "seconds": round(self.seconds, 6),
        }

    def render(self) -> str:
        """The human report."""
        lines = [
            f"{self.source}: {self.events} {'events' if self.format == 'jsonl' else 'lines'} "
            f"({self.format}), {len(self.devices)} device(s), {self.seconds:.3f} s"
        ]
        for d in self.devices:
            final = ", ".join(f"{k}={v}" for k, v in d.final.items() if k != "model")
            lines.append(f"  {d.name}: {d.verdict}" + (f" ({final})" if final else ""))
            if d.joined_at is not None:
                lines.append(
                    f"    line {d.joined_at}: the log starts in the middle of this "
                    "device's handshake; checked from every model state agreeing with it"
                )
            for g in d.gaps:
                lines.append(f"    line {g.line}: {g.kind}: {g.message}")
            if d.unverifiable is not None:
                u = d.unverifiable
                lines.append(f"    line {u.line}: unverifiable: {u.message}")
            if d.first_divergence is not None:
                v = d.first_divergence
                kind = "violation" if d.levels == "protocol" else "divergence"
                lines.append(f"    line {v.line}: {kind}: {v.event}")
                lines.append(f"      why: {v.reason}")
                if d.levels != "protocol":
                    lines.append(
                        "      the model allowed: "
                        + ("; ".join(v.allowed) if v.allowed else "nothing")
                    )
                lines += _state_lines(
                    f"      {'protocol' if d.levels == 'protocol' else 'model'} state", v.state
                )
        for n in self.notes:
            lines.append(f"  line {n.line}: {n.kind}: {n.message}")
        protocol = any(d.levels == "protocol" for d in self.devices)
        if self.stopped_at:
            lines.append(
                f"  STOPPED at {self.stopped_at} by a malformed line: the verdicts above are "
                "those reached before it"
            )
            return "\n".join(lines)
        lines.append(
            ("conforms" if protocol else "valid")
            if self.valid
            else (
                ("VIOLATION" if protocol else "DIVERGENT")
                if self.first_divergence is not None
                else "UNVERIFIABLE"
            )
        )
        return "\n".join(lines)
