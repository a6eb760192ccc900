"""Every known finding has a minimal replay that reproduces it on the seed reference,
and the classifier names it; a divergence of another kind stays unclassified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xbdspec.conformance.findings import BY_NAME, FINDINGS, classify
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import ReferenceImplementation
from xbdspec.conformance.replay import dumps, loads

HEADER = json.dumps(
    {
        "xbdspec": "replay",
        "version": 1,
        "sizes": {
            "commands": 2,
            "bios": 4,
            "ring_slots": 4,
            "grants": 12,
            "grants_per_request": 11,
        },
    }
)


def connect(barrier: bool, flush: bool) -> list[str]:
    b, f = ("true" if barrier else "false"), ("true" if flush else "false")
    return [
        f'{{"event": "backend_publish", "params": {{"barrier": {b}, "flush": {f}}}}}',
        '{"event": "backend_watch", "params": {}}',
        '{"event": "frontend_watch", "params": {}}',
        '{"event": "backend_watch", "params": {}}',
    ]


OPEN = '{"event": "open", "params": {}}'


def bio(n: int, kind: str, *dma: str) -> str:
    env = f', "env": {{"dma": {list(dma)!r}}}'.replace("'", '"') if dma else ""
    return f'{{"event": "strategy", "params": {{"bio": {n}, "kind": "{kind}"}}{env}}}'


def ev(event: str, **params: object) -> str:
    return json.dumps({"event": event, "params": params})


#: finding -> the replay lines after the header
REPLAYS: dict[str, list[str]] = {
    "flush-without-support-panics": [*connect(False, False), OPEN, bio(0, "FLUSH")],
    "unsupported-bio-leaks-grants": [*connect(False, False), OPEN, bio(0, "UNSUPPORTED")],
    "failed-mapping-leaks": [
        *connect(True, True),
        OPEN,
        bio(0, "WRITE", "DEFERRED"),
        ev("dma_callback_error", cmd=0),
    ],
    "deferred-single-step-unpublished": [
        *connect(False, True),
        OPEN,
        bio(0, "ORDERED_WRITE", "DEFERRED"),
    ],
    "resume-cancelled-does-not-restart": [
        *connect(True, True),
        OPEN,
        ev("suspend"),
        ev("suspend_drained"),
        bio(0, "WRITE"),
        ev("resume", cancelled=True),
    ],
    "stale-features-after-resume": [
        *connect(True, True),
        ev("suspend"),
        ev("suspend_drained"),
        ev("resume", cancelled=False),
        ev("backend_publish", barrier=False, flush=False),
        ev("frontend_watch"),
        ev("backend_watch"),
    ],
    "resume-loses-ready-write": [
        *connect(False, True),
        OPEN,
        bio(0, "WRITE"),
        bio(1, "ORDERED_WRITE"),
        ev("suspend"),
        ev("backend_consume", cmd=0),
        ev("backend_respond", cmd=0, status="OKAY"),
        ev("interrupt"),
        ev("suspend_drained"),
        ev("resume", cancelled=False),
    ],
    "suspend-ignores-deferred-mappings": [
        *connect(True, True),
        OPEN,
        bio(0, "WRITE", "DEFERRED"),
        ev("suspend"),
        ev("suspend_timeout"),
    ],
    "unsupported-bio-waits-for-a-command": [
        *connect(True, True),
        OPEN,
        bio(0, "WRITE"),
        bio(1, "WRITE"),
        bio(2, "UNSUPPORTED"),
    ],
    "stranded-bios-on-disk-gone": [
        *connect(True, True),
        OPEN,
        ev("suspend"),
        ev("suspend_drained"),
        ev("resume", cancelled=False),
        bio(0, "READ"),
        ev("unplug"),
        ev("backend_offline"),
        ev("backend_watch"),
    ],
    "otherend-state-read-afresh": [
        *connect(True, True),
        OPEN,
        ev("unplug"),
        ev("backend_offline"),
        ev("close"),
    ],
}


def test_every_finding_has_a_replay() -> None:
    assert set(REPLAYS) == {f.name for f in FINDINGS}


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_replay_reproduces_the_finding(name: str) -> None:
    sizes, steps = loads("\n".join([HEADER, *REPLAYS[name]]), f"replay:{name}")
    lock = LockStep(ReferenceImplementation(), sizes)
    divergence = run_program(lock.impl, lock, steps)
    assert divergence is not None, f"{name}: the replay ran clean"
    assert len(divergence.steps) == len(steps), divergence.report()
    finding = classify(divergence)
    assert finding is not None and finding.name == name, divergence.report()
    assert BY_NAME[name].summary
    # the replay file round-trips
    assert loads(dumps(sizes, steps))[1] == steps


def test_an_unknown_divergence_is_not_classified() -> None:
    sizes, steps = loads("\n".join([HEADER, *connect(True, True), OPEN]))
    lock = LockStep(ReferenceImplementation(), sizes)
    assert run_program(lock.impl, lock, steps) is None
    impl = lock.impl
    assert isinstance(impl, ReferenceImplementation)
    impl._sc().xbd_qfrozen_cnt += 1
    divergence = lock.step("interrupt", {}) if lock.enabled("interrupt") else lock.step("close", {})
    assert divergence is not None
    assert classify(divergence) is None


def test_public_names_are_exported() -> None:
    import xbdspec.conformance as package

    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


REPLAY_FILES = Path(__file__).resolve().parents[1] / "replays"


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_the_committed_replay_file_is_the_finding_replay(name: str) -> None:
    # tests/replays/<finding>.jsonl: what other tests (the compiled seed's) replay
    path = REPLAY_FILES / f"{name}.jsonl"
    assert path.read_text() == "\n".join([HEADER, *REPLAYS[name]]) + "\n", (
        f"{path} is stale: rewrite it from REPLAYS"
    )
