"""``xbdspec verify`` (``make verify``): the findings audit and the fixed profile are
stages, and any failing stage makes the exit status non-zero."""

from __future__ import annotations

import argparse
import json
import sys

import pytest

from xbdspec import verify
from xbdspec.cli import main
from xbdspec.findings.scenario import SCENARIOS, Run


def test_the_findings_and_the_fixed_profile_are_stages() -> None:
    by_name = {s.name: s.argv for s in verify.stages()}
    assert by_name["documented findings"][-2:] == ["findings", "--json"]
    assert "reference-fixed" in by_name["exploration (reference-fixed)"]
    fixed = by_name["differential campaign (reference-fixed)"]
    assert "reference-fixed" in fixed and "--strict" in fixed


def test_the_summaries_read_the_commands_json() -> None:
    audit = {"ok": True, "findings": 29, "reproduced": 29, "fixed": 29}
    assert verify._findings_summary(json.dumps(audit)).endswith("as documented")
    audit["ok"] = False
    assert "NOT as documented" in verify._findings_summary(json.dumps(audit))
    explored = {"states": 10, "complete": False, "depth": 3, "violations": [{"known": False}]}
    assert "1 divergences, 1 new" in verify._explore_reference_summary(json.dumps(explored))


def test_a_failing_stage_fails_verify(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = [
        verify.Stage("passes", [sys.executable, "-c", "print('{}')"], lambda out: "fine"),
        verify.Stage("fails", [sys.executable, "-c", "raise SystemExit(1)"], lambda out: ""),
    ]
    monkeypatch.setattr(verify, "stages", lambda: stages)
    assert verify.run(argparse.Namespace(skip=[])) == 1
    out = capsys.readouterr().out
    assert "1 of 2 stages passed; failed: fails" in out
    assert verify.run(argparse.Namespace(skip=["fails"])) == 0


def test_a_finding_that_stops_reproducing_fails_the_audit_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "close-clears-open-flag"
    saved = SCENARIOS[name]

    def clean(run: Run) -> None:
        run.step("nothing goes wrong any more")

    SCENARIOS[name] = clean
    try:
        assert main(["findings", "--json", name]) == 1
    finally:
        SCENARIOS[name] = saved
    data = json.loads(capsys.readouterr().out)
    assert not data["ok"] and data["verdicts"][0]["problems"] == [
        "does not reproduce on the seed's behaviour"
    ]


def test_a_stage_left_out_says_why_in_the_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = [
        verify.Stage("passes", [sys.executable, "-c", "print('{}')"], lambda out: "fine"),
        verify.Stage("absent", [], lambda out: "", "skipped: no seed driver at /x"),
    ]
    monkeypatch.setattr(verify, "stages", lambda: stages)
    assert verify.run(argparse.Namespace(skip=[])) == 0
    out = capsys.readouterr().out
    assert "absent" in out and "skipped: no seed driver at /x" in out
    assert "1 of 1 stages passed; 1 left out (said above)" in out


def test_every_front_end_of_the_protocol_contract_is_a_stage_run_or_said_left_out() -> None:
    stages = {s.name: s for s in verify.stages() if s.name.startswith("protocol conformance")}
    assert set(stages) == {
        f"protocol conformance ({impl})"
        for impl in ("tutorial", "reference", "reference-fixed", "seed", "c-frontend", "linux")
    }
    for stage in stages.values():
        assert (stage.argv and "--json" in stage.argv) or stage.skipped.startswith("skipped: ")


def test_the_protocol_summary_names_new_violations_and_documented_findings() -> None:
    report = {
        "programs": 3,
        "ios": 7,
        "seed": 1,
        "compared": {"requests read from the ring": 9, "xenstore commits": 4},
        "reached": {"rules": {"a": 1, "b": 2}},
        "violations": [{"known": "ordered-write-indirect-barrier"}, {"known": None}],
    }
    text = verify._protocol_summary(json.dumps(report))
    assert "1 new violations, 1 documented findings (ordered-write-indirect-barrier)" in text
    assert "9 requests read" in text and "2 rules reached" in text
