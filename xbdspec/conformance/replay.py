"""Replay files: a program of environment events as JSON lines.

Line 1 is a header ``{"xbdspec": "replay", "version": 1, "sizes": {...}}``, with
``"configuration": NAME`` and ``"setup": {...}`` (:class:`~.sweep.BackendSetup`) when the
program was found under a sweep's configuration other than the default; every
further line is one event ``{"event": "strategy", "params": {"bio": 0, "kind":
"WRITE"}, "env": {"dma": ["DEFERRED"]}}`` with enums by name (``env`` may be omitted).
The same format is what the explorer's counterexamples and the trace checker read
(see ``docs/conformance.md``).  Reading a file validates every line and names the line
of any error.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xbdspec.errors import InputError
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import Dma
from xbdspec.untrusted import check_sizes, excerpt, load_json

from .contract import EnvChoices, Step
from .sweep import DEFAULT_SETUP, BackendSetup, Configuration

FORMAT = "replay"
VERSION = 1
#: The largest replay file read (bytes), and the most events it may hold: a program
#: the harness shrank is tens of events; these bound what a hostile file can ask for.
MAX_BYTES = 16 << 20
MAX_STEPS = 100_000


def _param_json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    return value


def step_json(step: Step) -> dict[str, Any]:
    """One event line (as a dict)."""
    line: dict[str, Any] = {
        "event": step.event,
        "params": {k: _param_json(v) for k, v in step.params.items()},
    }
    env = step.env.as_json()
    if env:
        line["env"] = env
    return line


def dumps(sizes: Sizes, steps: Iterable[Step], configuration: Configuration | None = None) -> str:
    """The replay file's text (the configuration's name and back-end setup in the header
    when it is not the default setup)."""
    header: dict[str, Any] = {
        "xbdspec": FORMAT,
        "version": VERSION,
        "sizes": dataclasses.asdict(sizes),
    }
    if configuration is not None and configuration.setup != DEFAULT_SETUP:
        header["configuration"] = configuration.name
        header["setup"] = configuration.setup.dimensions()
    lines = [json.dumps(header, sort_keys=True)]
    lines += [json.dumps(step_json(s), sort_keys=True) for s in steps]
    return "\n".join(lines) + "\n"


def write(
    path: Path, sizes: Sizes, steps: Sequence[Step], configuration: Configuration | None = None
) -> None:
    """Write a replay file."""
    path.write_text(dumps(sizes, steps, configuration), encoding="utf-8")


def loads(text: str, source: str = "<replay>") -> tuple[Sizes, list[Step]]:
    """Parse a replay file; an :class:`InputError` naming the line on any problem."""
    configuration, steps = loads_configuration(text, source)
    return configuration.sizes, steps


def loads_configuration(text: str, source: str = "<replay>") -> tuple[Configuration, list[Step]]:
    """Parse a replay file with its configuration (sizes and back-end setup)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError(source, "empty replay file: the first line must be the header")
    header = _json(lines[0], f"{source}:1")
    if not isinstance(header, dict) or header.get("xbdspec") != FORMAT:
        raise InputError(
            f"{source}:1", 'the header must be {"xbdspec": "replay", "version": 1, "sizes": {...}}'
        )
    if header.get("version") != VERSION:
        raise InputError(
            f"{source}:1",
            f"version {excerpt(header.get('version'))} is not supported (only {VERSION})",
        )
    raw_sizes = header.get("sizes", {})
    known = {f.name for f in dataclasses.fields(Sizes)}
    if (
        not isinstance(raw_sizes, dict)
        or set(raw_sizes) - known
        or not all(type(v) is int for v in raw_sizes.values())
    ):
        raise InputError(f"{source}:1", f"sizes must map some of {sorted(known)} to integers")
    sizes = Sizes(**raw_sizes)
    check_sizes(dataclasses.asdict(sizes), f"{source}:1 sizes")
    raw_setup = header.get("setup", {})
    if not isinstance(raw_setup, dict):
        raise InputError(f"{source}:1", "setup must be an object")
    setup = BackendSetup.from_json(raw_setup, f"{source}:1") if raw_setup else DEFAULT_SETUP
    name = header.get("configuration", "default")
    if not isinstance(name, str):
        raise InputError(f"{source}:1", "configuration must be a name")
    params_of = {t.event: t.params for t in build_spec(sizes).transitions}
    if len(lines) - 1 > MAX_STEPS:
        raise InputError(source, f"{len(lines) - 1:,} events: a replay holds at most {MAX_STEPS:,}")
    steps = []
    for number, text_line in enumerate(lines[1:], start=2):
        where = f"{source}:{number}"
        obj = _json(text_line, where)
        if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
            raise InputError(where, 'each line must be {"event": NAME, "params": {...}}')
        event = obj["event"]
        if event not in params_of:
            raise InputError(
                where, f"unknown event {excerpt(event)}; the model's events: {sorted(params_of)}"
            )
        given = obj.get("params", {})
        if not isinstance(given, dict):
            raise InputError(where, "params must be an object")
        declared = {p.name: p for p in params_of[event]}
        if set(given) != set(declared):
            got = excerpt(sorted(given)[:20])
            raise InputError(where, f"{event} takes parameters {sorted(declared)}, got {got}")
        params: dict[str, Any] = {}
        for param, value in given.items():
            params[param] = _decode_param(
                declared[param].domain_for(sizes), value, f"{where} param {param}"
            )
        env = obj.get("env", {})
        if (
            not isinstance(env, dict)
            or set(env) - {"dma"}
            or not isinstance(env.get("dma", []), list)
        ):
            raise InputError(where, 'env must be {"dma": [IMMEDIATE|DEFERRED|FAILED, ...]}')
        try:
            dma = tuple(Dma[m] for m in env.get("dma", []))
        except (KeyError, TypeError):
            raise InputError(
                where, f"env.dma names {excerpt(env.get('dma'))}; use IMMEDIATE, DEFERRED or FAILED"
            ) from None
        steps.append(Step(event, params, EnvChoices(dma)))
    return Configuration(name, sizes, setup), steps


def read(path: Path) -> tuple[Sizes, list[Step]]:
    """Read and validate a replay file."""
    configuration, steps = read_configuration(path)
    return configuration.sizes, steps


def read_configuration(path: Path) -> tuple[Configuration, list[Step]]:
    """Read and validate a replay file, with its configuration."""
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
    return loads_configuration(text, str(path))


def _json(text: str, where: str) -> Any:
    return load_json(text, where)


def _decode_param(domain: tuple[Any, ...], value: Any, where: str) -> Any:
    for candidate in domain:
        if isinstance(candidate, enum.Enum):
            if value == candidate.name:
                return candidate
        elif type(candidate) is type(value) and candidate == value:
            return candidate
    shown = [c.name if isinstance(c, enum.Enum) else c for c in domain]
    raise InputError(where, f"{excerpt(value)} is not one of {shown}")
