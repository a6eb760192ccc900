"""The project's JSON-lines trace format: reading, validating and writing it.

One JSON object per line.  The first non-blank line may be a header,
``{"xbdspec_trace": 1, "sizes": {...}}``, naming the :class:`~xbdspec.model.state.Sizes`
the trace was recorded with (defaults when absent); every other line is one event of the
model's vocabulary, ``{"event": "<model event>", "params": {...}}``, parameters by name,
enumeration values by member name (``"kind": "READ"``), booleans and integers as JSON
booleans and numbers.  ``docs/trace.schema.json`` is the JSON Schema of a line.

This module is the one reader and writer of the format: the trace checker, the
explorer's counterexamples and the differential test's replay files all go through it.
Readers get ``(line, event, params)`` with the parameters decoded to the model's own
values; anything malformed raises :class:`~xbdspec.errors.InputError` naming the line.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from xbdspec.errors import InputError
from xbdspec.model.declaration import Param, Spec
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

#: The value of the header's ``xbdspec_trace`` key this module reads and writes.
FORMAT_VERSION = 1

__all__ = [
    "FORMAT_VERSION",
    "JsonlTrace",
    "TraceEvent",
    "format_event",
    "format_header",
    "open_trace",
    "read_trace",
    "write_trace",
]


@dataclass(frozen=True)
class TraceEvent:
    """One event line, decoded.

    Attributes:
        line: its 1-based line number in the file.
        event: the model event's name.
        params: the parameters, as the model's values (enum members, ints, bools).
    """

    line: int
    event: str
    params: Mapping[str, Any]

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``(line, event, params)``."""
        return iter((self.line, self.event, self.params))

    @property
    def label(self) -> str:
        """How the event reads in a report: ``strategy(bio=0, kind=READ)``."""
        inner = ", ".join(f"{n}={_show(v)}" for n, v in self.params.items())
        return f"{self.event}({inner})"


def _show(value: Any) -> str:
    return value.name if isinstance(value, enum.Enum) else repr(value)


@dataclass
class JsonlTrace:
    """A JSON-lines trace being read: its sizes, its spec and its events (lazily).

    Attributes:
        source: the file name, for messages.
        sizes: the sizes named by the header (the defaults without one).
        spec: the model for those sizes.
        events: the remaining events, decoded one line at a time.
    """

    source: str
    sizes: Sizes
    spec: Spec
    events: Iterator[TraceEvent]

    def __iter__(self) -> Iterator[TraceEvent]:
        return self.events


# --------------------------------------------------------------------------- reading


def read_trace(lines: Iterable[str], source: str = "<trace>") -> JsonlTrace:
    """Start reading a trace from ``lines`` (a file object works): the header is read
    now, the events as the returned :class:`JsonlTrace` is iterated.

    Raises:
        InputError: a malformed header (at once) or event line (when reached), naming
            ``source`` and the line number.
    """
    numbered = enumerate(lines, start=1)
    first: tuple[int, dict[str, Any]] | None = None
    sizes = Sizes()
    for number, text in numbered:
        if not text.strip():
            continue
        obj = _parse_object(text, f"{source}:{number}")
        if "xbdspec_trace" in obj:
            sizes = _header_sizes(obj, f"{source}:{number}")
        else:
            first = (number, obj)
        break
    spec = build_spec(sizes)
    return JsonlTrace(source, sizes, spec, _events(spec, source, first, numbered))


def open_trace(path: str) -> tuple[IO[str], JsonlTrace]:
    """Open the file at ``path`` and start reading it; close the file when done."""
    try:
        handle = open(path, encoding="utf-8", errors="strict")  # noqa: SIM115
    except OSError as exc:
        raise InputError(path, f"cannot open the trace: {exc.strerror}") from None
    try:
        return handle, read_trace(handle, path)
    except BaseException:
        handle.close()
        raise


def _events(
    spec: Spec,
    source: str,
    first: tuple[int, dict[str, Any]] | None,
    rest: Iterator[tuple[int, str]],
) -> Iterator[TraceEvent]:
    decoder = _Decoder(spec)
    if first is not None:
        yield decoder.decode(first[1], f"{source}:{first[0]}", first[0])
    for number, text in rest:
        if not text.strip():
            continue
        where = f"{source}:{number}"
        obj = _parse_object(text, where)
        if "xbdspec_trace" in obj:
            raise InputError(where, "a header line may only come first in a trace.")
        yield decoder.decode(obj, where, number)


#: The longest line read (characters); a longer one is refused before it is parsed.
MAX_LINE = 1 << 16
#: The largest value of each size a header may ask for: the model is instantiated for
#: them (one variable per command and bio), so memory grows with them.
MAX_SIZES = {
    "commands": 8,
    "bios": 8,
    "ring_slots": 32,
    "grants": 64,
    "grants_per_request": 16,
    "suspends": 4,
    "unplugs": 4,
    "max_users": 4,
    "ring_base": 0xFFFF_FFFF,
    "dumps": 4,
}


def _parse_object(text: str, where: str) -> dict[str, Any]:
    if len(text) > MAX_LINE:
        raise InputError(where, f"the line is longer than {MAX_LINE} characters")
    try:
        obj = json.loads(text)
    except RecursionError:
        raise InputError(where, "not a JSON object: nested too deeply") from None
    except ValueError as exc:
        reason = str(exc)[:200]
        raise InputError(
            where, f"not a JSON object ({reason}); each line holds one event."
        ) from None
    if not isinstance(obj, dict):
        raise InputError(where, f"expected a JSON object, found {type(obj).__name__}.")
    return obj


def _header_sizes(obj: Mapping[str, Any], where: str) -> Sizes:
    version = obj.get("xbdspec_trace")
    if version != FORMAT_VERSION:
        raise InputError(
            where,
            f"trace format version {version!r} is not supported (this reader reads "
            f"{FORMAT_VERSION}).",
        )
    extra = set(obj) - {"xbdspec_trace", "sizes", "comment"}
    if extra:
        raise InputError(where, f"unknown header keys {sorted(extra)}; allowed: sizes, comment.")
    raw = obj.get("sizes", {})
    if not isinstance(raw, dict):
        raise InputError(where, "the header's `sizes` must be an object of size names to integers.")
    known = {f.name for f in dataclasses.fields(Sizes)}
    unknown = set(raw) - known
    if unknown:
        raise InputError(where, f"unknown sizes {sorted(unknown)}; known: {sorted(known)}.")
    for name, value in raw.items():
        if type(value) is not int or value < 0:
            raise InputError(
                where, f"size {name} must be a non-negative integer, not {str(value)[:40]!r}."
            )
        if value > MAX_SIZES[name]:
            raise InputError(
                where, f"size {name} = {value} is above {MAX_SIZES[name]}, the most a trace may ask"
            )
    return Sizes(**raw)


class _Decoder:
    """Decodes event objects against the spec's declared parameters."""

    def __init__(self, spec: Spec) -> None:
        self.params: dict[str, tuple[Param, ...]] = {}
        self.domains: dict[str, dict[str, tuple[Any, ...]]] = {}
        for t in spec.transitions:
            if t.event not in self.params:
                self.params[t.event] = t.params
                self.domains[t.event] = {p.name: p.domain_for(spec.sizes) for p in t.params}

    def decode(self, obj: Mapping[str, Any], where: str, line: int) -> TraceEvent:
        extra = set(obj) - {"event", "params", "comment"}
        if extra:
            raise InputError(
                where,
                f"unknown keys {sorted(extra)}; an event line has "
                "`event` and `params` (and an optional `comment`).",
            )
        event = obj.get("event")
        if not isinstance(event, str):
            raise InputError(where, "missing `event` (the model event's name, a string).")
        if event not in self.params:
            raise InputError(
                where,
                f"the model has no event {event!r}; its events are "
                f"{', '.join(sorted(self.params))}.",
            )
        raw = obj.get("params", {})
        if not isinstance(raw, dict):
            raise InputError(where, "`params` must be an object of parameter names to values.")
        declared = self.params[event]
        names = [p.name for p in declared]
        missing = [n for n in names if n not in raw]
        unknown = [n for n in raw if n not in names]
        if missing or unknown:
            raise InputError(
                where,
                f"event {event} takes parameters {names}; missing {missing}, unknown {unknown}.",
            )
        params = {n: self._value(event, n, raw[n], where) for n in names}
        return TraceEvent(line, event, params)

    def _value(self, event: str, name: str, raw: Any, where: str) -> Any:
        domain = self.domains[event][name]
        for value in domain:
            if isinstance(value, enum.Enum):
                if raw == value.name:
                    return value
            elif type(raw) is type(value) and raw == value:
                return value
        shown = ", ".join(_json_value(v) for v in domain)
        raise InputError(
            where,
            f"parameter {name} of {event} is {json.dumps(raw)}, "
            f"which is not one of its values: {shown}.",
        )


# --------------------------------------------------------------------------- writing


def _json_value(value: Any) -> str:
    return json.dumps(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    return value


def format_header(sizes: Sizes, comment: str | None = None) -> str:
    """The header line for a trace recorded with ``sizes`` (no newline)."""
    obj: dict[str, Any] = {"xbdspec_trace": FORMAT_VERSION, "sizes": dataclasses.asdict(sizes)}
    if comment:
        obj["comment"] = comment
    return json.dumps(obj, separators=(", ", ": "))


def format_event(event: str, params: Mapping[str, Any], comment: str | None = None) -> str:
    """One event line (no newline): enums by name, in the order given."""
    obj: dict[str, Any] = {"event": event, "params": {n: _plain(v) for n, v in params.items()}}
    if comment:
        obj["comment"] = comment
    return json.dumps(obj, separators=(", ", ": "))


def write_trace(out: IO[str], sizes: Sizes, events: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
    """Write a header and ``(event, params)`` pairs to ``out``; returns the events written."""
    out.write(format_header(sizes) + "\n")
    count = 0
    for event, params in events:
        out.write(format_event(event, params) + "\n")
        count += 1
    return count
