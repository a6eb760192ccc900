"""Differential testing speed: environment events per second, model and reference in
lock step in one process.

Each event is applied to the reference through the adapter, the model's internal steps
that explain it are searched, the observation (the refinement mapping) is compared
field by field and every model invariant is evaluated on the model's states.  Seeded
random programs (profile seed-safe, so that no program stops early on a known finding),
timed in processor time; the C queue core over the stdio protocol is measured too.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from xbdspec.model.state import Sizes

from xbdspec.conformance import mutation
from xbdspec.conformance.builtin import CompilerMissing, build_c_core
from xbdspec.conformance.contract import Implementation
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import FULL, SEED_SAFE, Profile, random_walk
from xbdspec.conformance.reference_adapter import ReferenceImplementation, reference_sizes
from xbdspec.conformance.subprocess_impl import SubprocessImplementation


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


def run() -> dict[str, Any]:
    """The figures recorded in docs/benchmarks.md (## Differential testing)."""
    results: dict[str, Any] = {
        "reference_in_process": _rate(ReferenceImplementation(), reference_sizes(), SEED_SAFE, 200),
    }
    try:
        exe = build_c_core()
    except CompilerMissing as exc:
        results["c_queue_core_stdio"] = {"skipped": str(exc)}
    else:
        results["c_queue_core_stdio"] = _rate(
            SubprocessImplementation([str(exe)]), Sizes(), FULL, 200
        )
    results["mutation"] = _mutation(os.environ.get("XBDSPEC_BENCH_MUTANTS", ""))
    return results


def _mutation(wanted: str) -> dict[str, Any]:
    """Mutation score of the differential test on the reference's request path
    (``XBDSPEC_BENCH_MUTANTS``: a number of mutants drawn, or ``all``; minutes)."""
    if not wanted:
        return {"skipped": "set XBDSPEC_BENCH_MUTANTS=all (or a number) to run it"}
    count = 10**9 if wanted == "all" else int(wanted)
    started = time.perf_counter()
    verdicts = list(mutation.run_sample(count, seed=0))
    survivors = [f"{m.function}:{m.line} {m.description}" for m, kill, _ in verdicts if not kill]
    return {
        "mutants": len(verdicts),
        "killed": len(verdicts) - len(survivors),
        "score": round((len(verdicts) - len(survivors)) / max(1, len(verdicts)), 3),
        "survivors": survivors,
        "seconds": round(time.perf_counter() - started, 1),
    }
