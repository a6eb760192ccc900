"""``xbdspec explore --target reference``: the driver code explored in lock-step with
the model; its departures are the seed's documented findings, each replayable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from xbdspec.reference.platform import Fixes

from xbdspec.cli import main
from xbdspec.conformance.findings import classify
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import ReferenceImplementation
from xbdspec.conformance.replay import read
from xbdspec.explore.reference import explore_reference


def test_a_bounded_exploration_finds_only_known_findings_and_they_replay(tmp_path: Path) -> None:
    report = explore_reference(max_states=450, replay_dir=tmp_path)
    assert report.states == 450 and not report.complete
    assert report.violations, "the seed's findings should show within these bounds"
    assert report.new == []
    for violation in report.violations.values():
        assert violation.replay is not None
        sizes, steps = read(violation.replay)
        lock = LockStep(ReferenceImplementation(), sizes)
        divergence = run_program(lock.impl, lock, steps)
        assert divergence is not None
        finding = classify(divergence, "reference")
        assert finding is not None and finding.name == violation.property


def test_the_command_reports_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["explore", "--target", "reference", "--max-states", "30", "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out["target"] == "reference" and out["states"] == 30 and out["complete"] is False
    for key in ("transitions", "depth", "seconds", "states_per_second", "violations", "sizes"):
        assert key in out


def test_the_fixed_profile_explores_clean_and_reports_what_it_is(tmp_path: Path) -> None:
    report = explore_reference(max_states=300, replay_dir=tmp_path, fixes=Fixes.all())
    assert report.states == 300 and report.implementation == "reference-fixed"
    assert report.violations == {}
    assert report.as_json()["target"] == "reference-fixed"


def test_a_fixed_profile_divergence_is_never_known(monkeypatch: pytest.MonkeyPatch) -> None:
    # break one fix's code path: the fixed profile's divergence must count as new
    import xbdspec.reference.driver as driver

    real = driver.cm_thaw
    monkeypatch.setattr(driver, "cm_thaw", lambda sc, cm: None)
    report = explore_reference(max_states=200, fixes=Fixes.all())
    assert report.violations and all(not v.known for v in report.violations.values())
    monkeypatch.setattr(driver, "cm_thaw", real)
