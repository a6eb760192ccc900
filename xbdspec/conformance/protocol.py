"""The stdio protocol: JSON lines between the harness and an implementation process.

The harness writes one request per line on the child's stdin and reads one response
per line from its stdout, in order; ``xbdspec/conformance/schema/stdio-v1.schema.json``
is the JSON Schema of both (the one description of the messages) and
``docs/conformance.md`` walks through a session.  Everything the child sends is
untrusted: :func:`check_response` validates a response against the schema
(fastjsonschema, compiled once), then what the schema cannot say (the id it answers,
every observation field's name and domain, from the model) and raises an
:class:`~xbdspec.errors.InputError` naming the process and the message number.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import fastjsonschema

from xbdspec.errors import InputError
from xbdspec.model.declaration import Spec
from xbdspec.model.state import Sizes
from xbdspec.untrusted import JSONRefused, load_json

from .contract import Capabilities, EnvChoices, Observation

VERSION = 1
#: The longest line the harness accepts from a child (bytes).
MAX_LINE = 1 << 20


def request(msg_id: int, op: str, **body: Any) -> str:
    """One request line (without the newline)."""
    return json.dumps({"id": msg_id, "op": op, **body}, sort_keys=True)


def hello(msg_id: int) -> str:
    """``hello``: the harness's protocol version; the child answers its capabilities."""
    return request(msg_id, "hello", version=VERSION)


def reset(msg_id: int, sizes: Sizes) -> str:
    """``reset``: start afresh for ``sizes``."""
    return request(msg_id, "reset", sizes=dataclasses.asdict(sizes))


def apply(msg_id: int, event: str, params: Mapping[str, Any], env: EnvChoices) -> str:
    """``apply``: one environment event, enums by name."""
    plain = {k: (v.name if isinstance(v, enum.Enum) else v) for k, v in params.items()}
    return request(
        msg_id, "apply", event=event, params=plain, env={"dma": [m.name for m in env.dma]}
    )


def parse_line(line: bytes, source: str) -> dict[str, Any]:
    """A response line as a JSON object, or an :class:`InputError`."""
    if len(line) > MAX_LINE:
        raise InputError(source, f"response longer than {MAX_LINE} bytes")
    try:
        obj = load_json(line, source)
    except JSONRefused as exc:
        if exc.reason == "not UTF-8 text":
            raise InputError(source, "response is not UTF-8") from None
        shown = line[:80].decode("utf-8", "replace")
        why = exc.detail if exc.reason == "not JSON" else exc.reason
        raise InputError(source, f"response is not JSON ({why}): {shown!r}") from None
    if not isinstance(obj, dict):
        raise InputError(source, f"response must be a JSON object, got {type(obj).__name__}")
    return obj


#: What answers a request of each operation (the schema's definitions).
RESPONSES = {
    "hello": "hello_response",
    "reset": "observation_response",
    "apply": "observation_response",
    "observe": "observation_response",
    "quit": "quit_response",
}


@functools.cache
def _validator(kind: str) -> Callable[[Any], Any]:
    """The compiled schema of one kind of response (a definition of the schema)."""
    schema = json.loads(
        resources.files("xbdspec.conformance").joinpath("schema/stdio-v1.schema.json").read_text()
    )
    return fastjsonschema.compile(
        {"definitions": schema["definitions"], "$ref": f"#/definitions/{kind}"}
    )


def validate(obj: Mapping[str, Any], op: str, source: str) -> None:
    """A response to ``op`` is valid against the published schema (an error response,
    or the kind that answers ``op``); an :class:`InputError` naming what is wrong."""
    kind = "error" if obj.get("ok") is False else RESPONSES.get(op)
    if kind is None:
        return
    try:
        _validator(kind)(obj)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise InputError(
            source, f"the response to {op} breaks the protocol's schema: {exc.message}"
        ) from None


def check_response(obj: Mapping[str, Any], msg_id: int, source: str, op: str | None = None) -> None:
    """The common envelope (``id`` echoes the request, ``ok`` is a boolean), then the
    response against the schema (given the request's ``op``); errors say why."""
    if obj.get("id") != msg_id or type(obj.get("id")) is not int:
        raise InputError(source, f"response id {obj.get('id')!r} does not answer request {msg_id}")
    if type(obj.get("ok")) is not bool:
        raise InputError(source, "response has no boolean 'ok'")
    if op is not None:
        validate(obj, op, source)
    if not obj["ok"]:
        error = obj.get("error")
        raise InputError(
            source,
            "the implementation reports an error: "
            + (error if isinstance(error, str) else "(no message)"),
        )


def capabilities(obj: Mapping[str, Any], source: str, events: frozenset[str]) -> Capabilities:
    """The ``hello`` response's capabilities, validated."""
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(source, "hello response needs a non-empty 'name'")
    start = obj.get("start", "initial")
    if start not in ("initial", "connected"):
        raise InputError(source, f"'start' must be 'initial' or 'connected', got {start!r}")
    raw_events = obj.get("events")
    supported: frozenset[str] | None = None
    if raw_events is not None:
        if not isinstance(raw_events, list) or not all(isinstance(e, str) for e in raw_events):
            raise InputError(source, "'events' must be a list of event names or null")
        unknown = sorted(set(raw_events) - events)
        if unknown:
            raise InputError(source, f"'events' names events the model does not have: {unknown}")
        supported = frozenset(raw_events)
    features = obj.get("features", {"barrier": True, "flush": True})
    if not isinstance(features, dict) or any(
        type(features.get(k)) is not bool for k in ("barrier", "flush")
    ):
        raise InputError(source, '\'features\' must be {"barrier": bool, "flush": bool}')
    return Capabilities(name, supported, start, (features["barrier"], features["flush"]))


def observation(obj: Mapping[str, Any], source: str, spec: Spec) -> Observation:
    """The observation of a ``reset``/``apply``/``observe`` response, validated field by
    field against the model's declaration (names, types, domains, array lengths)."""
    raw = obj.get("observation")
    if not isinstance(raw, dict):
        raise InputError(source, "response needs an 'observation' object")
    fields = raw.get("fields")
    if not isinstance(fields, dict):
        raise InputError(source, "observation needs a 'fields' object")
    fault = raw.get("fault")
    if fault is not None and not isinstance(fault, str):
        raise InputError(source, "observation 'fault' must be a string or null")
    complete = raw.get("complete", False)
    if type(complete) is not bool:
        raise InputError(source, "observation 'complete' must be a boolean")
    for name, value in fields.items():
        declared = spec.field_by_name.get(name)
        if declared is None:
            raise InputError(source, f"observation field {name!r} is not a field of the model")
        if declared.length is None:
            _check_value(declared.domain, value, f"{source}: field {name}")
        else:
            if not isinstance(value, list) or len(value) != declared.length:
                raise InputError(source, f"field {name} must be a list of {declared.length} values")
            for i, item in enumerate(value):
                _check_value(declared.domain, item, f"{source}: field {name}[{i}]")
    if complete and set(fields) != set(spec.field_by_name):
        missing = sorted(set(spec.field_by_name) - set(fields))
        raise InputError(source, f"observation claims to be complete but lacks {missing}")
    return Observation(fields=dict(fields), fault=fault, complete=complete)


def _check_value(domain: Any, value: Any, where: str) -> None:
    if not domain.contains(value):
        raise InputError(where, f"{value!r} is not in the field's domain ({domain.describe()})")
