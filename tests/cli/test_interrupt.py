"""Nothing recorded is lost (issue 19, item 3): on Ctrl-C, or an implementation's crash
after divergences were found, every command prints and writes what it had found (the
divergences, the seed, the replays) before it exits."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from xbdspec.proofs.results import Obligation

from xbdspec import output, verify
from xbdspec.cli import EXIT_INTERRUPTED, main
from xbdspec.conformance import campaign as freebsd_campaign
from xbdspec.conformance.contract import ImplementationError
from xbdspec.conformance.program import random_walk as real_walk
from xbdspec.explore.reference import explore_reference
from xbdspec.explore.target import ModelTarget

ROOT = Path(__file__).resolve().parents[2]


def test_sigint_after_the_first_violation_keeps_the_report_the_seed_and_the_replay(
    tmp_path: Path,
) -> None:
    """A campaign with no --seed under --json, sent SIGINT once it said its first
    violation: the document still has the seed, the violation and its replay file."""
    out = tmp_path / "divergences"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xbdspec",
            "difftest",
            "--impl",
            "tutorial",
            "--option",
            "broken=reuses-id",
            "--minutes",
            "2",
            "--json",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "XBDSPEC_PROGRESS": "off"},
    )
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None and proc.stdout is not None
        said: list[str] = []
        for line in proc.stderr:
            said.append(line)
            if "violation" in line:
                break
        proc.send_signal(signal.SIGINT)
        stdout, rest = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
    assert proc.returncode == EXIT_INTERRUPTED, "".join(said) + rest
    doc = json.loads(stdout)
    output.check(doc)
    assert doc["interrupted"] is True and doc["ok"] is False
    announced = next(line for line in said if "seed" in line)
    assert f"--seed {doc['seed']}" in announced  # the drawn seed, in both places
    assert doc["violations"] and doc["counts"]["violations"] == len(doc["violations"])
    replay = Path(doc["violations"][0]["replay_file"])
    assert replay.parent == out and replay.exists()
    assert "interrupted" in rest


def _freebsd(tmp_path: Path) -> list[str]:
    return [
        "difftest",
        "--contract",
        "freebsd",
        "--impl",
        "reference",
        "--examples",
        "200",
        "--seed",
        "5",
        "--json",
        "--out",
        str(tmp_path),
    ]


def _fail_after_first_divergence(
    monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> list[int]:
    """Make the FreeBSD campaign's random walk raise ``error`` once a divergence was
    recorded (a child that crashes, or Ctrl-C, mid-campaign)."""
    real = real_walk
    calls: list[int] = []

    def walk(impl: Any, lock: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(impl, lock, *args, **kwargs)
        calls.append(int(result.divergence is not None))
        if sum(calls) >= 1 and len(calls) > 1 and calls[-1] == 0:
            raise error
        return result

    monkeypatch.setattr(freebsd_campaign, "random_walk", walk)
    return calls


def test_a_childs_crash_after_divergences_reports_them_with_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_after_first_divergence(monkeypatch, ImplementationError("the child died (signal 11)"))
    status = main(_freebsd(tmp_path))
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    output.check(doc)
    # the verdict stands when a new divergence was found (1), else the error's status (2)
    assert status == doc["error"]["exit_status"] == (1 if doc["counts"]["new_divergences"] else 2)
    assert doc["error"]["kind"] == "child" and "signal 11" in doc["error"]["message"]
    assert doc["divergences"] and isinstance(doc["seed"], int)
    assert all(Path(d["replay"]).exists() for d in doc["divergences"])
    assert "the child died" in captured.err


def test_ctrl_c_in_a_freebsd_campaign_keeps_the_divergences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_after_first_divergence(monkeypatch, KeyboardInterrupt())
    assert main(_freebsd(tmp_path)) == EXIT_INTERRUPTED
    doc = json.loads(capsys.readouterr().out)
    output.check(doc)
    assert doc["interrupted"] is True and doc["divergences"] and "seed" in doc
    assert doc["counts"]["examples"] == doc["examples"] > 0


def test_ctrl_c_in_a_freebsd_campaign_prints_the_text_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_after_first_divergence(monkeypatch, KeyboardInterrupt())
    args = [a for a in _freebsd(tmp_path) if a != "--json"]
    assert main(args) == EXIT_INTERRUPTED
    text = capsys.readouterr().out
    assert "classified as known finding" in text and "replay:" in text
    assert "INTERRUPTED by Ctrl-C" in text and "--seed" in text


def test_ctrl_c_during_a_model_exploration_prints_what_was_explored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = ModelTarget.expand
    calls = [0]

    def expand(self: ModelTarget, state: Any) -> Any:
        calls[0] += 1
        if calls[0] == 300:
            raise KeyboardInterrupt
        return real(self, state)

    monkeypatch.setattr(ModelTarget, "expand", expand)
    assert main(["explore", "--commands", "2", "--json", "--quiet"]) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    output.check(doc)
    assert doc["interrupted"] is True and doc["complete"] is False
    assert doc["states"] >= 299 and doc["counts"]["states"] == doc["states"]
    assert "interrupted" in captured.err


def test_ctrl_c_during_the_reference_exploration_keeps_its_report() -> None:
    def stop(report: Any, queue: int) -> None:
        if report.states > 20:
            raise KeyboardInterrupt

    report = explore_reference(max_states=400, progress=stop)
    assert report.interrupted and not report.complete and report.states > 20
    assert report.as_json()["interrupted"] is True


def test_ctrl_c_during_the_proofs_keeps_the_obligations_done(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from xbdspec.proofs import cli as prove_cli

    calls = [0]

    def stopping(o: Obligation) -> Obligation:
        def run() -> Any:
            calls[0] += 1
            if calls[0] == 2:
                raise KeyboardInterrupt
            return o.run()

        return dataclasses.replace(o, run=run)

    registry = [stopping(o) for o in prove_cli._registry()]
    monkeypatch.setattr(prove_cli, "_registry", lambda: registry)
    argv = ["prove", "--only", "ring_*", "--jobs", "1", "--json"]
    assert main(argv) == EXIT_INTERRUPTED
    doc = json.loads(capsys.readouterr().out)
    output.check(doc)
    assert doc["interrupted"] is True and len(doc["obligations"]) == 1
    assert doc["not_run"] and doc["counts"]["obligations"] == 1


def test_ctrl_c_during_verify_summarises_the_stages_done(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = [
        verify.Stage("first", [sys.executable, "-c", "print('{}')"], lambda out: "fine"),
        verify.Stage("second", [sys.executable, "-c", "print('{}')"], lambda out: "fine"),
    ]
    real = verify._run_stage

    def run_stage(stage: verify.Stage, bar: Any) -> Any:
        if stage.name == "second":
            raise KeyboardInterrupt
        return real(stage, bar)

    monkeypatch.setattr(verify, "stages", lambda: stages)
    monkeypatch.setattr(verify, "_run_stage", run_stage)
    assert verify.run(argparse.Namespace(skip=[], json=False)) == EXIT_INTERRUPTED
    out = capsys.readouterr().out
    assert "first" in out and "1 of 1 stages passed" in out and "INTERRUPTED" in out


def test_ctrl_c_with_json_and_nothing_printed_still_gives_an_envelope(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from xbdspec.reference import simulate

    def interrupted(ios: int, seed: int) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(simulate, "run_simulation", interrupted)
    assert main(["simulate", "--json"]) == EXIT_INTERRUPTED
    doc = json.loads(capsys.readouterr().out)
    output.check(doc)
    assert doc["error"]["kind"] == "interrupted" and doc["error"]["exit_status"] == 130
