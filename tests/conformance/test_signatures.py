"""Exact signatures: a known finding claims a divergence only by one of its catalogued
signatures, each of which is backed by a replay its fix removes; anything else is new,
whichever finding's trigger it follows."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from xbdspec.reference.platform import Fixes

from xbdspec.conformance import mutation
from xbdspec.conformance.contract import Step
from xbdspec.conformance.findings import BY_NAME, FINDINGS, classify, near_findings
from xbdspec.conformance.harness import Divergence, LockStep
from xbdspec.conformance.known_signatures import KNOWN_SIGNATURES
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import ReferenceImplementation
from xbdspec.conformance.replay import read_configuration
from xbdspec.conformance.signatures import Signature, signature_of
from xbdspec.conformance.sweep import Configuration
from xbdspec.findings.catalogue import BY_NAME as CATALOGUE
from xbdspec.findings.replay import program_path

ROOT = Path(__file__).resolve().parents[2]


def _run(
    configuration: Configuration, steps: list[Step], fixes: Fixes
) -> tuple[Divergence | None, int]:
    impl = ReferenceImplementation(fixes)
    impl.configure(configuration.setup)
    lock = LockStep(impl, configuration.sizes)
    divergence = run_program(impl, lock, steps)
    return divergence, len(lock.steps)


def _fix_set(name: str) -> set[str]:
    return {name, *CATALOGUE[name].requires}


def _entries() -> list[tuple[str, dict[str, Any]]]:
    return [(name, entry) for name, entries in KNOWN_SIGNATURES.items() for entry in entries]


def _source_path(entry: dict[str, Any]) -> tuple[Path, str]:
    path, _, label = entry["source"].partition(" (")
    return ROOT / path, label.rstrip(")")


def test_every_classified_finding_has_its_own_replays_signature() -> None:
    assert set(KNOWN_SIGNATURES) <= {f.name for f in FINDINGS}
    for finding in FINDINGS:
        sources = [e["source"] for e in KNOWN_SIGNATURES.get(finding.name, ())]
        assert any(s.startswith("xbdspec/findings/replays/") for s in sources), finding.name


@pytest.mark.parametrize(
    ("name", "entry"), _entries(), ids=[f"{n}:{i}" for i, (n, _) in enumerate(_entries())]
)
def test_each_signature_is_its_replays_exactly_and_its_fix_removes_it(
    name: str, entry: dict[str, Any]
) -> None:
    path, label = _source_path(entry)
    configuration, steps = read_configuration(path)
    own = path.parent.name == "replays"
    fixes = Fixes.only(*CATALOGUE[name].requires) if label == "prerequisites" else Fixes()
    divergence, _ = _run(configuration, steps, fixes)
    assert divergence is not None, f"{path.name} runs clean"
    assert signature_of(divergence) == Signature.from_json(entry["signature"])
    finding = classify(divergence)
    assert finding is not None
    if own:
        # a finding whose fix builds on others may show as one of them on the seed
        assert finding.name in ({name} if label == "prerequisites" else _fix_set(name))
        return
    assert finding.name == name
    # the variant is the finding's: its fix removes it (with the other known defects'
    # fixes when the source says they met in the program)
    names = set(entry.get("fixes") or _fix_set(name))
    clean, applied = _run(configuration, steps, Fixes.only(*names))
    assert clean is None and applied == len(steps), path.name


def _own_divergence(name: str) -> Divergence:
    configuration, steps = read_configuration(program_path(name))
    divergence, _ = _run(configuration, steps, Fixes())
    assert divergence is not None
    return divergence


def test_a_divergence_with_another_field_or_transition_is_new() -> None:
    base = _own_divergence("failed-mapping-leaks")
    assert classify(base) is not None and classify(base).name == "failed-mapping-leaks"  # type: ignore[union-attr]
    # one more differing field: not the finding's signature, though on its trigger
    more = dataclasses.replace(
        base, finding=None, differences={**base.differences, "users": (0, 1)}
    )
    assert classify(more) is None
    assert "failed-mapping-leaks" in near_findings(more)
    # the same fields, but a different model transition
    other = dataclasses.replace(base, finding=None, transition="startio_send_bio_fails")
    assert classify(other) is None
    # the same everything, but a count going the other way
    name, (model, impl) = next((n, v) for n, v in base.differences.items() if n == "grants_free")
    flipped = dataclasses.replace(
        base, finding=None, differences={**base.differences, name: (impl, model)}
    )
    assert classify(flipped) is None


def test_a_mutant_on_a_known_findings_path_is_new_not_the_finding() -> None:
    """The issue's case: a defect near failed-mapping-leaks's trigger (the error path of
    xbd_queue_cb also forgets to complete the bio) is counted as new."""
    target = next(
        m
        for m in mutation.mutants()
        if m.function == "queue_cb" and m.description.startswith("drop call sc.platform.biodone")
    )
    configuration, steps = read_configuration(program_path("failed-mapping-leaks"))
    with mutation._Installed(target):
        divergence, _ = _run(configuration, steps, Fixes())
    assert divergence is not None
    assert classify(divergence) is None


def test_the_campaign_names_a_near_miss_and_fails(tmp_path: Path) -> None:
    from xbdspec.conformance.campaign import Campaign
    from xbdspec.conformance.program import FULL
    from xbdspec.conformance.sweep import REFERENCE_SWEEP

    target = next(
        m
        for m in mutation.mutants()
        if m.function == "queue_cb" and m.description.startswith("drop call sc.platform.biodone")
    )
    with mutation._Installed(target):
        campaign = Campaign(
            ReferenceImplementation,
            REFERENCE_SWEEP[0].sizes,
            FULL,
            1,
            60,
            tmp_path,
            configurations=REFERENCE_SWEEP,
            first=True,
        )
        campaign.run(examples=200)
    assert campaign.new_divergences and campaign.first_new is not None
    assert campaign.first_new["seconds"] > 0 and campaign.first_new["events"] > 0


def test_fault_signatures_keep_the_type_and_function_not_the_state() -> None:
    divergence = _own_divergence("flush-without-support-panics")
    signature = signature_of(divergence)
    assert signature.kind == "fault" and signature.fields == ()
    assert signature.fault == "KernelPanic: xbd_bio_command"
    assert BY_NAME["flush-without-support-panics"].claims(divergence)


def _met_together() -> list[tuple[str, dict[str, Any]]]:
    return [(n, e) for n, e in _entries() if "known defects met together" in e["source"]]


def test_known_defects_met_together_are_named_with_the_finding_that_claims_them() -> None:
    entries = _met_together()
    assert entries, "the harvest records variants that need several findings' fixes"
    for name, entry in entries:
        path, _ = _source_path(entry)
        configuration, steps = read_configuration(path)
        divergence, _ = _run(configuration, steps, Fixes())
        assert divergence is not None and classify(divergence) is not None
        assert divergence.finding == name and divergence.met_with
        # every finding it is met with has its fix among those the variant takes
        assert set(divergence.met_with) <= set(entry["fixes"])
        assert "met with" in divergence.report()


def test_the_harvest_explains_a_program_by_the_fewest_findings_met_together() -> None:
    from xbdspec.conformance.harvest import explained_by

    name, entry = max(_met_together(), key=lambda ne: int(ne[1]["source"].split("(")[1][0]))
    path, label = _source_path(entry)
    size = int(label.split()[0])
    configuration, steps = read_configuration(path)
    names, how, removing = explained_by(configuration, steps)
    assert how == f"{size} known defects met together" and name in names
    assert set(entry["fixes"]) == set(removing[name])
