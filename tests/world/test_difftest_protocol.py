"""``xbdspec difftest`` under the protocol contract: what it compares, what it reached,
the replays of its violations, and what it refuses.

Every interleaving is decided by the seeded programs (``--seed``); nothing is timed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xbdspec.cli import main
from xbdspec.world.campaign import load_tutorial

BROKEN = load_tutorial().BROKEN


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = capsys.readouterr().out
    result = json.loads(out)
    assert isinstance(result, dict)
    return result


def test_the_tutorial_passes_and_the_report_says_what_was_compared_and_reached(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["difftest", "--impl", "tutorial", "--examples", "60", "--seed", "5", "--json"]
    assert main([*argv, "--replay-dir", str(tmp_path)]) == 0
    result = _json(capsys)
    assert result["contract"] == "protocol" and result["seed"] == 5
    compared = result["compared"]
    assert isinstance(compared, dict)
    for kind in (
        "xenstore commits",
        "requests read from the ring",
        "completions",
        "read data compared",
        "grants ended",
        "notifications",
    ):
        assert compared[kind] > 0, kind
    reached = result["reached"]
    assert isinstance(reached, dict)
    assert "frontend_write_request" in reached["rules"]
    assert "frontend_connected" in reached["rules"]
    # what was never reached is named, not hidden
    assert set(reached["never"]).isdisjoint(reached["rules"])
    assert result["violations"] == []
    assert list(tmp_path.iterdir()) == []
    # the same seed is the same campaign
    assert main([*argv, "--replay-dir", str(tmp_path)]) == 0
    again = _json(capsys)
    assert again["compared"] == compared and again["reached"] == reached


@pytest.mark.parametrize("broken", BROKEN)
def test_each_broken_tutorial_fails_with_a_short_replay_that_replays(
    broken: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["difftest", "--impl", "tutorial", "--option", f"broken={broken}"]
    status = main(
        [*argv, "--examples", "40", "--seed", "2", "--json", "--replay-dir", str(tmp_path)]
    )
    assert status == 1
    result = _json(capsys)
    violations = result["violations"]
    assert isinstance(violations, list) and violations
    first = violations[0]
    assert len(first["replay"]) < 10, first
    path = Path(first["replay_file"])
    assert path.is_file()
    # the replay names its front end and options: it replays on its own
    assert main(["difftest", "--replay", str(path), "--json"]) == 1
    replayed = _json(capsys)
    assert replayed["violation"] is not None
    rule = replayed["violation"]["rule"]
    assert "".join(c for c in rule if not c.isdigit()) == "".join(
        c for c in first["rule"] if not c.isdigit()
    )
    # the correct tutorial runs the same replay clean
    assert main(["difftest", "--replay", str(path), "--impl", "tutorial"]) == 0
    capsys.readouterr()
    # the protocol trace beside it is a file `xbdspec check` reads
    trace = path.with_suffix(".protocol.jsonl")
    assert main(["check", str(trace)]) in (0, 1)


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ("connected-too-early", "frontend_connected requires"),
        # the harness sees the wire id reused; the trace carries it as the step the
        # protocol model refuses (the same model id: the renaming is consistent)
        ("reuses-id", "frontend_write_request requires: the id is not in flight"),
    ],
)
def test_the_offline_check_of_the_trace_finds_the_model_violation_the_harness_found(
    broken: str, says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["difftest", "--impl", "tutorial", "--option", f"broken={broken}"]
    assert main([*argv, "--examples", "3", "--seed", "1", "--replay-dir", str(tmp_path)]) == 1
    capsys.readouterr()
    (trace,) = tmp_path.glob("*.protocol.jsonl")
    assert main(["check", str(trace), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "violation"
    assert says in report["violation"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--examples", "0"],
        ["--examples", "-5"],
        ["--length", "0"],
        ["--minutes", "-1"],
        ["--minutes", "nan"],
        ["--minutes", "inf"],
        ["--timeout", "0"],
    ],
)
def test_arguments_that_make_no_test_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["difftest", "--impl", "tutorial", *argv])
    assert caught.value.code == 2
    assert "makes no test" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--impl", "nonsense"], "no front end 'nonsense'"),
        (["--impl", "tutorial", "--option", "broken=nope"], "no broken variant"),
        (["--impl", "tutorial", "--option", "colour=red"], "takes no option 'colour'"),
        (["--impl", "tutorial", "--option", "noequals"], "KEY=VALUE"),
        (["--impl", "tutorial", "--sizes", "ring-full"], "--contract freebsd"),
        (["--impl", "tutorial", "--strict"], "--contract freebsd"),
        (["--impl", "xbdspec.world.harness:Bio"], "has no otherend_changed"),
        ([], "name the front end"),
    ],
)
def test_what_cannot_run_is_an_error_that_says_why(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["difftest", "--examples", "1", *argv]) == 2
    assert says in capsys.readouterr().err


class Silent:
    """A front end that does nothing at all: it never takes part in the handshake."""

    def __init__(self, env: object) -> None:
        self.env = env

    def otherend_changed(self) -> None:
        pass

    def interrupt(self) -> None:
        pass

    def submit(self, bio: object) -> None:
        pass

    def shutdown(self) -> None:
        pass


def test_a_front_end_that_does_nothing_compared_nothing_and_never_passes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(
        [
            "difftest",
            "--impl",
            f"{__name__}:Silent",
            "--examples",
            "5",
            "--seed",
            "1",
            "--replay-dir",
            str(tmp_path),
        ]
    )
    # it never connects, so no bio is owed a completion: the campaign compared no I/O,
    # which is never a pass
    assert status == 2
    assert "compared no requests read from the ring" in capsys.readouterr().err


class Raising(Silent):
    """A front end whose submit raises: a failure of the implementation."""

    def submit(self, bio: object) -> None:
        raise RuntimeError("out of cheese")


def test_an_exception_in_the_front_end_is_a_shrunk_violation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["difftest", "--impl", f"{__name__}:Raising", "--examples", "5", "--seed", "1"]
    assert main([*argv, "--json", "--replay-dir", str(tmp_path)]) == 1
    result = _json(capsys)
    (violation,) = result["violations"]
    assert "RuntimeError: out of cheese" in violation["rule"]
    assert len(violation["replay"]) <= 2
    # every program that submitted a bio after the handshake showed it
    assert violation["seen"] >= 2


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ('{"xbdspec": "replay", "version": 1}\n', "replay of the freebsd contract"),
        ("[1, 2]\n", "JSON object"),
        (
            '{"xbdspec_trace": 2, "kind": "world-program", "config": {"max_queues": 1000000}}\n',
            "max_queues must be a whole number from 0 to 16",
        ),
        (
            '{"xbdspec_trace": 2, "kind": "world-program", "config": {"colour": 1}}\n',
            "no setting 'colour'",
        ),
        (
            '{"xbdspec_trace": 2, "kind": "world-program"}\n{"event": "explode"}\n',
            "'explode' is no harness event",
        ),
        (
            '{"xbdspec_trace": 2, "kind": "world-program"}\n{"event": "serve", "x": 1}\n',
            "an event line is",
        ),
    ],
)
def test_a_hostile_replay_file_is_refused_naming_its_line(
    text: str, says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(text, encoding="utf-8")
    status = main(
        ["difftest", "--contract", "protocol", "--impl", "tutorial", "--replay", str(path)]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_check_refuses_a_replay_and_points_at_its_trace(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"xbdspec_trace": 2, "kind": "world-program"}\n', encoding="utf-8")
    assert main(["check", str(path)]) == 2
    assert "xbdspec difftest --replay" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("true", "ended before its hello: exit status 0"),
        ("sh -c 'exit 3'", "exit status 3"),
        ("sh -c 'kill -SEGV $$'", "signal"),
        ("cat /dev/null", "ended before its hello"),
        ("/nonexistent/frontend", "cannot start"),
    ],
)
def test_a_child_that_cannot_take_part_never_passes(
    command: str, says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(
        [
            "difftest",
            "--cmd",
            command,
            "--examples",
            "3",
            "--seed",
            "1",
            "--replay-dir",
            str(tmp_path),
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert says in err, err
    assert "Traceback" not in err


def test_the_tutorial_over_stdio_passes_and_compares_what_in_process_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import sys

    from xbdspec.resources import data_dir

    child = f"{sys.executable} {data_dir('examples') / 'stdio_frontend.py'}"
    argv = ["--examples", "20", "--seed", "4", "--json", "--replay-dir", str(tmp_path)]
    assert main(["difftest", "--cmd", child, *argv]) == 0
    over_stdio = _json(capsys)
    assert over_stdio["ios"] > 0 and over_stdio["compared"]["requests read from the ring"] > 0
    # a broken child is caught and its replay runs again over stdio
    status = main(["difftest", "--cmd", f"{child} --broken reuses-id", *argv])
    assert status == 1
    broken = _json(capsys)
    replay = broken["violations"][0]["replay_file"]
    assert main(["difftest", "--cmd", f"{child} --broken reuses-id", "--replay", replay]) == 1
    assert main(["difftest", "--cmd", child, "--replay", replay]) == 0
    capsys.readouterr()


CRASHES_ON_THIRD_RESET = """
import json, sys
resets = 0
for line in sys.stdin:
    message = json.loads(line)
    if message["type"] == "hello":
        hello = {"type": "hello", "protocol": 2, "name": "crashy",
                 "calls": ["otherend_changed", "interrupt", "submit"], "ops": ["read", "write"]}
        print(json.dumps(hello), flush=True)
    elif message["type"] == "reset":
        resets += 1
        if resets == 3:
            sys.exit(7)
        print(json.dumps({"type": "done"}), flush=True)
    elif message["type"] == "call":
        print(json.dumps({"type": "done"}), flush=True)
    else:
        break
"""


def test_a_crash_at_reset_is_a_violation_even_when_it_needs_the_programs_before(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import sys

    child = tmp_path / "crashy.py"
    child.write_text(CRASHES_ON_THIRD_RESET, encoding="utf-8")
    argv = ["difftest", "--cmd", f"{sys.executable} {child}", "--examples", "5", "--seed", "1"]
    assert main([*argv, "--json", "--replay-dir", str(tmp_path / "r")]) == 1
    result = _json(capsys)
    (violation,) = result["violations"]
    assert "crashed in its reset: exit status 7" in violation["rule"]
    assert violation["alone"] is False and violation["event"] == 0
