"""The differential test of the reference against the model (hypothesis, ci profile),
and seeded random programs that show the rare paths are reached."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test
from xbdspec.model.spec import build_spec
from xbdspec.reference.platform import Fixes

from xbdspec.conformance.contract import INTERNAL_EVENTS
from xbdspec.conformance.findings import FINDINGS, FIXED_PROFILE
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import FULL, SEED_SAFE, random_walk
from xbdspec.conformance.reference_adapter import REFERENCE_SIZES, REFUSED, ReferenceImplementation
from xbdspec.conformance.stateful import Tally, conformance_machine, rules_of

CI = settings(settings(), stateful_step_count=30)
#: the secondary size variants run fewer examples (the main one runs the profile's)
SECONDARY = settings(CI, max_examples=min(25, CI.max_examples))


@pytest.mark.parametrize("variant", sorted(REFERENCE_SIZES))
def test_reference_conforms_under_the_seed_safe_profile(variant: str, tmp_path: Path) -> None:
    """Every step of every program agrees with the model, and no invariant breaks on
    the reference's abstract state, where the profile avoids the known findings."""
    tally = Tally()
    machine = conformance_machine(
        ReferenceImplementation,
        REFERENCE_SIZES[variant],
        profile=SEED_SAFE,
        known_ok=False,
        replay_path=tmp_path / "failing.jsonl",
        tally=tally,
    )
    run_state_machine_as_test(machine, settings=CI if variant == "command-shortage" else SECONDARY)
    assert tally.steps > 0 and tally.known == {}


def test_reference_divergences_are_all_known_findings(tmp_path: Path) -> None:
    """Under the full profile the seed's defects show up, and each is a known finding."""
    tally = Tally()
    machine = conformance_machine(
        ReferenceImplementation,
        REFERENCE_SIZES["command-shortage"],
        profile=FULL,
        replay_path=tmp_path / "failing.jsonl",
        tally=tally,
    )
    run_state_machine_as_test(machine, settings=CI)
    assert tally.known, "the full profile should meet some of the seed's known defects"
    assert set(tally.known) <= {f.name for f in FINDINGS}


def test_rules_are_the_models_environment_events() -> None:
    """The generated rules, the model's environment events and the reference adapter's
    handlers are the same set (differences printed both ways)."""
    sizes = REFERENCE_SIZES["ring-full"]
    lock = LockStep(ReferenceImplementation(), sizes)
    model_events = set(lock.model.environment_events)
    rules = rules_of(conformance_machine(ReferenceImplementation, sizes))
    handlers = {
        name[4:] for name in dir(ReferenceImplementation) if name.startswith("_on_")
    } | REFUSED
    assert model_events - rules == set() and rules - model_events == set()
    assert model_events - handlers == set(), (
        f"events without an adapter handler: {model_events - handlers}"
    )
    assert handlers - model_events == set(), (
        f"handlers for no model event: {handlers - model_events}"
    )
    internal = set(build_spec(sizes).events()) - model_events
    assert internal == set(INTERNAL_EVENTS), (
        f"internal events differ: {internal ^ set(INTERNAL_EVENTS)}"
    )


#: The rare paths each size variant reaches, checked in a few seeded programs.
RARE = {
    "command-shortage": {
        "startio_command_shortage",
        "startio_wait_idle",
        "startio_send_ready",
        "deferred_mapping_done",
        "suspend_begin",
        "suspend_drained",
    },
    "grant-shortage": {"startio_grant_shortage", "grant_callback", "deferred_mapping_done"},
    "ring-full": {"startio_wait_idle", "startio_send_ready", "deferred_mapping_done"},
}


@pytest.mark.parametrize("variant", sorted(RARE))
def test_rare_paths_are_reached_and_agree(variant: str) -> None:
    lock = LockStep(ReferenceImplementation(), REFERENCE_SIZES[variant])
    for seed in range(40):
        result = random_walk(lock.impl, lock, random.Random(f"rare:{seed}"), 60, SEED_SAFE)
        assert result.divergence is None, result.divergence.report()
    fired = lock.coverage.transitions
    missing = {t for t in RARE[variant] if fired[t] == 0}
    assert missing == set(), f"never reached: {missing}"
    # suspend with requests in flight (the drain waits for the ring)
    assert variant != "command-shortage" or lock.coverage.transitions["suspend_drained"] > 0


@pytest.mark.parametrize("variant", sorted(REFERENCE_SIZES))
def test_reference_fixed_conforms_under_the_full_profile(variant: str, tmp_path: Path) -> None:
    """With every fix on, the reference agrees with the model on every program, the known
    findings' territory included (docs/findings/)."""
    tally = Tally()
    machine = conformance_machine(
        lambda: ReferenceImplementation(Fixes.all(), name=FIXED_PROFILE),
        REFERENCE_SIZES[variant],
        profile=FULL,
        known_ok=False,
        replay_path=tmp_path / "failing.jsonl",
        tally=tally,
    )
    run_state_machine_as_test(machine, settings=CI if variant == "command-shortage" else SECONDARY)
    assert tally.steps > 0 and tally.known == {}


@pytest.mark.parametrize("variant", sorted(RARE))
def test_reference_fixed_random_walks_agree(variant: str) -> None:
    lock = LockStep(ReferenceImplementation(Fixes.all()), REFERENCE_SIZES[variant])
    for seed in range(40):
        result = random_walk(lock.impl, lock, random.Random(f"fixed:{seed}"), 60, FULL)
        assert result.divergence is None, result.divergence.report()
