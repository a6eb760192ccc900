"""The stdio protocol: the C queue core conforms through it, its broken build is
caught, and hostile or broken children give clear errors, never tracebacks."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test
from xbdspec.model.state import Sizes

from xbdspec.cli import main
from xbdspec.conformance.campaign import Campaign
from xbdspec.conformance.contract import ImplementationError
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import FULL, random_walk
from xbdspec.conformance.stateful import Tally, conformance_machine
from xbdspec.conformance.subprocess_impl import SubprocessImplementation

SIZES = Sizes()
CI = settings(settings(), stateful_step_count=30)


def test_c_core_conforms_in_the_stateful_test(c_core: Path, tmp_path: Path) -> None:
    tally = Tally()
    machine = conformance_machine(
        lambda: SubprocessImplementation([str(c_core)]),
        SIZES,
        profile=FULL,
        known_ok=False,
        replay_path=tmp_path / "failing.jsonl",
        tally=tally,
        reuse=True,
    )
    try:
        run_state_machine_as_test(machine, settings=CI)
    finally:
        machine.close_shared()  # type: ignore[attr-defined]
    assert tally.steps > 0


def test_c_core_conforms_in_random_programs(c_core: Path) -> None:
    impl = SubprocessImplementation([str(c_core)])
    lock = LockStep(impl, SIZES)
    try:
        for seed in range(40):
            result = random_walk(impl, lock, random.Random(f"c:{seed}"), 40, FULL)
            assert result.divergence is None, result.divergence.report()
    finally:
        impl.close()
    fired = lock.coverage.transitions
    for rare in (
        "startio_wait_idle",
        "deferred_mapping_done",
        "deferred_mapping_fails",
        "startio_reject",
    ):
        assert fired[rare] > 0, f"{rare} never fired"


def test_broken_c_core_is_caught_with_a_replay(
    c_core: Path, c_core_broken: Path, tmp_path: Path
) -> None:
    """``-DBREAK_THAW`` (one line: a command's thaw forgets the count) is caught by a
    short seeded campaign, shrunk, written as a replay file that reproduces it."""
    campaign = Campaign(
        lambda: SubprocessImplementation([str(c_core_broken)]),
        SIZES,
        FULL,
        seed=1,
        length=40,
        replay_dir=tmp_path,
    )
    campaign.run(examples=30)
    assert campaign.new_divergences, "the broken build was not caught"
    divergence = campaign.new_divergences[0]
    # the forgotten thaw shows as the count itself, its invariant, or a command the
    # model sends (the queue thawed) that the broken core holds back (still frozen)
    held_back = "cmd_place" in divergence.differences and "startio_send_bio" in divergence.path
    assert (
        "frozen" in divergence.differences
        or "FreezeAccounting" in divergence.invariants
        or held_back
    ), divergence.report()
    assert len(divergence.steps) <= 6, divergence.report()
    replay = next(path for d, _, path, _ in campaign.divergences.values() if d is divergence)
    assert replay is not None and replay.exists()
    assert (
        main(
            [
                "difftest",
                "--contract",
                "freebsd",
                "--cmd",
                str(c_core_broken),
                "--replay",
                str(replay),
                "--json",
            ]
        )
        == 1
    )
    # the same program passes on the correct build
    assert (
        main(["difftest", "--contract", "freebsd", "--cmd", str(c_core), "--replay", str(replay)])
        == 0
    )


# --------------------------------------------------------------------------- hostile children

HELLO = (
    '{"id": 1, "ok": true, "name": "toy", "start": "connected", '
    '"features": {"barrier": true, "flush": true}, "events": ["strategy"]}'
)


def child(*responses: str, then: str = "") -> list[str]:
    """A child that answers each request with the next canned response (``{id}`` is
    replaced by the request's id), then runs ``then``."""
    script = (
        "import sys, json\n"
        f"responses = {list(responses)!r}\n"
        "for canned in responses:\n"
        "    line = sys.stdin.readline()\n"
        "    if not line: break\n"
        "    rid = json.loads(line)['id']\n"
        "    sys.stdout.write(canned.replace('{id}', str(rid)) + '\\n'); sys.stdout.flush()\n"
        + then
    )
    return [sys.executable, "-c", script]


def observation(fields: str) -> str:
    return (
        '{"id": {id}, "ok": true, "observation": {"complete": false, "fault": null, "fields": '
        + fields
        + "}}"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (child("not json at all"), "not JSON"),
        (child('{"id": 99, "ok": true}'), "does not answer request 1"),
        (child("[1, 2]"), "must be a JSON object"),
        (child(HELLO, '{"id": {id}, "ok": false, "error": "out of cheese"}'), "out of cheese"),
        (child(HELLO, observation('{"frozen": -3}')), "not in the field's domain"),
        (child(HELLO, observation('{"no_such_field": 1}')), "is not a field of the model"),
        (child(HELLO, observation('{"cmd_place": [0]}')), "must be a list of 2 values"),
        (child(HELLO, then="sys.exit(3)\n"), "(exit status 3)"),  # gone before or after reading
        (child(HELLO, then="import os, time\nos.close(1)\ntime.sleep(30)\n"), "closed its output"),
        (child('{"id": 1, "ok": true, "name": "x", "events": ["fly"]}'), "does not have"),
        ([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"], "process"),
        (["/nonexistent/xbdspec-impl"], "cannot start"),
    ],
)
def test_hostile_child_gives_a_clear_error(argv: list[str], expected: str) -> None:
    impl = SubprocessImplementation(argv)
    with pytest.raises(ImplementationError) as info:
        LockStep(impl, SIZES).start()
    message = str(info.value)
    assert expected in message
    if "cannot start" not in expected:
        assert "implementation process" in message and "message" in message
    assert impl.proc is None  # the child was stopped


def test_cli_reports_a_broken_child_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    command = f"{sys.executable} -c \"print('garbage')\""
    assert (
        main(
            [
                "difftest",
                "--contract",
                "freebsd",
                "--cmd",
                command,
                "--examples",
                "1",
                "--seed",
                "1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "not JSON" in err and "Traceback" not in err
