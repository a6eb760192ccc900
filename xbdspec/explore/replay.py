"""Replay files: counterexamples as JSON lines, loaded back and re-run on the model.

Format (version 1), one JSON object per line, UTF-8:

* line 1, the header::

    {"xbdspec": "replay", "version": 1, "target": "model",
     "sizes": {"commands": 2, "bios": 2, ...}, "property": "FreezeAccounting",
     "kind": "invariant", "when_at": null, "cycle_start": null}

  This is the header of :mod:`xbdspec.conformance.replay` (``xbdspec``,
  ``version``, ``sizes``) with the explorer's fields added; ``property`` and
  ``kind`` may be absent in a plain program of events.  ``kind`` is
  ``invariant``, ``step``, ``deadlock`` or ``progress``; ``when_at``
  (progress only) counts the events before the state where ``when`` holds;
  ``cycle_start`` (a progress lasso) is the index of the first event of the cycle
  (0 = the first event line).
* every further line, one event: ``{"event": "strategy", "params": {"bio": 0,
  "kind": "READ"}}``; enum parameters by member name, booleans and integers as
  JSON values.  An optional ``"env"`` object (the implementation's environment
  choices, :mod:`xbdspec.conformance.replay`) is accepted and ignored: the model
  takes those choices as event parameters.

:func:`load_replay` validates the structure and names the offending line;
:func:`replay_on_model` runs the events on the model and says whether the
violation shows again.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xbdspec.errors import InputError, XbdspecError
from xbdspec.model.concrete import StepError, Stepper
from xbdspec.model.declaration import Spec
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes
from xbdspec.untrusted import JSONRefused, check_sizes, excerpt, load_json

from .counterexample import Counterexample
from .target import model_work_pending

FORMAT = "replay"
VERSION = 1
KINDS = ("invariant", "step", "deadlock", "progress")
#: The largest replay file read (bytes), and the most events it may hold.
MAX_BYTES = 16 << 20
MAX_EVENTS = 100_000


@dataclass(frozen=True)
class ReplayEvent:
    """One event line: the event's name, its parameters as written, its line number."""

    event: str
    params: dict[str, Any]
    line: int


@dataclass(frozen=True)
class Replay:
    """A loaded replay file."""

    source: str
    target: str
    sizes: Sizes
    property: str | None
    kind: str | None
    events: tuple[ReplayEvent, ...]
    when_at: int | None = None
    cycle_start: int | None = None


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    return value


def dumps(cx: Counterexample, sizes: Sizes, target: str = "model") -> str:
    """The replay text of ``cx``."""
    header = {
        "xbdspec": FORMAT,
        "version": VERSION,
        "target": target,
        "sizes": dataclasses.asdict(sizes),
        "property": cx.property,
        "kind": cx.kind,
        "when_at": cx.when_at,
        "cycle_start": cx.cycle_start,
    }
    lines = [json.dumps(header)]
    for step in cx.steps:
        params = {n: _encode(v) for n, v in step.instance.bindings.as_dict().items()}
        lines.append(json.dumps({"event": step.instance.transition.event, "params": params}))
    return "\n".join(lines) + "\n"


def write_replay(path: Path, cx: Counterexample, sizes: Sizes, target: str = "model") -> Path:
    """Write ``cx`` to ``path`` (parent directories are created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(cx, sizes, target), encoding="utf-8")
    return path


def _optional_index(header: dict[str, Any], key: str, where: str) -> int | None:
    value = header.get(key)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise InputError(
            where,
            f"header field {key!r} must be a non-negative integer or null, not {excerpt(value)}",
        )
    return value


def loads_replay(text: str, source: str = "<replay>") -> Replay:
    """Parse replay text; an :class:`InputError` names the line of any problem."""
    lines = text.splitlines()
    if not text.strip():
        raise InputError(f"{source}:1", "the file is empty; a replay starts with a header line")
    header = _object(lines[0], f"{source}:1")
    where = f"{source}:1"
    if header.get("xbdspec") != FORMAT or header.get("version") != VERSION:
        raise InputError(
            where,
            "not an xbdspec replay header: expected "
            f'"xbdspec": {FORMAT!r} and "version": {VERSION}',
        )
    header.setdefault("target", "model")
    header.setdefault("sizes", {})
    for key, kind, optional in (
        ("target", str, False),
        ("property", str, True),
        ("kind", str, True),
        ("sizes", dict, False),
    ):
        value = header.get(key)
        if not isinstance(value, kind) and not (optional and value is None):
            raise InputError(where, f"header field {key!r} is not a {kind.__name__}")
    if header.get("kind") is not None and header["kind"] not in KINDS:
        raise InputError(
            where, f"header field 'kind' is {excerpt(header['kind'])}; expected one of {KINDS}"
        )
    known = {f.name for f in dataclasses.fields(Sizes)}
    sizes_given = header["sizes"]
    unknown = sorted(set(sizes_given) - known)
    if unknown or not all(type(v) is int for v in sizes_given.values()):
        raise InputError(
            where,
            f"header 'sizes' must map {sorted(known)} to integers (unknown: {excerpt(unknown)})",
        )
    check_sizes(dataclasses.asdict(Sizes(**sizes_given)), f"{where} sizes")
    if len(lines) - 1 > MAX_EVENTS:
        raise InputError(
            source, f"{len(lines) - 1:,} events: a replay holds at most {MAX_EVENTS:,}"
        )
    events = []
    for number, line in enumerate(lines[1:], start=2):
        here = f"{source}:{number}"
        item = _object(line, here)
        if not {"event", "params"} <= set(item) <= {"event", "params", "env"}:
            raise InputError(
                here,
                "an event line has the keys 'event', 'params' and optionally 'env', "
                f"not {excerpt(sorted(item)[:20])}",
            )
        if not isinstance(item.get("env", {}), dict):
            raise InputError(here, "'env' must be an object")
        if not isinstance(item["event"], str) or not isinstance(item["params"], dict):
            raise InputError(here, "'event' must be a string and 'params' an object")
        for name, value in item["params"].items():
            if not isinstance(value, (bool, int, str)):
                raise InputError(
                    here,
                    f"parameter {excerpt(name)} has value {excerpt(value)}; "
                    "expected a boolean, an integer or an enum name",
                )
        events.append(ReplayEvent(item["event"], item["params"], number))
    return Replay(
        source=source,
        target=header["target"],
        sizes=Sizes(**sizes_given),
        property=header.get("property"),
        kind=header.get("kind"),
        events=tuple(events),
        when_at=_optional_index(header, "when_at", where),
        cycle_start=_optional_index(header, "cycle_start", where),
    )


def _object(line: str, where: str) -> dict[str, Any]:
    try:
        value = load_json(line, where)
    except JSONRefused as exc:
        if exc.reason != "not JSON":
            raise
        raise InputError(where, f"not valid JSON ({exc.detail})") from None
    if not isinstance(value, dict):
        raise InputError(where, f"expected a JSON object, found {type(value).__name__}")
    return value


def load_replay(path: str | Path) -> Replay:
    """Load and validate the replay file at ``path``."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(str(path), f"cannot read the replay file: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise InputError(str(path), f"longer than {MAX_BYTES >> 20} MiB: no replay is that long")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return loads_replay(text, str(path))


class ReplayError(XbdspecError):
    """A replay's events cannot be run on the model."""


@dataclass
class ReplayOutcome:
    """What re-running a replay on the model showed.

    Attributes:
        states: the states along the replay, the initial one first.
        reproduced: whether the recorded violation shows again.
        detail: a sentence saying what was checked and found.
    """

    states: list[Any]
    reproduced: bool
    detail: str


def decode_params(spec: Spec, event: ReplayEvent, source: str) -> dict[str, Any]:
    """The event's parameters as model values (enum names resolved)."""
    where = f"{source}:{event.line}"
    transitions = spec.events().get(event.event)
    if not transitions:
        raise InputError(
            where,
            f"the model has no event {excerpt(event.event)} (events: {sorted(spec.events())})",
        )
    declared = {p.name: p for p in transitions[0].params}
    if set(declared) != set(event.params):
        raise InputError(
            where,
            f"event {event.event} takes parameters {sorted(declared)}, "
            f"the line gives {sorted(event.params)}",
        )
    values = {}
    for name, given in event.params.items():
        domain = declared[name].domain_for(spec.sizes)
        for candidate in domain:
            if isinstance(given, str):
                if isinstance(candidate, enum.Enum) and candidate.name == given:
                    break
            elif type(given) is bool:
                if type(candidate) is bool and candidate == given:
                    break
            elif (
                type(candidate) is not bool
                and not isinstance(candidate, enum.Enum)
                and candidate == given
            ):
                break
        else:
            shown = [c.name if isinstance(c, enum.Enum) else c for c in domain]
            raise InputError(
                where,
                f"parameter {name[:40]}={excerpt(given)} of {event.event} is not one of {shown}",
            )
        values[name] = candidate
    return values


def replay_on_model(replay: Replay, spec: Spec | None = None) -> ReplayOutcome:
    """Run the replay's events on the model (``build_spec(replay.sizes)`` unless
    ``spec`` is given) and check the recorded violation again."""
    spec = spec or build_spec(replay.sizes)
    stepper = Stepper(spec)
    state = stepper.initial()
    states = [state]
    decoded = [(event, decode_params(spec, event, replay.source)) for event in replay.events]
    for event, params in decoded:
        try:
            _, state = stepper.step(state, event.event, **params)
        except StepError as exc:
            raise ReplayError(f"{replay.source}:{event.line}: {exc}") from None
        states.append(state)
    return _check(spec, stepper, replay, states)


def _check(spec: Spec, stepper: Stepper, replay: Replay, states: list[Any]) -> ReplayOutcome:
    final, name, k = states[-1], replay.property, spec.sizes
    if name is None or replay.kind is None:
        return ReplayOutcome(states, False, "the replay names no property to check")
    if replay.kind == "invariant":
        hit = name in stepper.violated_invariants(final)
        return ReplayOutcome(
            states, hit, f"invariant {name} {'fails' if hit else 'holds'} in the final state"
        )
    if replay.kind == "step":
        hit = len(states) > 1 and name in stepper.violated_step_properties(states[-2], final)
        return ReplayOutcome(states, hit, f"the last step {'breaks' if hit else 'keeps'} {name}")
    if replay.kind == "deadlock":
        hit = not stepper.enabled(final) and model_work_pending(final)
        return ReplayOutcome(
            states, hit, "no event enabled with work pending" if hit else "not a deadlock"
        )
    prop = next((p for p in spec.progress if p.name == name), None)
    if prop is None or replay.when_at is None or replay.when_at >= len(states):
        return ReplayOutcome(states, False, f"no progress property {name!r} or no valid when_at")
    tail = states[replay.when_at :]
    if not prop.when(tail[0], k) or any(prop.goal(s, k) for s in tail):
        return ReplayOutcome(
            states, False, "`when` does not hold at when_at, or `goal` holds later"
        )
    fair = set(prop.fairness)
    if replay.cycle_start is None:
        stuck = not any(i.transition.event in fair for i in stepper.enabled(final))
        return ReplayOutcome(
            states,
            stuck,
            "no fair event enabled at the end" if stuck else "a fair event is enabled at the end",
        )
    start = replay.cycle_start
    if start >= len(replay.events) or states[start] != final:
        return ReplayOutcome(states, False, "the cycle does not return to its first state")
    cycle_states = states[start:-1]
    taken = {e.event for e in replay.events[start:]}
    always = set.intersection(
        *({i.transition.event for i in stepper.enabled(s)} for s in cycle_states)
    )
    starved = sorted((always & fair) - taken)
    if starved:
        return ReplayOutcome(
            states, False, f"the cycle is unfair: {starved} stay enabled and are never taken"
        )
    return ReplayOutcome(states, True, "a fair cycle on which `goal` never holds")
