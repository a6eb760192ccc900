"""The compiled seed: build time, raw I/O through the shim, and the conformance adapter's
rate (the C driver in lock-step with the reference and the model).

Timed in processor and wall time; the build is timed from an empty output directory.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from xbdspec.cdriver import CDriverImplementation, CPlatform, build, default_source
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import SEED_SAFE, random_walk
from xbdspec.conformance.reference_adapter import reference_sizes


def run() -> dict[str, Any]:
    """The figures recorded in docs/benchmarks.md (## Compiled seed)."""
    if default_source() is None:
        return {"skipped": "no blkfront.c (../shared/seed/blkfront.c or XBD_BLKFRONT)"}
    with tempfile.TemporaryDirectory() as tmp:
        wall = time.perf_counter()
        build(out_dir=Path(tmp))
        build_seconds = time.perf_counter() - wall
    built = build()
    p = CPlatform(built)
    p.boot()
    ios = 20_000
    cpu, wall = time.process_time(), time.perf_counter()
    for _batch in range(ios // 16):
        for k in range(16):
            p.strategy(1 + (k & 1), 8 * k, 4096, data=None)
        p.backend_fetch()
        p.respond_all()
        p.deliver_interrupt()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    impl = CDriverImplementation(built)
    lock = LockStep(impl, reference_sizes())
    steps = 0
    acpu = time.process_time()
    for i in range(100):
        steps += len(random_walk(impl, lock, random.Random(f"bench:{i}"), 60, SEED_SAFE).steps)
    acpu = time.process_time() - acpu
    impl.close()
    return {
        "build_seconds": round(build_seconds, 2),
        "ios": ios,
        "ios_per_cpu_second": round(ios / cpu),
        "ios_per_wall_second": round(ios / wall),
        "adapter_programs": 100,
        "adapter_steps": steps,
        "adapter_steps_per_cpu_second": round(steps / acpu, 1),
    }
