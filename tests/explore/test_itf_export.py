"""ITF export (``xbdspec itf``): every state of the trace is the model's own, read back
equal; integers beyond 2**53 travel as ``#bigint``; the format's frame is Apalache's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from explore_helpers import TINY, model, replace_transition
from xbdspec.model.concrete import Stepper
from xbdspec.model.spec import build_spec

from xbdspec import cli, itf
from xbdspec.conformance.harness import ModelSide
from xbdspec.conformance.replay import read
from xbdspec.explore.checker import check_model

ROOT = Path(__file__).resolve().parents[2]
FINDING = ROOT / "xbdspec" / "findings" / "replays" / "failed-mapping-leaks.jsonl"


def _states(doc: dict[str, object], spec: object) -> list[object]:
    states = doc["states"]
    assert isinstance(states, list)
    return [itf.decode_state(spec, s) for s in states]


def test_the_itf_frame_is_apalaches() -> None:
    doc = itf.from_replay(FINDING)
    assert set(doc) == {"#meta", "vars", "states"}
    assert doc["#meta"]["format"] == "ITF" and "adr" in doc["#meta"]["format-description"]
    spec = build_spec(read(FINDING)[0])
    assert doc["vars"] == [f.name for f in spec.fields]
    for index, state in enumerate(doc["states"]):
        assert state["#meta"]["index"] == index
        assert set(state) - {"#meta"} == set(doc["vars"])
    # enum members by name, arrays as ITF sequences
    first = doc["states"][0]
    assert first["fe_state"] == "Initialising" and isinstance(first["cmd_place"], list)
    assert json.loads(itf.dumps(doc)) == doc


def test_a_programs_states_are_the_models_steps_each_to_the_next() -> None:
    doc = itf.from_replay(FINDING)
    sizes, steps = read(FINDING)
    spec = build_spec(sizes)
    stepper = Stepper(spec)
    states = _states(doc, spec)
    assert states[0] == stepper.initial()
    for before, after, raw in zip(states[:-1], states[1:], doc["states"][1:], strict=True):
        taken = raw["#meta"]["transition"]
        assert (taken, after) in {(i.transition.name, a) for i, a in stepper.successors(before)}
    # after each program line, the state is one the harness's model side settles in
    side = ModelSide(sizes)
    lines = [s["#meta"].get("line") for s in doc["states"]]
    ends = [i for i in range(1, len(lines)) if i == len(lines) - 1 or lines[i + 1] != lines[i]]
    assert len(ends) == len(steps)
    state = states[0]
    for end, step in zip(ends, steps, strict=True):
        finals = [f for f, _ in side.closure(state, step.event, step.params, step.env)]
        assert states[end] in finals
        state = states[end]


def test_a_counterexample_round_trips_from_memory_and_from_its_replay_file(
    tmp_path: Path,
) -> None:
    broken = replace_transition(model(TINY), "startio_done", effect=lambda s, p: {})
    report = check_model(spec=broken, replay_dir=tmp_path)
    assert report.violations
    for violation in report.violations:
        cx = violation.counterexample
        doc = itf.from_counterexample(cx, broken)
        assert _states(doc, broken) == cx.states
        assert violation.replay is not None
        text = violation.replay.read_text(encoding="utf-8")
        from_file = itf.from_replay_text(text, str(violation.replay), spec=broken)
        assert _states(from_file, broken) == cx.states
        assert from_file["#meta"]["reproduced"] is True
        assert from_file["#meta"]["property"] == cx.property
        # a lasso's cycle start is ITF's loop (absent when the trace is no lasso)
        assert from_file.get("loop") == doc.get("loop") == cx.cycle_start


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (2**53 - 1, 2**53 - 1),
        (2**53, {"#bigint": str(2**53)}),
        (-(2**64) - 5, {"#bigint": str(-(2**64) - 5)}),
        ((1, 2**70), {"#tup": [1, {"#bigint": str(2**70)}]}),
        (frozenset({3, 1}), {"#set": [1, 3]}),
        ({1: True}, {"#map": [[1, True]]}),
    ],
)
def test_values_beyond_a_json_number_and_compound_values(value: object, encoded: object) -> None:
    assert itf.encode_value(value) == encoded
    text = json.dumps(itf.encode_value(value))
    assert itf.decode_value(json.loads(text)) == value


def test_a_state_with_a_big_integer_reads_back(tmp_path: Path) -> None:
    spec = build_spec(TINY)
    state = Stepper(spec).initial()
    encoded = itf.encode_state(spec, state)
    # an ITF writer may send any integer as #bigint (Apalache does): read as the same int
    encoded["req_prod"] = {"#bigint": str(state.req_prod)}
    assert itf.decode_state(spec, encoded) == state


def test_the_itf_command_writes_a_file_and_refuses_a_world_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trace.itf.json"
    assert cli.main(["itf", str(FINDING), "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["#meta"]["source"] == str(FINDING) and len(doc["states"]) > 7
    world = tmp_path / "w.jsonl"
    world.write_text(
        json.dumps({"xbdspec_trace": 2, "kind": "world-program"}) + "\n", encoding="utf-8"
    )
    assert cli.main(["itf", str(world)]) == cli.EXIT_INPUT
    assert "xbdspec check" in capsys.readouterr().err
