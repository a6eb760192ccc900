"""Replay files of the protocol-level harness: a program of harness events.

The format is the project's JSON-lines trace format, version 2: a header line, then one
event per line, the same ``{"event": ..., "params": {...}}`` shape the FreeBSD
contract's replay files and the trace checker use::

    {"xbdspec_trace": 2, "kind": "world-program", "implementation": "tutorial",
     "options": {"broken": "reuses-id"}, "config": {"sectors": 256, ...},
     "rule": "request id 7 is reused while it is in flight ...", "event": 5}
    {"event": "attach", "params": {}}
    {"event": "submit", "params": {"id": 1, "op": "write", "sector": 3, ...}}

Beside each replay the harness writes the protocol-level trace of the replay's run
(``NAME.protocol.jsonl``, ``"kind": "protocol"``): the xenstore commits and ring steps it
saw, which ``xbdspec check`` checks offline against the protocol model.

Reading a replay validates every line and names the line of any error; the file is
read a bounded line at a time.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xbdspec.errors import InputError, XbdspecError
from xbdspec.untrusted import excerpt, load_json

from .backend import PROFILES, BackendConfig
from .harness import EVENTS, World, check_params, trace_lines

KIND = "world-program"
VERSION = 2
MAX_LINE = 1 << 20
MAX_EVENTS = 100_000
#: The most text a replay may hold in all (a shrunk program is a few KiB).
MAX_BYTES = 16 << 20
#: Bounds on a replay's back-end settings (memory a hostile file could ask for).
CONFIG_LIMITS = {
    "sectors": 1 << 16,
    "max_ring_page_order": 8,
    "max_queues": 16,
    "max_indirect_segments": 4096,
}

Program = list[tuple[str, Mapping[str, Any]]]


@dataclasses.dataclass
class Replay:
    """A replay file's contents.

    Attributes:
        implementation: the front end it was recorded with (a registry name, or the
            command of a child over stdio).
        options: that front end's options.
        config: the back end's configuration.
        program: the harness events.
        rule, event: the violation it showed when it was written.
    """

    implementation: str
    options: dict[str, str]
    config: BackendConfig
    program: Program
    rule: str = ""
    event: int = -1


def slug(rule: str, program: int) -> str:
    """A file name for a violation: its first words, and the program's number."""
    words = re.sub(r"[^a-z]+", "-", re.sub(r"\d+", "", rule.lower())).strip("-")
    return f"{'-'.join(words.split('-')[:8]) or 'violation'}-p{program}"


def write(path: Path, replay: Replay, world: World | None = None) -> Path | None:
    """Write ``replay`` to ``path`` and, given the world of its run, the protocol trace
    beside it; the trace's path (or None)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "xbdspec_trace": VERSION,
        "kind": KIND,
        "implementation": replay.implementation,
        "options": replay.options,
        "config": dataclasses.asdict(replay.config),
        "rule": replay.rule,
        "event": replay.event,
    }
    lines = [json.dumps(header, sort_keys=True)]
    lines += [
        json.dumps({"event": name, "params": dict(params)}, sort_keys=True)
        for name, params in replay.program
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if world is None:
        return None
    trace_path = path.with_suffix(".protocol.jsonl")
    trace = trace_lines(world, {"replay": path.name, "rule": replay.rule})
    trace_path.write_text("".join(json.dumps(line) + "\n" for line in trace), encoding="utf-8")
    return trace_path


def is_world_program(path: Path) -> bool:
    """Whether ``path`` starts with a world-program header (else it is another format)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline(MAX_LINE)
    except OSError:
        return False
    try:
        head = load_json(first, str(path))
    except InputError:
        return False
    return isinstance(head, dict) and head.get("kind") == KIND


def read(path: Path) -> Replay:
    """Read and validate a replay file."""
    try:
        handle = path.open(encoding="utf-8", errors="strict")
    except OSError as exc:
        raise InputError(str(path), f"cannot open the replay: {exc.strerror}") from None
    with handle:
        try:
            return _read(handle, str(path))
        except UnicodeDecodeError as exc:
            raise InputError(str(path), f"not UTF-8 text ({exc.reason})") from None


def _read(handle: Any, source: str) -> Replay:
    header: dict[str, Any] | None = None
    program: Program = []
    number = 0
    total = 0
    while True:
        line = handle.readline(MAX_LINE + 1)
        if not line:
            break
        number += 1
        where = f"{source}:{number}"
        if len(line) > MAX_LINE:
            raise InputError(where, f"the line is longer than {MAX_LINE} characters")
        total += len(line)
        if total > MAX_BYTES:
            raise InputError(where, f"more than {MAX_BYTES >> 20} MiB: no replay is that long")
        if not line.strip():
            continue
        obj = load_json(line, where)
        if not isinstance(obj, dict):
            raise InputError(where, "each line must be a JSON object")
        if header is None:
            header = _header(obj, where)
            continue
        if len(program) >= MAX_EVENTS:
            raise InputError(where, f"more than {MAX_EVENTS} events")
        name, params = obj.get("event"), obj.get("params", {})
        if name not in EVENTS:
            raise InputError(where, f"{excerpt(name, 40)} is no harness event: {', '.join(EVENTS)}")
        if not isinstance(params, dict) or set(obj) - {"event", "params"}:
            raise InputError(where, 'an event line is {"event": NAME, "params": {...}}')
        try:
            check_params(name, params)  # here, so that the error names the line
        except XbdspecError as exc:
            raise InputError(where, str(exc)) from None
        program.append((name, params))
    if header is None:
        raise InputError(source, "empty: a replay starts with its header")
    return Replay(
        str(header.get("implementation", "")),
        {str(k): str(v) for k, v in dict(header.get("options") or {}).items()},
        header["config"],
        program,
        str(header.get("rule", "")),
        int(header.get("event", -1)),
    )


def _header(obj: Mapping[str, Any], where: str) -> dict[str, Any]:
    if obj.get("kind") != KIND or obj.get("xbdspec_trace") != VERSION:
        raise InputError(
            where,
            f'not a replay of the protocol harness: the header must say "kind": "{KIND}", '
            f'"xbdspec_trace": {VERSION}',
        )
    options = obj.get("options", {})
    if not isinstance(options, dict) or len(options) > 64:
        raise InputError(where, "'options' must be an object of at most 64 options")
    for key, value in options.items():
        if not isinstance(value, (str, int, float, bool)) or len(str(value)) > 4096:
            raise InputError(
                where, f"option {excerpt(key, 40)} must be a string, a number or a boolean"
            )
    for key in ("implementation", "rule"):
        if not isinstance(obj.get(key, ""), str):
            raise InputError(where, f"{key!r} must be a string, not {excerpt(obj[key])}")
    event = obj.get("event", -1)
    if type(event) is not int or event < -1:
        raise InputError(where, f"'event' must be a whole number (-1: none), not {excerpt(event)}")
    raw = obj.get("config", {})
    if not isinstance(raw, dict):
        raise InputError(where, "'config' must be an object")
    fields = {f.name: f for f in dataclasses.fields(BackendConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            raise InputError(where, f"the back end has no setting {key[:40]!r}")
        default = f.default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise InputError(where, f"{key} must be true or false")
        elif isinstance(default, str):
            if value not in PROFILES:
                raise InputError(where, f"{key} must be one of {', '.join(PROFILES)}")
        elif (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= CONFIG_LIMITS.get(key, 1 << 16)
        ):
            limit = CONFIG_LIMITS.get(key, 1 << 16)
            raise InputError(where, f"{key} must be a whole number from 0 to {limit}")
        values[key] = value
    out = dict(obj)
    out["config"] = BackendConfig(**values)
    return out


def program_of(events: Sequence[tuple[str, Mapping[str, Any]]]) -> Program:
    """A program as plain ``(name, params)`` pairs."""
    return [(name, dict(params)) for name, params in events]
