"""Progress from tqdm on a terminal only (issue 20, item 2): a bar on standard error
when it is a terminal, nothing (no ``\\r`` lines) in a pipe, never under ``--json`` on
the same terminal, and relayed to ``xbdspec verify`` from the stage it runs."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from xbdspec import terminal, verify

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--commands", "1", "--bios", "1", "--ring-slots", "1", "--grants", "2"]


def _run(argv: list[str], *, stderr_tty: bool, stdout_tty: bool = False) -> tuple[str, str]:
    """Run ``xbdspec ARGV``; standard error (and standard output) on a pseudo-terminal
    when asked.  Returns what was written to standard output and to the terminal (or
    the pipe) of standard error."""
    env = {k: v for k, v in os.environ.items() if k != "XBDSPEC_PROGRESS"}
    env["COLUMNS"] = "120"
    master, slave = pty.openpty() if stderr_tty else (-1, -1)
    if stderr_tty:  # a terminal of 40 lines of 120 columns (a new one has none)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "xbdspec", *argv],
        cwd=ROOT,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave if stderr_tty else subprocess.PIPE,
        env=env,
    )
    if not stderr_tty:
        out, err = proc.communicate(timeout=300)
        return out.decode(), err.decode()
    # the parent keeps its end of the terminal open until it has read everything: Linux
    # drops what is unread on a terminal once its last holder closes it
    seen = b""
    out = b""
    streams: list[Any] = [master] + ([] if proc.stdout is None else [proc.stdout])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        finished = proc.poll() is not None
        ready, _, _ = select.select(streams, [], [], 0.2)
        if master in ready:
            seen += os.read(master, 65536)
        if proc.stdout is not None and proc.stdout in ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            out += chunk
            if not chunk:
                streams.remove(proc.stdout)
        if finished and not ready:
            break
    proc.wait(timeout=60)
    if proc.stdout is not None:
        proc.stdout.close()
    os.close(slave)
    os.close(master)
    return out.decode(), seen.decode(errors="replace")


def _bare_carriage_returns(text: str) -> list[str]:
    """``\\r`` not part of a terminal's ``\\r\\n`` line end: a redrawn (progress) line."""
    return re.findall(r"\r(?!\n)", text)


def test_no_progress_and_no_carriage_return_in_a_pipe() -> None:
    out, err = _run(["explore", *SMALL], stderr_tty=False)
    assert "explored the model" in out
    assert "\r" not in err and "states/s" not in err and "it/s" not in err
    assert err == ""


def test_a_bar_on_a_terminal() -> None:
    out, err = _run(["explore", *SMALL], stderr_tty=True)
    assert "explored the model" in out
    assert "explore" in err and "states" in err
    assert _bare_carriage_returns(err), "tqdm redraws its bar with a carriage return"


def test_no_bar_under_json_when_the_document_shares_the_terminal() -> None:
    _, screen = _run(["explore", *SMALL, "--json"], stderr_tty=True, stdout_tty=True)
    assert '"tool": "xbdspec"' in screen
    assert not _bare_carriage_returns(screen)


def test_a_minutes_campaign_shows_its_progress_and_time_left(tmp_path: Path) -> None:
    argv = ["difftest", "--impl", "tutorial", "--minutes", "0.05", "--seed", "1", "--out"]
    out, err = _run([*argv, str(tmp_path)], stderr_tty=True)
    assert "programs" in out
    assert "difftest" in err and "left" in err and "programs" in err


def test_relay_mode_writes_json_lines_a_parent_reads() -> None:
    env = {**os.environ, "XBDSPEC_PROGRESS": "relay"}
    proc = subprocess.run(
        [sys.executable, "-m", "xbdspec", "explore", *SMALL[2:], "--commands", "2", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    relayed = [terminal.parse_relay(line) for line in proc.stderr.splitlines()]
    updates = [r for r in relayed if r is not None]
    assert updates and all(r["what"].startswith("explore") for r in updates)
    assert updates[-1]["done"] >= updates[0]["done"] > 0
    assert "states" in terminal.relayed_text(updates[-1]) or updates[-1]["figures"]
    assert proc.stdout.lstrip().startswith("{")  # the document stays clean


def test_the_mode_follows_the_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.delenv("XBDSPEC_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", Stream(True))
    monkeypatch.setattr(sys, "stdout", Stream(False))
    assert terminal.mode() == "bar" and terminal.mode(json_output=True) == "bar"
    assert terminal.mode(enabled=False) == "off"
    monkeypatch.setattr(sys, "stdout", Stream(True))
    assert terminal.mode(json_output=True) == "off"
    monkeypatch.setattr(sys, "stderr", Stream(False))
    assert terminal.mode() == "off"
    monkeypatch.setenv("XBDSPEC_PROGRESS", "relay")
    assert terminal.mode() == "relay"


def test_verify_relays_a_stages_progress_to_its_bar() -> None:
    line = terminal.RELAY_PREFIX + '{"what": "explore", "done": 812, "figures": {"depth": 14}}'
    stage = verify.Stage(
        "relaying",
        [sys.executable, "-c", f"import sys; print({line!r}, file=sys.stderr); print('{{}}')"],
        lambda out: "fine",
    )

    class Bar:
        def __init__(self) -> None:
            self.updates: list[dict[str, Any]] = []

        def update(self, done: int | None = None, **figures: Any) -> None:
            self.updates.append(figures)

    bar = Bar()
    result, _, err = verify._run_stage(stage, bar)
    assert result.status == "ok" and err == ""  # the relayed line is not the stage's error
    assert bar.updates == [{"what": "relaying", "progress": "812, depth 14"}]
