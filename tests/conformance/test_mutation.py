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
