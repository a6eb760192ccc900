"""Explorer speed: distinct model states per second on one core, and bytes per state.

Runs the full check (invariants on every state, step properties on every edge,
deadlocks, progress) over the model at the explorer's default sizes, with symmetry
reduction, and reports the rate in processor time (one core; the figure does not
depend on what else the machine runs) as well as wall-clock time.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import Any

from xbdspec.model.concrete import Stepper
from xbdspec.model.spec import build_spec

from xbdspec.explore.checker import check_model
from xbdspec.explore.defaults import DEFAULT_SIZES


def _naive_rate(limit: int = 5000) -> float:
    """States per processor second of a plain BFS over ``Stepper.successors``."""
    spec = build_spec(DEFAULT_SIZES)
    stepper = Stepper(spec)
    first = stepper.initial()
    seen, queue = {first}, deque([first])
    started = time.process_time()
    while queue and len(seen) < limit:
        state = queue.popleft()
        for _, after in stepper.successors(state):
            if after not in seen:
                seen.add(after)
                queue.append(after)
    return len(seen) / (time.process_time() - started)


def run() -> dict[str, Any]:
    """The figures recorded in docs/benchmarks.md (## Explorer)."""
    report = check_model(DEFAULT_SIZES)
    ex = report.exploration
    return {
        "sizes": dataclasses.asdict(DEFAULT_SIZES),
        "states": ex.states,
        "transitions": ex.transitions,
        "depth": ex.depth,
        "wall_seconds": round(ex.seconds, 2),
        "cpu_seconds": round(ex.cpu_seconds, 2),
        "states_per_cpu_second": round(ex.states / ex.cpu_seconds),
        "bytes_per_state": round(report.bytes_per_state, 1),
        "collision_probability": report.collision_probability,
        "naive_stepper_states_per_cpu_second": round(_naive_rate()),
        "violations": [v.counterexample.property for v in report.violations],
    }
