"""What every command prints with ``--json``: one envelope, one schema, one layout.

Every ``xbdspec COMMAND --json`` prints exactly one JSON object, indented by two spaces,
that starts with the same five keys in the same order::

    {"tool": "xbdspec", "version": "0.1.0", "command": "explore", "ok": true,
     "counts": {"states": 1234, ...}, ...the command's own fields}

``ok`` is true exactly when the command exits 0; ``counts`` holds its key figures as
non-negative integers, so a script can read any command's verdict and size the same way.
A command stopped early (Ctrl-C, an error after it had found something) still prints
its envelope, with ``interrupted`` or ``error`` and what it had found.  The schema is
shipped in the package (``xbdspec/schema/envelope.schema.json``, :func:`schema`) and a
test validates every command's output against it.

When a command fails before printing anything (a usage error raised as
:class:`~xbdspec.errors.XbdspecError`, a crash of xbdspec itself), the command line
(:func:`xbdspec.cli.main`) prints an envelope holding only the ``error``
(:func:`emit_error`), so ``--json`` always gives one document.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any

import fastjsonschema

#: The envelope's keys, in the order every document starts with.
ENVELOPE_KEYS = ("tool", "version", "command", "ok", "counts")

#: Whether an envelope was printed since :func:`reset` (the command line's fallback for
#: a command that failed before printing its own).
_emitted = False


def reset() -> None:
    """Forget that an envelope was printed (the command line calls it per command)."""
    global _emitted
    _emitted = False


def emitted() -> bool:
    """Whether an envelope was printed since :func:`reset`."""
    return _emitted


def envelope(
    command: str, *, ok: bool, counts: Mapping[str, int], fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The document: the envelope's keys, then ``fields`` in their own order.

    A field named like an envelope key is refused (``ValueError``: a bug of the
    command), except ``ok`` when it says the same."""
    from xbdspec.cli import version

    doc: dict[str, Any] = {
        "tool": "xbdspec",
        "version": version(),
        "command": command,
        "ok": bool(ok),
        "counts": {name: int(value) for name, value in counts.items()},
    }
    for key, value in fields.items():
        if key in doc:
            if key == "ok" and bool(value) == doc["ok"]:
                continue
            raise ValueError(
                f"xbdspec {command} --json: its own field {key!r} collides with the envelope's"
            )
        doc[key] = value
    return doc


def dumps(doc: Mapping[str, Any]) -> str:
    """The document as text: two-space indentation, keys in their order, UTF-8 kept."""
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str)


def emit(
    command: str,
    *,
    ok: bool,
    counts: Mapping[str, int],
    fields: Mapping[str, Any],
    file: IO[str] | None = None,
) -> dict[str, Any]:
    """Print the envelope on standard output (or ``file``) and return it."""
    global _emitted
    doc = envelope(command, ok=ok, counts=counts, fields=fields)
    print(dumps(doc), file=file or sys.stdout, flush=True)
    _emitted = True
    return doc


def emit_error(command: str, kind: str, message: str, status: int) -> None:
    """The envelope of a command that stopped before printing its own: only ``error``."""
    emit(
        command,
        ok=False,
        counts={},
        fields={"error": {"kind": kind, "message": message[:2000], "exit_status": status}},
    )


def error_field(kind: str, message: str, status: int) -> dict[str, Any]:
    """The ``error`` field of an envelope that still carries what was found."""
    return {"kind": kind, "message": message[:2000], "exit_status": status}


def counts_of(data: Mapping[str, Any], *names: str) -> dict[str, int]:
    """``counts`` from a command's own report: each named figure, a list counted by its
    length (``violations`` -> how many), absent or ``None`` left out."""
    counts: dict[str, int] = {}
    for name in names:
        value = data.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, list | dict):
            counts[name] = len(value)
        elif isinstance(value, int):
            counts[name] = max(0, value)
    return counts


@functools.cache
def schema() -> dict[str, Any]:
    """The envelope's JSON Schema (draft 7), as shipped in the package."""
    text = (
        importlib.resources.files("xbdspec")
        .joinpath("schema")
        .joinpath("envelope.schema.json")
        .read_text("utf-8")
    )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator() -> Callable[[Any], Any]:
    return fastjsonschema.compile(schema())


def check(doc: Any) -> None:
    """Raise ``fastjsonschema.JsonSchemaException`` unless ``doc`` is a valid envelope."""
    _validator()(doc)


def unwrap(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A command's own fields, the envelope's keys taken off (documents written before
    the envelope are returned as they are)."""
    if doc.get("tool") != "xbdspec":
        return dict(doc)
    return {k: v for k, v in doc.items() if k not in ENVELOPE_KEYS}


def plain(value: Any) -> str:
    """A value as a person reads it in a table: an enum by its name, a record (a
    dataclass such as ``Sizes``) or a mapping as ``name=value, ...``, a sequence as its
    items; never a Python ``repr`` such as ``Sizes(...)`` or ``{...}``."""
    import dataclasses
    import enum

    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "none"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ", ".join(
            f"{f.name}={plain(getattr(value, f.name))}" for f in dataclasses.fields(value)
        )
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return "[" + ", ".join(plain(v) for v in items) + "]"
    return str(value)
