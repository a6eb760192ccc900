"""The mutation engine: a mutant that breaks the freeze accounting is killed by the
differential test, and the driver is restored afterwards."""

from __future__ import annotations

import random

from xbdspec.reference import driver, lifecycle

from xbdspec.conformance import mutation
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import SEED_SAFE, random_walk
from xbdspec.conformance.reference_adapter import ReferenceImplementation, reference_sizes


def test_a_thaw_dropping_mutant_is_killed_and_undone() -> None:
    original_startio = vars(lifecycle)["startio"]
    target = next(
        m
        for m in mutation.mutants()
        if m.function == "cm_thaw" and m.description.startswith("drop call thaw")
    )
    kill, how = mutation.killed(target, programs=10)
    assert kill, how
    # the driver and every copy of its functions are back
    assert vars(lifecycle)["startio"] is original_startio is driver.startio
    lock = LockStep(ReferenceImplementation(), reference_sizes())
    for seed in range(5):
        assert random_walk(lock.impl, lock, random.Random(seed), 40, SEED_SAFE).divergence is None


def test_every_target_function_has_mutants() -> None:
    functions = {m.function for m in mutation.mutants()}
    assert functions == set(mutation.TARGETS)


def test_lifecycle_mutants_and_fix_only_sites_are_found() -> None:
    pool = mutation.mutants(("driver", "lifecycle"))
    assert {m.module for m in pool} == {"driver", "lifecycle"}
    assert {m.function for m in pool if m.module == "lifecycle"} == set(mutation.LIFECYCLE_TARGETS)
    fix_only = [m for m in pool if m.fix_only]
    # e.g. the failed-mapping-leaks fix's block in xbd_queue_cb is fix-only
    assert any(m.function == "queue_cb" and "cm_thaw" in m.description for m in fix_only)
    assert all(m.key.startswith(f"{m.module}.{m.function}#") for m in pool)


def test_the_default_campaign_kills_a_mutant_and_times_it() -> None:
    target = next(
        m
        for m in mutation.mutants()
        if m.function == "cm_thaw" and m.description.startswith("drop call thaw")
    )
    verdict = mutation.campaign_kill(target, examples=60)
    assert verdict.killed and verdict.seconds is not None and verdict.events
    assert not mutation.campaign_kill(None, examples=20).killed


def test_every_equivalent_survivor_names_a_mutant_with_a_reason() -> None:
    keys = {m.key for m in mutation.mutants(("driver", "lifecycle"))}
    assert set(mutation.EQUIVALENT) <= keys
    assert all(len(why) > 20 for why in mutation.EQUIVALENT.values())


def test_a_lifecycle_mutant_keeps_the_modules_classes() -> None:
    """Only functions are mutated: a SuspendSleep a mutated xbd_suspend returns is still
    the class the adapter knows (else a sleeping suspend looked finished)."""
    seed_class = lifecycle.SuspendSleep
    mutant = next(m for m in mutation.mutants(("lifecycle",)) if m.function == "_suspend_wait")
    with mutation._Installed(mutant):
        assert lifecycle.SuspendSleep is seed_class
        assert lifecycle._suspend_wait is not None
    assert lifecycle.SuspendSleep is seed_class


def test_the_protocol_campaign_kills_what_the_freebsd_fields_do_not_show() -> None:
    """A ring-page-order one less than the pages the front end publishes: the FreeBSD
    model's fields do not hold the key's value, the protocol contract's campaign (the
    second half of the default campaigns) sees blkif.h's rule broken; the unmutated seed
    shows nothing new there."""
    import inspect

    source, _ = inspect.getsourcelines(lifecycle)
    line = next(
        number
        for number, text in enumerate(source, start=1)
        if '"ring-page-order", str(u32(fls(sc.xbd_ring_pages) - 1))' in text
    )
    target = next(
        m
        for m in mutation.mutants(("lifecycle",))
        if m.function == "initialize" and m.line == line and m.description == "1 -> 2"
    )
    verdict = mutation.protocol_kill(target, programs=40)
    assert verdict.killed and verdict.how.startswith("protocol: "), verdict
    assert "ring-page-order" in verdict.how
    assert not mutation.protocol_kill(None, programs=40).killed
