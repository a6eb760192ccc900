"""Differential testing speed: environment events per second, model and reference in
lock step in one process.

Each event is applied to the reference through the adapter, the model's internal steps
that explain it are searched, the observation (the refinement mapping) is compared
field by field and every model invariant is evaluated on the model's states.  Seeded
random programs (profile seed-safe, so that no program stops early on a known finding),
timed in processor time; the C queue core over the stdio protocol is measured too, and
the default campaign of ``xbdspec difftest --contract freebsd`` (the sweep) on the
reference-fixed profile.  Mutation testing is in ``bench_mutation``.
"""

from __future__ import annotations

import random
import time
from typing import Any

from xbdspec.model.state import Sizes
from xbdspec.reference.platform import Fixes

from xbdspec.conformance.builtin import CompilerMissing, build_c_core
from xbdspec.conformance.campaign import Campaign
from xbdspec.conformance.contract import Implementation
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import FULL, SEED_SAFE, Profile, random_walk
from xbdspec.conformance.reference_adapter import ReferenceImplementation, reference_sizes
from xbdspec.conformance.subprocess_impl import SubprocessImplementation
from xbdspec.conformance.sweep import REFERENCE_SWEEP


def _rate(impl: Implementation, sizes: Sizes, profile: Profile, programs: int) -> dict[str, Any]:
    lock = LockStep(impl, sizes)
    steps = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(programs):
        result = random_walk(impl, lock, random.Random(f"bench:{i}"), 60, profile)
        steps += len(result.steps)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    impl.close()
    return {
        "programs": programs,
        "steps": steps,
        "steps_per_cpu_second": round(steps / cpu, 1),
        "steps_per_wall_second": round(steps / wall, 1),
    }


#: the differential harness's goal on the reference in process (issue 17)
GOAL_EVENTS_PER_CPU_SECOND = 5_000


def _long_campaign(programs: int = 3_000, measured: int = 1_000) -> dict[str, Any]:
    """A campaign as long as a user's (``programs`` seeded seed-safe programs): the
    rate over its last ``measured`` programs, once the memo tables hold the states that
    recur, and over the whole; and, as the baseline measured in the same run, the same
    events applied to the reference alone (no model, no comparison)."""
    impl = ReferenceImplementation()
    sizes = reference_sizes()
    lock = LockStep(impl, sizes)
    programs_steps = []
    total_cpu = time.process_time()
    for i in range(programs - measured):
        programs_steps.append(random_walk(impl, lock, random.Random(f"bench:{i}"), 60, SEED_SAFE))
    cpu, steps = time.process_time(), 0
    for i in range(programs - measured, programs):
        result = random_walk(impl, lock, random.Random(f"bench:{i}"), 60, SEED_SAFE)
        programs_steps.append(result)
        steps += len(result.steps)
    cpu = time.process_time() - cpu
    total_cpu = time.process_time() - total_cpu
    total_steps = sum(len(r.steps) for r in programs_steps)
    alone = time.process_time()
    for result in programs_steps[-measured:]:
        impl.reset(sizes)
        for step in result.steps:
            impl.apply(step.event, step.params, step.env)
    alone = time.process_time() - alone
    impl.close()
    rate = steps / cpu
    return {
        "programs": programs,
        "measured_programs": measured,
        "steps_measured": steps,
        "steps_per_cpu_second": round(rate, 1),
        "steps_per_cpu_second_whole_campaign": round(total_steps / total_cpu, 1),
        "reference_alone_steps_per_cpu_second": round(steps / alone, 1),
        "ratio_to_reference_alone": round(alone / cpu, 3),
        "goal_steps_per_cpu_second": GOAL_EVENTS_PER_CPU_SECOND,
        "meets_goal": rate >= GOAL_EVENTS_PER_CPU_SECOND,
        "meets_goal_whole_campaign": total_steps / total_cpu >= GOAL_EVENTS_PER_CPU_SECOND,
    }


def run() -> dict[str, Any]:
    """The figures recorded in docs/benchmarks.md (## Differential testing)."""
    results: dict[str, Any] = {
        "reference_in_process": _rate(ReferenceImplementation(), reference_sizes(), SEED_SAFE, 200),
        "reference_in_process_long_campaign": _long_campaign(),
    }
    try:
        exe = build_c_core()
    except CompilerMissing as exc:
        results["c_queue_core_stdio"] = {"skipped": str(exc)}
    else:
        results["c_queue_core_stdio"] = _rate(
            SubprocessImplementation([str(exe)]), Sizes(), FULL, 200
        )
    results["default_campaign_reference_fixed"] = _default_campaign()
    return results


def _default_campaign() -> dict[str, Any]:
    """The default sweep (200 programs, seed 1) on the reference with every fix on: its
    rate, and the coverage targets it reached."""
    campaign = Campaign(
        lambda: ReferenceImplementation(Fixes.all(), name="reference-fixed"),
        REFERENCE_SWEEP[0].sizes,
        FULL,
        1,
        60,
        None,
        configurations=REFERENCE_SWEEP,
    )
    cpu = time.process_time()
    campaign.run(examples=200)
    cpu = time.process_time() - cpu
    targets = campaign.target_report()
    return {
        "configurations": len(REFERENCE_SWEEP),
        "programs": campaign.examples,
        "steps": campaign.steps,
        "steps_per_cpu_second": round(campaign.steps / cpu, 1),
        "wall_seconds": round(campaign.seconds, 2),
        "divergences": len(campaign.divergences),
        "targets_reached": targets["transitions"]["reached"],
        "targets_declared": targets["transitions"]["declared"],
        "targets_unreached": targets["transitions"]["unreached"],
    }
