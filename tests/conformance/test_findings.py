"""Every known finding has a minimal replay that reproduces it on the seed reference,
and the classifier names it; a divergence of another kind stays unclassified."""

from __future__ import annotations

import json

import pytest

from xbdspec.conformance.findings import BY_NAME, FINDINGS, classify
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import ReferenceImplementation
from xbdspec.conformance.replay import dumps, loads
from xbdspec.findings.catalogue import BY_NAME as CATALOGUE
from xbdspec.findings.replay import REPLAYS, program_path

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


def test_every_classified_finding_has_a_program() -> None:
    # each finding the classifier knows is replayed as a program (xbdspec/findings/replays)
    assert {f.name for f in FINDINGS} == {p.stem for p in REPLAYS.glob("*.jsonl")}


@pytest.mark.parametrize("name", sorted(f.name for f in FINDINGS))
def test_program_reproduces_and_round_trips(name: str) -> None:
    sizes, steps = loads(program_path(name).read_text(), f"replay:{name}")
    lock = LockStep(ReferenceImplementation(), sizes)
    divergence = run_program(lock.impl, lock, steps)
    assert divergence is not None, f"{name}: the replay ran clean"
    assert len(divergence.steps) == len(steps), divergence.report()
    finding = classify(divergence)
    assert finding is not None and finding.name in {name, *CATALOGUE[name].requires}
    assert BY_NAME[name].summary
    assert loads(dumps(sizes, steps))[1] == steps


def test_the_fixed_profile_is_never_classified() -> None:
    sizes, steps = loads(program_path("failed-mapping-leaks").read_text())
    lock = LockStep(ReferenceImplementation(), sizes)
    divergence = run_program(lock.impl, lock, steps)
    assert divergence is not None
    assert classify(divergence, "reference") is not None
    assert classify(divergence, "reference-fixed") is None
    assert classify(divergence, "some-unikernel") is None


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
