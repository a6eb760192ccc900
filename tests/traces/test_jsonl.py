"""The JSON-lines trace format: reading, writing, validation, and checking against the model."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import BioKind, Dma

from xbdspec.errors import InputError
from xbdspec.traces.check import check_file, check_jsonl
from xbdspec.traces.jsonl import format_event, format_header, read_trace, write_trace

DATA = Path(__file__).parent / "data" / "jsonl"


def lines(*text: str) -> list[str]:
    return [t + "\n" for t in text]


def test_write_then_read_gives_the_same_events_with_model_values() -> None:
    out = io.StringIO()
    events: list[tuple[str, dict[str, object]]] = [
        ("backend_publish", {"barrier": True, "flush": False}),
        ("strategy", {"bio": 1, "kind": BioKind.ORDERED_WRITE}),
        ("send_bio", {"bio": 1, "cmd": 0, "dma": Dma.DEFERRED}),
    ]
    assert write_trace(out, Sizes(), events) == 3
    text = out.getvalue()
    assert '"kind": "ORDERED_WRITE"' in text  # enums by name on the wire
    trace = read_trace(io.StringIO(text), "t.jsonl")
    got = [(e.line, e.event, dict(e.params)) for e in trace]
    assert got == [
        (2, "backend_publish", {"barrier": True, "flush": False}),
        (3, "strategy", {"bio": 1, "kind": BioKind.ORDERED_WRITE}),
        (4, "send_bio", {"bio": 1, "cmd": 0, "dma": Dma.DEFERRED}),
    ]
    assert got[1][2]["kind"] is BioKind.ORDERED_WRITE


def test_events_unpack_as_line_event_params() -> None:
    trace = read_trace(lines(format_event("open", {})), "t")
    ((line, event, params),) = list(trace)
    assert (line, event, params) == (1, "open", {})


def test_header_sizes_are_used_for_parameter_domains() -> None:
    header = format_header(Sizes(bios=1))
    trace = read_trace(lines(header, format_event("strategy", {"bio": 1, "kind": "READ"})), "t")
    assert trace.sizes.bios == 1
    with pytest.raises(
        InputError, match=r"t:2: parameter bio of strategy is 1, which is not one of"
    ):
        list(trace)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"event": "teleport", "params": {}}', r"t:1: the model has no event 'teleport'"),
        ('{"event": "strategy", "params": {"bio": 0}}', r"t:1: event strategy takes parameters"),
        ('{"event": "strategy", "params": {"bio": 0, "kind": "SIDEWAYS"}}', r"t:1: parameter kind"),
        (
            '{"event": "backend_publish", "params": {"barrier": 1, "flush": false}}',
            r"t:1: parameter barrier of backend_publish is 1",
        ),
        ('{"params": {}}', r"t:1: missing `event`"),
        ('{"event": "open", "params": {}, "extra": 1}', r"t:1: unknown keys \['extra'\]"),
        ("[1, 2]", r"t:1: expected a JSON object, found list"),
        ('{"event": "open"', r"t:1: not a JSON object"),
        ('{"xbdspec_trace": 2}', r"t:1: trace format version 2 is not supported"),
        ('{"xbdspec_trace": 1, "sizes": {"disks": 2}}', r"t:1: unknown sizes \['disks'\]"),
        ('{"xbdspec_trace": 1, "sizes": {"bios": -1}}', r"t:1: size bios must be a non-negative"),
    ],
)
def test_malformed_lines_are_rejected_with_their_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(read_trace(lines(text), "t"))


def test_a_header_after_events_is_rejected() -> None:
    trace = read_trace(lines(format_event("open", {}), "", format_header(Sizes())), "t")
    with pytest.raises(InputError, match=r"t:3: a header line may only come first"):
        list(trace)


def test_a_correct_trace_is_valid_to_the_end() -> None:
    result = check_file(str(DATA / "startup.jsonl"))
    assert result.valid and result.exit_code == 0
    assert result.events == 13
    final = result.devices[0].final["model"]
    assert final["fe_state"] == "Connected" and final["drv_state"] == "CONNECTED"
    assert final["bio_stage"][0] == "DONE"


def test_a_step_the_model_does_not_allow_is_reported_at_its_line() -> None:
    result = check_file(str(DATA / "skipped_publish.jsonl"))
    first = result.first_divergence
    assert first is not None and result.exit_code == 1
    assert first.line == 4 and first.event == "backend_watch()"
    # a spurious interrupt is allowed once the event channel is bound
    assert first.allowed == ["unplug()", "frontend_watch()", "shutdown()", "interrupt()"]
    assert first.state["fe_state"] == "Initialised"
    assert result.events == 3  # checking stopped at the divergence


def test_an_event_outside_the_declaration_is_an_input_error_not_a_divergence() -> None:
    with pytest.raises(InputError, match=r"t:2: the model has no event 'flush_everything'"):
        check_jsonl(
            lines(
                format_event("backend_publish", {"barrier": False, "flush": False}),
                '{"event": "flush_everything"}',
            ),
            "t",
        )


def test_a_malformed_file_names_its_line() -> None:
    with pytest.raises(InputError, match=r"malformed.jsonl:3: not a JSON object"):
        check_file(str(DATA / "malformed.jsonl"))


def test_the_reader_is_lazy() -> None:
    """Events are decoded as they are read: a bad line late in a trace does not stop
    the earlier ones from being checked (streaming, one line in memory)."""

    def source() -> Iterator[str]:
        yield format_event("backend_publish", {"barrier": False, "flush": False}) + "\n"
        raise AssertionError("read past the first event")

    trace = read_trace(source(), "t")
    assert next(iter(trace)).event == "backend_publish"


def test_the_schema_names_exactly_the_models_events_and_enumerations() -> None:
    """docs/trace.schema.json must not drift from the declaration."""
    import enum
    import json

    from xbdspec.model.spec import build_spec

    schema = json.loads((Path(__file__).parents[2] / "docs" / "trace.schema.json").read_text())
    event = schema["$defs"]["event"]["properties"]
    spec = build_spec()
    assert set(event["event"]["enum"]) == {t.event for t in spec.transitions}
    declared = event["params"]["properties"]
    for t in spec.transitions:
        for p in t.params:
            values = p.domain_for(spec.sizes)
            assert p.name in declared, f"{t.event}: parameter {p.name} is not in the schema"
            if isinstance(values[0], enum.Enum):
                assert declared[p.name]["enum"] == [v.name for v in values]
    sizes = schema["$defs"]["header"]["properties"]["sizes"]["properties"]
    assert set(sizes) == {f for f in Sizes.__dataclass_fields__}


def test_the_public_names_are_exported() -> None:
    import xbdspec.traces as traces
    import xbdspec.traces.jsonl as jsonl

    for module in (traces, jsonl):
        assert all(hasattr(module, name) for name in module.__all__)
    assert {"read_trace", "write_trace", "format_event", "TraceEvent"} <= set(traces.__all__)
