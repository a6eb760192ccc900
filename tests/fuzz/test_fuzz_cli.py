"""Fuzzing the command line, each run a real ``xbdspec`` process in its own process
group under a memory limit (:func:`hostile.run_limited`).

A value no option can take (below or above its bound, not a number, 128 KiB of digits,
bytes that are not UTF-8) is a usage error: exit status 2, a message naming the option
and its bound, the value shown as an excerpt (stderr stays short), no traceback, and
nothing left running.  A child the harness runs that spawns grandchildren and hangs is
killed with all of them -- at its time-out, and when xbdspec itself is interrupted.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import hostile
import pytest
from hypothesis import given
from hypothesis import strategies as st

#: (command, option, smallest, largest or None): the whole-number options and their bounds
WHOLE = [
    ("explore", "--commands", 1, 64),
    ("explore", "--bios", 1, 64),
    ("explore", "--ring-slots", 1, 64),
    ("explore", "--grants", 1, 4096),
    ("explore", "--grants-per-request", 1, 4096),
    ("explore", "--suspends", 0, 16),
    ("explore", "--unplugs", 0, 16),
    ("explore", "--max-users", 1, 16),
    ("explore", "--max-states", 1, None),
    ("explore", "--spin-cores", 1, 256),
    ("explore", "--spin-hash-bits", 10, 40),
    ("explore", "--spin-memory", 64, 1 << 22),
    ("explore", "--seed", -(1 << 63), (1 << 64) - 1),
    ("prove", "--jobs", 1, 256),
    ("simulate", "--ios", 1, 10_000_000),
    ("simulate", "--seed", -(1 << 63), (1 << 64) - 1),
    ("difftest", "--examples", 1, None),
    ("difftest", "--length", 1, None),
    ("difftest", "--seed", -(1 << 63), (1 << 64) - 1),
    ("check", "--nb-chars", 0, None),
]
#: (command, option): the options of a number of seconds or minutes above 0
POSITIVE = [("explore", "--spin-timeout"), ("difftest", "--timeout"), ("difftest", "--minutes")]
#: What the peak memory of a refused command stays under (it never gets to work).
REFUSED_PEAK_KIB = 400 << 10
#: Texts that are no number at all (float() refuses them too).
NOT_NUMBERS = st.one_of(
    st.sampled_from(["", " ", "abc", "0x10", "--", "\u00b2", "1,5", hostile.LONG_ARG + "x"]),
    st.text(alphabet="abcxyz-+. ", min_size=1, max_size=10),
)
#: Numbers that are not whole.
NOT_WHOLE = st.sampled_from(["1e3", "1.5", "2.0", "-0.5"])


@st.composite
def bad_whole(draw: st.DrawFn) -> tuple[str, str, str]:
    command, option, low, high = draw(st.sampled_from(WHOLE))
    outside = [st.integers(max_value=low - 1)]
    if high is not None:
        outside.append(st.integers(min_value=high + 1))
    value = draw(
        st.one_of(*(s.map(str) for s in outside), NOT_NUMBERS, NOT_WHOLE, st.just(hostile.LONG_ARG))
    )
    if high is None and value == hostile.LONG_ARG:
        value = "-" + value[1:]  # below the bound: 128 KiB of digits is a whole number
    return command, option, value


@st.composite
def bad_positive(draw: st.DrawFn) -> tuple[str, str, str]:
    command, option = draw(st.sampled_from(POSITIVE))
    value = draw(
        st.one_of(
            st.sampled_from(["0", "-1", "nan", "inf", "-inf", "0.0", "-0"]),
            st.floats(max_value=0).map(repr),
            NOT_NUMBERS,
        )
    )
    return command, option, value


def _refused(command: str, option: str, value: str | bytes) -> None:
    argv = [
        *hostile.XBDSPEC,
        command,
        option,
        os.fsdecode(value) if isinstance(value, bytes) else value,
    ]
    run = hostile.run_limited(argv, timeout=20)  # a refusal takes a second
    err = run.stderr.decode("utf-8", "replace")
    assert run.status == 2, (run.status, err[-2000:])
    assert f"argument {option}" in err, err[-2000:]
    assert len(run.stderr) < 4096, f"{len(run.stderr)} bytes of stderr: the value was echoed"
    assert "Traceback" not in err and "internal error" not in err
    assert run.peak_kib < REFUSED_PEAK_KIB, f"{run.peak_kib >> 10} MiB to refuse an argument"
    assert not run.survivors, run.survivors


@hostile.few(8)
@given(case=st.one_of(bad_whole(), bad_positive()))
def test_a_value_no_option_can_take_is_refused_naming_the_bound(
    case: tuple[str, str, str],
) -> None:
    _refused(*case)


def test_bytes_that_are_not_utf8_are_refused_too() -> None:
    _refused("explore", "--commands", b"\xff\xfe1")


def test_the_bounds_messages_say_what_the_bound_is_for() -> None:
    run = hostile.run_limited([*hostile.XBDSPEC, "explore", "--commands", "0"])
    assert b"give from 1 to 64 (the model needs a command to send a request)" in run.stderr
    run = hostile.run_limited(
        [*hostile.XBDSPEC, "explore", "--grants-per-request", "3", "--grants", "2"]
    )
    assert run.status == 2 and b"--grants-per-request 3 exceeds --grants 2" in run.stderr


CHILD = Path(__file__).resolve().parent / "children" / "hostile_child.py"


def _spawning_child(tmp: Path) -> tuple[str, Path]:
    pids = tmp / "pids"
    command = f"{sys.executable} -I -S {CHILD} spawn"
    return command, pids


def _dead(pids: list[int]) -> list[int]:
    """Those of ``pids`` still alive (zombies are dead), after a moment to die."""
    deadline = time.monotonic() + 5
    while True:
        alive = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_hanging_child_and_its_grandchildren_are_killed_at_its_time_out(tmp_path: Path) -> None:
    command, pids = _spawning_child(tmp_path)
    run = hostile.run_limited(
        [
            *hostile.XBDSPEC,
            "difftest",
            "--cmd",
            command,
            "--timeout",
            "0.5",
            "--examples",
            "1",
            "--length",
            "4",
            "--seed",
            "1",
            "--replay-dir",
            str(tmp_path / "replays"),
        ],
        env={"HOSTILE_PIDS": str(pids)},
        timeout=120,
    )
    err = run.stderr.decode("utf-8", "replace")
    assert run.status in (1, 2), (run.status, err[-2000:])
    assert "hangs" in run.stdout.decode() + err
    started = _pids(pids)
    assert len(started) >= 3, started  # the child and its two grandchildren, at least once
    assert _dead(started) == []


def test_an_interrupted_campaign_leaves_no_child_running(tmp_path: Path) -> None:
    """Ctrl-C while the child hangs: xbdspec stops with 130 and kills the child's group."""
    import subprocess

    command, pids = _spawning_child(tmp_path)
    proc = subprocess.Popen(
        [
            *hostile.XBDSPEC,
            "difftest",
            "--cmd",
            command,
            "--timeout",
            "60",
            "--examples",
            "1",
            "--seed",
            "1",
            "--replay-dir",
            str(tmp_path / "replays"),
        ],
        env={**os.environ, "HOSTILE_PIDS": str(pids)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd=hostile.REPO,
    )
    deadline = time.monotonic() + 60
    while len(_pids(pids)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("xbdspec did not stop on SIGINT")
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert _dead(_pids(pids)) == []
