"""``xbdspec itf``: counterexamples and replays as ITF, the Informal Trace Format.

ITF is Apalache's JSON trace format (ADR-015,
https://apalache-mc.org/docs/adr/015adr-trace.html), which Quint writes and reads and
``itf-rs`` (Rust) and other model-based-testing tools load.  A trace is::

    {"#meta": {...}, "vars": ["fe_state", ...],
     "states": [{"#meta": {"index": 0}, "fe_state": "Initialising", ...}, ...],
     "loop": 3}

Each state here is the FreeBSD driver model's own (:class:`~xbdspec.model.concrete.Stepper`),
obtained by running the replay on the model, never copied from the file: a replay says
which events happened, the model says what the state was after each.

* An explorer counterexample (a replay whose header names a ``kind``) lists every
  model event, internal steps included; it is stepped event by event, and the
  recorded violation is checked again (``#meta.reproduced``).  A progress lasso's
  ``cycle_start`` becomes ITF's ``loop``: the last state equals ``states[loop]``.
* A differential test's program (the replays of ``xbdspec difftest --contract
  freebsd``, the findings' replays) lists environment events only; after each, the
  model takes its internal steps until the driver is idle, as the harness runs it
  (:meth:`~xbdspec.conformance.harness.ModelSide.closure`), with the line's ``env``
  answering the DMA loads.  Every internal step is a state of the trace, and the state's
  ``#meta.event`` says which program line it belongs to.  Where the model may settle in
  more than one way, the first way that lets the whole program run is taken.  A program
  recorded on an implementation that starts connected is run after the harness's
  connect prefix (``#meta.start``).

Values: booleans and integers as JSON values (integers beyond 2**53 in magnitude as
``{"#bigint": "..."}``), enum members by name (strings), a field indexed by command or
bio number as a JSON list (ITF's sequence; index 0 first); Python tuples, sets and
dicts elsewhere as ``#tup``, ``#set`` and ``#map``.  :func:`decode_state` reads a
state back into the model's record.

The protocol contract's world programs (trace format version 2) are not this model's
replays: their protocol traces are checked with ``xbdspec check``.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xbdspec.errors import InputError, XbdspecError

#: ITF's description, cited in every trace's ``#meta``.
FORMAT_DESCRIPTION = "https://apalache-mc.org/docs/adr/015adr-trace.html"
#: The largest magnitude a JSON number carries exactly (IEEE double): beyond it, ``#bigint``.
SAFE_INTEGER = 2**53 - 1


# --------------------------------------------------------------------------- values


def encode_value(value: Any) -> Any:
    """A Python value as an ITF value (enum members by name)."""
    if isinstance(value, enum.Enum):
        return value.name
    if type(value) is bool or isinstance(value, str) or value is None:
        return value
    if isinstance(value, int):
        return value if -SAFE_INTEGER <= value <= SAFE_INTEGER else {"#bigint": str(value)}
    if isinstance(value, tuple):
        return {"#tup": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [encode_value(v) for v in value]
        return {"#set": sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, Mapping):
        pairs = [[encode_value(k), encode_value(v)] for k, v in value.items()]
        return {"#map": pairs}
    return {"#unserializable": repr(value)}


def decode_value(value: Any) -> Any:
    """An ITF value as a Python value (the inverse of :func:`encode_value`, enum names
    left as strings): ``#bigint`` an ``int``, ``#tup`` a tuple, ``#set`` a frozenset,
    ``#map`` a dict, a record a dict, a sequence a list."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"#bigint"}:
            return int(value["#bigint"])
        if set(value) == {"#tup"}:
            return tuple(decode_value(v) for v in value["#tup"])
        if set(value) == {"#set"}:
            return frozenset(_hashable(decode_value(v)) for v in value["#set"])
        if set(value) == {"#map"}:
            return {_hashable(decode_value(k)): decode_value(v) for k, v in value["#map"]}
        return {k: decode_value(v) for k, v in value.items() if k != "#meta"}
    return value


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def encode_state(spec: Any, state: Any) -> dict[str, Any]:
    """The model state as ITF variables: one per field, in declaration order."""
    out: dict[str, Any] = {}
    for f in spec.fields:
        value = getattr(state, f.name)
        out[f.name] = (
            [encode_value(v) for v in value] if f.length is not None else encode_value(value)
        )
    return out


def decode_state(spec: Any, variables: Mapping[str, Any]) -> Any:
    """An ITF state (its variables; ``#meta`` ignored) as the model's ``State`` record."""

    def one(domain: Any, raw: Any, name: str) -> Any:
        value = decode_value(raw)
        if domain.enum_type is not None:
            try:
                return domain.enum_type[value]
            except KeyError:
                raise InputError(name, f"{value!r} is no {domain.enum_type.__name__}") from None
        return value

    values: dict[str, Any] = {}
    for f in spec.fields:
        if f.name not in variables:
            raise InputError(f.name, "the ITF state has no such variable")
        raw = variables[f.name]
        if f.length is not None:
            values[f.name] = tuple(one(f.domain, v, f.name) for v in raw)
        else:
            values[f.name] = one(f.domain, raw, f.name)
    return spec.State(**values)


# --------------------------------------------------------------------------- traces


@dataclasses.dataclass(frozen=True)
class Labelled:
    """One state of a trace and how it was reached.

    Attributes:
        state: the model's state.
        transition: the transition taken into it (None for the first state).
        event: the event as the replay writes it, ``strategy(bio=0, kind=WRITE)``.
        line: the replay line of that event (None for the first state, or an internal
            step before the program's first line).
    """

    state: Any
    transition: str | None = None
    event: str | None = None
    line: int | None = None


def document(
    spec: Any,
    trace: Sequence[Labelled],
    meta: Mapping[str, Any],
    loop: int | None = None,
) -> dict[str, Any]:
    """The ITF document of ``trace`` (states of ``spec``), with ``meta`` in its ``#meta``."""
    from xbdspec.cli import version

    head: dict[str, Any] = {
        "format": "ITF",
        "format-description": FORMAT_DESCRIPTION,
        "generated-by": f"xbdspec {version()}",
        "model": "the FreeBSD blkfront driver model (xbdspec.model)",
        "sizes": dataclasses.asdict(spec.sizes),
        **meta,
    }
    states = []
    for index, item in enumerate(trace):
        state_meta: dict[str, Any] = {"index": index}
        if item.transition is not None:
            state_meta["transition"] = item.transition
        if item.event is not None:
            state_meta["event"] = item.event
        if item.line is not None:
            state_meta["line"] = item.line
        states.append({"#meta": state_meta, **encode_state(spec, item.state)})
    doc: dict[str, Any] = {
        "#meta": head,
        "vars": [f.name for f in spec.fields],
        "states": states,
    }
    if loop is not None:
        doc["loop"] = loop
    return doc


def dumps(doc: Mapping[str, Any]) -> str:
    """The document as text: the header indented, one state per line."""
    head = {k: v for k, v in doc.items() if k != "states"}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    states = [json.dumps(s, ensure_ascii=False) for s in doc["states"]]
    lines.append('  "states": [')
    lines += [f"    {s}," for s in states[:-1]] + ([f"    {states[-1]}"] if states else [])
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def _label(event: str, params: Mapping[str, Any]) -> str:
    shown = ", ".join(
        f"{k}={v.name if isinstance(v, enum.Enum) else v!r}" for k, v in params.items()
    )
    return f"{event}({shown})"


def from_counterexample(cx: Any, spec: Any, source: str = "<counterexample>") -> dict[str, Any]:
    """The ITF trace of an explorer :class:`~xbdspec.explore.counterexample.Counterexample`
    (its states are already the model's)."""
    trace = [Labelled(cx.initial)]
    for step in cx.steps:
        params = step.instance.bindings.as_dict()
        trace.append(
            Labelled(
                step.after,
                step.instance.transition.name,
                _label(step.instance.transition.event, params),
            )
        )
    meta = {
        "source": source,
        "description": f"counterexample to {cx.property} ({cx.kind})",
        "property": cx.property,
        "kind": cx.kind,
    }
    if cx.when_at is not None:
        meta["when_at"] = cx.when_at
    return document(spec, trace, meta, loop=cx.cycle_start)


def from_replay_text(text: str, source: str = "<replay>", spec: Any = None) -> dict[str, Any]:
    """The ITF trace of a replay file's text (an explorer counterexample or a
    differential test's program, told apart by the header's ``kind``); a counterexample
    runs on ``spec`` when given (a respecified model), else on the model at its sizes."""
    first = text.lstrip().split("\n", 1)[0]
    try:
        header = json.loads(first) if first else None
    except json.JSONDecodeError:
        header = None
    if isinstance(header, dict) and "xbdspec_trace" in header:
        raise InputError(
            f"{source}:1",
            f"a trace of format version {header['xbdspec_trace']} ({header.get('kind', '?')}): "
            "the protocol contract's programs and traces are checked with `xbdspec check`; "
            "ITF export covers the FreeBSD model's replays (version 1: the explorer's "
            "counterexamples and the differential tests' programs)",
        )
    if isinstance(header, dict) and header.get("kind") is not None:
        return _from_counterexample_file(text, source, spec)
    return _from_program(text, source)


def from_replay(path: Path) -> dict[str, Any]:
    """The ITF trace of the replay file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read the replay file: {exc}") from None
    return from_replay_text(text, str(path))


def _from_counterexample_file(text: str, source: str, spec: Any) -> dict[str, Any]:
    from xbdspec.explore.replay import decode_params, loads_replay, replay_on_model
    from xbdspec.model.concrete import Stepper
    from xbdspec.model.spec import build_spec

    replay = loads_replay(text, source)
    spec = spec or build_spec(replay.sizes)
    outcome = replay_on_model(replay, spec)
    trace = [Labelled(outcome.states[0])]
    stepper = Stepper(spec)
    pairs = zip(outcome.states, outcome.states[1:], strict=False)
    for event, (before, state) in zip(replay.events, pairs, strict=True):
        params = decode_params(spec, event, source)
        instance, _ = stepper.step(before, event.event, **params)
        trace.append(
            Labelled(state, instance.transition.name, _label(event.event, params), event.line)
        )
    meta: dict[str, Any] = {
        "source": source,
        "description": f"counterexample to {replay.property} ({replay.kind}), replayed on "
        "the model",
        "target": replay.target,
        "property": replay.property,
        "kind": replay.kind,
        "reproduced": outcome.reproduced,
        "detail": outcome.detail,
    }
    if replay.when_at is not None:
        meta["when_at"] = replay.when_at
    return document(spec, trace, meta, loop=replay.cycle_start)


#: One line of a program: the event, its parameters, the environment's answers (the
#: harness's ``EnvChoices``) and the replay line (None: the connect prefix's events).
_Line = tuple[str, dict[str, Any], Any, int | None]


def _from_program(text: str, source: str) -> dict[str, Any]:
    from xbdspec.conformance.contract import EnvChoices
    from xbdspec.conformance.harness import CONNECT_PREFIX, ModelSide
    from xbdspec.conformance.replay import loads_configuration

    configuration, steps = loads_configuration(text, source)
    side = ModelSide(configuration.sizes)
    lines = _event_lines(text)
    program: list[_Line] = [
        (s.event, dict(s.params), s.env, line) for s, line in zip(steps, lines, strict=True)
    ]
    starts: list[tuple[str, list[_Line]]] = [("initial", [])]
    for barrier in (False, True):
        for flush in (False, True):
            prefix: list[_Line] = []
            for event, params in CONNECT_PREFIX:
                if event == "backend_publish":
                    params = {"barrier": barrier, "flush": flush}
                prefix.append((event, dict(params), EnvChoices(), None))
            starts.append((f"connected (barrier={barrier}, flush={flush})", prefix))
    for start, prefix in starts:
        found = _run_program(side, [*prefix, *program])
        if found is not None:
            meta = {
                "source": source,
                "description": "a differential test's program, run on the model (each "
                "event followed by the model's internal steps until the driver is idle)",
                "configuration": configuration.name,
                "start": start,
                "events": len(program),
            }
            return document(side.spec, found, meta)
    raise XbdspecError(
        f"{source}: the model cannot run this program, from its initial state or after the "
        "connect prefix: it is not a program of this model at these sizes"
    )


def _event_lines(text: str) -> list[int]:
    """The line numbers of a replay's event lines (blank lines skipped, as the reader does)."""
    numbered = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return numbered[1:]


def _run_program(side: Any, program: Sequence[_Line]) -> list[Labelled] | None:
    """One run of ``program`` on the model, every internal step a state (depth first over
    the ways the model may settle after each event); None when there is none."""
    from xbdspec.model.concrete import Stepper

    stepper = Stepper(side.spec)
    dead: set[tuple[int, Any]] = set()

    def go(index: int, state: Any) -> list[Labelled] | None:
        if index == len(program):
            return []
        if (index, state) in dead:
            return None
        event, params, env, line = program[index]
        label = _label(event, params)
        for final, path in side.closure(state, event, params, env):
            steps = _expand(stepper, state, path, event, params, final)
            rest = go(index + 1, final)
            if rest is not None:
                return [Labelled(s, name, label, line) for name, s in steps] + rest
        dead.add((index, state))
        return None

    found = go(0, stepper.initial())
    return None if found is None else [Labelled(stepper.initial()), *found]


def _expand(
    stepper: Any,
    state: Any,
    path: Sequence[str],
    event: str,
    params: Mapping[str, Any],
    final: Any,
) -> list[tuple[str, Any]]:
    """The states along ``path`` (transition names) from ``state`` to ``final``, the first
    transition being ``event(**params)``."""
    want = {k: _plain(v) for k, v in params.items()}

    def go(s: Any, depth: int) -> list[tuple[str, Any]] | None:
        if depth == len(path):
            return [] if s == final else None
        for instance, after in stepper.successors(s):
            if instance.transition.name != path[depth]:
                continue
            if depth == 0 and (
                instance.transition.event != event
                or {k: _plain(v) for k, v in instance.bindings.as_dict().items()} != want
            ):
                continue
            rest = go(after, depth + 1)
            if rest is not None:
                return [(instance.transition.name, after), *rest]
        return None

    found = go(state, 0)
    if found is None:  # the closure found this path on the same declaration
        raise XbdspecError(f"internal: the path {list(path)} after {event} cannot be re-walked")
    return found


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


# --------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``xbdspec itf``."""
    parser.add_argument(
        "replay",
        type=Path,
        metavar="REPLAY",
        help="a replay file of the FreeBSD model: an explorer counterexample "
        "(explore --replay-dir) or a differential test's program (difftest --contract "
        "freebsd, the findings' replays)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the ITF trace to FILE (default: standard output)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print the xbdspec envelope (docs/output.md) with the ITF trace under "itf" '
        "(or, with --out, where it was written) instead of the bare trace",
    )


def run(args: argparse.Namespace) -> int:
    """Write the replay's ITF trace; 0 when written (an input error is exit 2)."""
    doc = from_replay(args.replay)
    text = dumps(doc)
    if getattr(args, "json", False):
        from xbdspec import output

        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
        fields: dict[str, Any] = {"replay": str(args.replay), "out": None, "itf": doc}
        if args.out is not None:
            fields = {"replay": str(args.replay), "out": str(args.out)}
        counts = {"states": len(doc["states"])}
        output.emit("itf", ok=True, counts=counts, fields=fields)
        return 0
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(
            f"xbdspec itf: {len(doc['states'])} states of {args.replay} written to {args.out}",
            file=sys.stderr,
        )
    return 0
