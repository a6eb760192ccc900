"""Replay files: written, loaded and replayed; malformed lines named by number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from explore_helpers import TINY, model, replace_transition

from xbdspec.errors import InputError
from xbdspec.explore.checker import check_model
from xbdspec.explore.replay import ReplayError, load_replay, replay_on_model


def _broken() -> Any:
    return replace_transition(model(TINY), "startio_done", effect=lambda s, p: {})


def test_replay_round_trip_reproduces_every_violation(tmp_path: Path) -> None:
    spec = _broken()
    report = check_model(spec=spec, replay_dir=tmp_path)
    assert report.violations
    for violation in report.violations:
        assert violation.replay is not None and violation.replay.exists()
        replay = load_replay(violation.replay)
        assert replay.property == violation.counterexample.property
        assert len(replay.events) == len(violation.counterexample.steps)
        outcome = replay_on_model(replay, spec)
        assert outcome.reproduced, outcome.detail
        assert outcome.states == violation.counterexample.states


def test_replay_format_reads_like_the_seed(tmp_path: Path) -> None:
    report = check_model(spec=_broken(), replay_dir=tmp_path)
    replay_path = report.violations[0].replay
    assert replay_path is not None
    lines = replay_path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["xbdspec"] == "replay" and header["sizes"]["commands"] == 2
    events = [json.loads(line) for line in lines[1:]]
    assert {"event": "strategy", "params": {"bio": 0, "kind": "READ"}} in events


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


HEADER = json.dumps(
    {
        "xbdspec": "replay",
        "version": 1,
        "target": "model",
        "sizes": {"commands": 2, "bios": 1, "suspends": 0, "unplugs": 0},
        "property": "NoLostIO",
        "kind": "invariant",
    }
)


@pytest.mark.parametrize(
    ("lines", "where", "words"),
    [
        ((HEADER, "{not json"), ":2", "not valid JSON"),
        ((HEADER, '{"event": "open"}'), ":2", "has the keys"),
        ((HEADER, '{"event": "open", "params": {}, "env": 3}'), ":2", "'env' must be an object"),
        ((HEADER, '{"event": "open", "params": {}}', "[1, 2]"), ":3", "expected a JSON object"),
        (('{"xbdspec": "other"}',), ":1", "not an xbdspec replay header"),
        ((HEADER.replace('"invariant"', '"bogus"'),), ":1", "'kind'"),
        ((HEADER.replace('"bios": 1', '"bees": 1'),), ":1", "bees"),
        ((HEADER, '{"event": "open", "params": {"x": [1]}}'), ":2", "parameter 'x'"),
    ],
)
def test_malformed_replays_name_the_line(
    tmp_path: Path, lines: tuple[str, ...], where: str, words: str
) -> None:
    path = _write(tmp_path, *lines)
    with pytest.raises(InputError) as caught:
        load_replay(path)
    assert f"{path}{where}:" in str(caught.value)
    assert words in str(caught.value)


def test_unknown_events_and_parameters_name_the_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, HEADER, '{"event": "interrupt", "params": {}}', '{"event": "fly", "params": {}}'
    )
    with pytest.raises(InputError, match=r":3: the model has no event 'fly'"):
        replay_on_model(load_replay(path))
    path = _write(
        tmp_path, HEADER, '{"event": "strategy", "params": {"bio": 0, "kind": "SIDEWAYS"}}'
    )
    with pytest.raises(InputError, match=r":2: parameter kind='SIDEWAYS'"):
        replay_on_model(load_replay(path))


def test_an_event_the_model_refuses_is_a_replay_error(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER, '{"event": "interrupt", "params": {}}')
    with pytest.raises(ReplayError, match=r":2: .*not allowed"):
        replay_on_model(load_replay(path))


def test_an_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_replay(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match=":1: the file is empty"):
        load_replay(_write(tmp_path))


def test_conformance_replays_are_read_too(tmp_path: Path) -> None:
    """The conformance package's programs (no property, ``env`` choices) load and run."""
    from xbdspec.conformance import replay as conformance_replay

    spec = _broken()
    cx = check_model(spec=spec).violations[0].counterexample
    path = _write(tmp_path, *(conformance_replay.dumps(spec.sizes, []).splitlines()))
    assert load_replay(path).property is None
    ours = tmp_path / "ours.jsonl"
    from xbdspec.explore.replay import write_replay

    write_replay(ours, cx, spec.sizes)
    sizes, steps = conformance_replay.read(ours)
    assert sizes == spec.sizes and len(steps) == len(cx.steps)
