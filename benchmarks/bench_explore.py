"""Explorer speed: distinct model states per second on one core, and bytes per state.

Runs the full check (invariants on every state, step properties on every edge,
deadlocks, progress) over the model at the explorer's default sizes, with symmetry
reduction, and reports the rate in processor time (one core; the figure does not
depend on what else the machine runs) as well as wall-clock time.

``spin_vs_python`` puts the SPIN engine (:mod:`xbdspec.explore.spin`) beside the
Python explorer in the same run, on sizes both exhaust (:data:`SIDE_BY_SIDE_SIZES`,
symmetry off on both, so both count the same states): states per second of the
search, time to exhaust (search only, and end to end: SPIN's Promela generation and
``cc`` included), and their ratios.  Without ``spin`` it records why it was skipped.

The reference target (``xbdspec explore --target reference``) is measured by
``bench_explore_reference`` (``python -m benchmarks --only explore_reference``).
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import Any

from xbdspec.model.concrete import Stepper
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

from xbdspec.explore.checker import check_model
from xbdspec.explore.defaults import DEFAULT_SIZES
from xbdspec.explore.spin import INSTALL_COMMAND, SpinOptions, check_spin, spin_available

#: sizes both engines exhaust in seconds: two commands, two bios, a one-slot ring, a
#: grant shortage, one suspend, one unplug and one dump (5,175,864 states without
#: symmetry; 638,358 without the dump path)
SIDE_BY_SIDE_SIZES = Sizes(
    commands=2, bios=2, ring_slots=1, grants=2, suspends=1, unplugs=1, dumps=1
)


#: SPIN against the Python explorer, states per second (issue 17: at least 10x)
GOAL_SPIN_RATIO = 10.0


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


def _spin_side_by_side(sizes: Sizes = SIDE_BY_SIDE_SIZES) -> dict[str, Any]:
    """SPIN and the Python explorer on the same sizes, in the same run (safety: the
    invariants, step properties and deadlocks; progress is left out of both figures)."""
    if not spin_available():
        return {"skipped": f"spin or cc is not installed ({INSTALL_COMMAND})"}
    spec = build_spec(sizes)
    started = time.monotonic()
    python = check_model(spec=spec, symmetry=False)
    python_total = time.monotonic() - started
    ex = python.exploration
    spin = check_spin(spec=spec, options=SpinOptions(progress=False))
    s = spin.safety
    python_rate = ex.states / ex.cpu_seconds if ex.cpu_seconds else None
    spin_rate = s.states_per_second
    spin_cpu_rate = s.states / s.cpu_seconds if s.cpu_seconds else None
    return {
        "sizes": dataclasses.asdict(sizes),
        "symmetry": False,
        "same_states": spin.states == ex.states,
        "python": {
            "states": ex.states,
            "search_seconds": round(ex.seconds, 2),
            "search_cpu_seconds": round(ex.cpu_seconds, 2),
            "states_per_cpu_second": None if python_rate is None else round(python_rate),
            "total_seconds": round(python_total, 2),
            "note": "total includes the progress checks on the stored graph",
        },
        "spin": {
            "version": spin.version,
            "states": spin.states,
            "search_seconds": round(s.seconds, 2),
            "states_per_second": None if spin_rate is None else round(spin_rate),
            "search_cpu_seconds": round(s.cpu_seconds, 2),
            "states_per_cpu_second": None if spin_cpu_rate is None else round(spin_cpu_rate),
            "compile_seconds": round(spin.compile_seconds, 2),
            "total_seconds": round(spin.seconds, 2),
            "memory_mb": s.memory_mb,
            "complete": spin.complete,
        },
        "ratio_states_per_second": (
            round(spin_rate / python_rate, 1) if spin_rate and python_rate else None
        ),
        "ratio_states_per_cpu_second": (
            round(spin_cpu_rate / python_rate, 1) if spin_cpu_rate and python_rate else None
        ),
        "ratio_search_time": round(ex.seconds / s.seconds, 1) if s.seconds else None,
        "goal_ratio": GOAL_SPIN_RATIO,
        "meets_goal": bool(
            spin_rate and python_rate and spin_rate / python_rate >= GOAL_SPIN_RATIO
        ),
        "ratio_total_time": round(python_total / spin.seconds, 1) if spin.seconds else None,
    }


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
        "spin_vs_python": _spin_side_by_side(),
    }
