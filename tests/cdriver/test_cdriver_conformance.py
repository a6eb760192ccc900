"""The compiled seed under ``xbdspec.conformance``: the adapter, the findings' replays, a
short random campaign in which the C driver and the reference never differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from xbdspec.cdriver import C_UNSUPPORTED_EVENTS, BuildResult, CDriverImplementation
from xbdspec.conformance import (
    SEED_SAFE,
    Campaign,
    Implementation,
    LockStep,
    classify,
    run_program,
)
from xbdspec.conformance.reference_adapter import reference_sizes
from xbdspec.conformance.replay import read
from xbdspec.findings.catalogue import BY_NAME
from xbdspec.findings.replay import REPLAYS


def replays() -> list[Path]:
    return sorted(REPLAYS.glob("*.jsonl")) if REPLAYS.is_dir() else []


def test_adapter_honours_the_contract(seed_build: BuildResult) -> None:
    impl = CDriverImplementation(seed_build)
    assert isinstance(impl, Implementation)
    caps = impl.capabilities()
    assert caps.name == "c-driver" and caps.events is not None
    assert not caps.events & C_UNSUPPORTED_EVENTS and "strategy" in caps.events
    observation = impl.reset(reference_sizes())
    assert observation.fault is None and observation.complete


@pytest.mark.parametrize("path", replays(), ids=lambda p: p.stem)
def test_finding_replay_shows_the_same_violation_on_the_c_driver(
    seed_build: BuildResult, path: Path
) -> None:
    sizes, steps = read(path)
    if any(step.event in C_UNSUPPORTED_EVENTS for step in steps):
        unsupported = sorted({s.event for s in steps} & C_UNSUPPORTED_EVENTS)
        pytest.skip(f"{path.name} needs {unsupported}, which the C adapter does not offer yet")
    lock = LockStep(CDriverImplementation(seed_build), sizes)
    divergence = run_program(lock.impl, lock, steps)
    assert divergence is not None, f"{path.name}: the C driver shows no divergence"
    assert divergence.fault is None or "differs from the reference" not in divergence.fault
    finding = classify(divergence)  # the findings are facts about the seed: any name
    # a finding whose fix builds on others shows first as one of them (docs/findings/)
    expected = {path.stem, *BY_NAME[path.stem].requires}
    assert finding is not None and finding.name in expected


def test_short_campaign_c_driver_never_differs_from_the_reference(seed_build: BuildResult) -> None:
    campaign = Campaign(
        lambda: CDriverImplementation(seed_build), reference_sizes(), SEED_SAFE, 5, 40, None
    )
    campaign.run(examples=15)
    assert campaign.steps > 100
    for divergence, _steps, _path, _count in campaign.divergences.values():
        assert "differs from the reference" not in (divergence.fault or "")


def test_a_twin_difference_is_reported(seed_build: BuildResult) -> None:
    """Deliberately desynchronise the C side: the adapter must report it as a fault."""
    impl = CDriverImplementation(seed_build)
    impl.reset(reference_sizes())
    assert impl.c is not None
    impl.c.grants_take(1)  # the C driver's pool is now one reference short
    observation = impl._compare("sabotage")
    assert observation.fault is not None and "grants_free" in observation.fault
