"""Every documented finding reproduces on the seed's behaviour and is gone with its fix;
the audit catches a finding that stops reproducing, a fix that does nothing, and a
catalogue out of step with the fixes and the replays."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from xbdspec.reference.platform import Fixes

from xbdspec.cli import main
from xbdspec.findings import audit as audit_module
from xbdspec.findings.audit import audit_finding, consistency_problems, fixes_for
from xbdspec.findings.catalogue import BY_NAME, FINDINGS, REJECTED, Severity
from xbdspec.findings.replay import kind_of, program_path, replay, run_program
from xbdspec.findings.scenario import SCENARIOS, Run


@pytest.mark.parametrize("name", [f.name for f in FINDINGS])
def test_finding_reproduces_on_the_seed_and_not_with_its_fix(name: str) -> None:
    verdict = audit_finding(BY_NAME[name])
    assert verdict.ok, f"{name}: {verdict.problems}"
    seed, fixed = verdict.outcomes["seed"], verdict.outcomes["fixed"]
    assert seed.violation and fixed.clean and verdict.outcomes["all-fixes"].clean
    # the same events, clean with the fix (a fault ends the seed's run early; a fix that
    # refuses the device ends the fixed run early)
    shorter = min(len(seed.steps), len(fixed.steps))
    assert shorter > 0 and fixed.steps[:shorter] == seed.steps[:shorter]


def test_catalogue_fixes_and_replays_agree() -> None:
    assert consistency_problems() == []
    assert [f.name for f in FINDINGS] == list(Fixes.names())
    assert all(kind_of(f.name) is not None for f in FINDINGS)


def test_every_finding_is_documented_in_full() -> None:
    for f in FINDINGS:
        assert f.title and f.summary and f.explanation and f.how_found and f.fix, f.name
        assert f.seed_functions and all(s.startswith(("xbd_", "xs_")) for s in f.seed_functions)
        assert isinstance(f.severity, Severity)
    assert len(REJECTED) >= 5
    assert all(r.looks_wrong and r.why_not for r in REJECTED)


def test_a_prerequisite_is_not_the_finding_in_disguise() -> None:
    dependent = [f for f in FINDINGS if f.requires]
    assert dependent, "some finding's fix builds on another's"
    for f in dependent:
        outcome = replay(f.name, Fixes.only(*f.requires))
        assert outcome.violation is not None
        if outcome.kind == "program":
            assert outcome.classified_as == f.name


# ----------------------------------------------------------------- the audit can fail


@pytest.fixture
def fake_scenario() -> Iterator[str]:
    """A scenario registered under a real finding's name for the test's duration."""
    name = "close-clears-open-flag"
    saved = SCENARIOS[name]
    yield name
    SCENARIOS[name] = saved


def test_a_finding_that_no_longer_reproduces_is_reported(fake_scenario: str) -> None:
    def clean(run: Run) -> None:
        run.step("nothing happens")

    SCENARIOS[fake_scenario] = clean
    verdict = audit_finding(BY_NAME[fake_scenario])
    assert "does not reproduce on the seed's behaviour" in verdict.problems


def test_a_fix_that_does_not_fix_is_reported(fake_scenario: str) -> None:
    def always(run: Run) -> None:
        run.step("the seed misbehaves whatever the fixes")
        run.expect(False, "the requirement")

    SCENARIOS[fake_scenario] = always
    verdict = audit_finding(BY_NAME[fake_scenario])
    assert any(p.startswith("still violated with its fix") for p in verdict.problems)
    assert any(p.startswith("violated with every fix on") for p in verdict.problems)


def test_a_misclassified_program_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # pretend the flush finding's program documents the unsupported-bio leak instead
    finding = dataclasses.replace(BY_NAME["flush-without-support-panics"])
    monkeypatch.setattr(
        audit_module,
        "replay",
        lambda name, fixes: replay("unsupported-bio-leaks-grants", fixes),
    )
    verdict = audit_finding(finding)
    assert any("classified as unsupported-bio-leaks-grants" in p for p in verdict.problems)


def test_a_catalogue_without_a_fix_field_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = dataclasses.replace(FINDINGS[0], name="a-finding-with-no-fix")
    monkeypatch.setattr(audit_module, "FINDINGS", (*FINDINGS, extra))
    monkeypatch.setattr(audit_module, "BY_NAME", {**BY_NAME, extra.name: extra})
    assert "finding a-finding-with-no-fix has no Fixes field" in consistency_problems()


def test_fixes_for_turns_on_the_prerequisites() -> None:
    for f in FINDINGS:
        assert set(fixes_for(f).enabled()) == {f.name, *f.requires}


def test_unknown_fix_names_are_refused() -> None:
    with pytest.raises(ValueError, match="no fix is named"):
        Fixes.only("not-a-finding")


# ----------------------------------------------------------------- command line


def test_cli_audit_passes_and_reports_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["findings", "--json", "close-clears-open-flag", "response-id-trusted"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["findings"] == 2 and data["reproduced"] == 2 and data["fixed"] == 2


def test_cli_show_prints_the_counterexample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["findings", "--show", "resume-loses-ready-write"]) == 0
    out = capsys.readouterr().out
    assert "strategy(bio=1, kind=ORDERED_WRITE)" in out and "NoLostIO" in out
    assert out.rstrip().endswith("as documented")


def test_cli_unknown_finding_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["findings", "no-such-finding"]) == 2
    assert "no finding is named 'no-such-finding'" in capsys.readouterr().err


def test_an_unrelated_fault_does_not_pass_for_the_finding(fake_scenario: str) -> None:
    from xbdspec.reference.faults import KernelPanic

    def unrelated(run: Run) -> None:
        run.step("something else breaks")
        raise KernelPanic("xbd_somewhere", "an unrelated panic")

    SCENARIOS[fake_scenario] = unrelated
    verdict = audit_finding(BY_NAME[fake_scenario])
    assert any(
        p.startswith("the seed's violation is not the documented one") for p in verdict.problems
    )


def test_every_scenario_finding_says_what_it_shows() -> None:
    for f in FINDINGS:
        if kind_of(f.name) == "scenario":
            assert f.shows, f.name


def test_a_program_stopping_at_a_disabled_event_is_not_clean(tmp_path: Path) -> None:
    source = program_path("flush-without-support-panics").read_text().splitlines()
    path = tmp_path / "stops.jsonl"
    # a close with nobody having opened the disk: the model does not enable it
    path.write_text("\n".join([source[0], '{"event": "close", "params": {}}']) + "\n")
    outcome = run_program("flush-without-support-panics", path, Fixes.all())
    assert outcome.violation == "event 1 (close()) is not enabled in the model"
