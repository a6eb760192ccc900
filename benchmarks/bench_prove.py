"""How long ``xbdspec prove`` takes: the whole suite on two workers, and the slowest
obligation (targets: 15 s in all on 2 cores, no obligation over 5 s)."""

from __future__ import annotations

import json
import subprocess
import sys
import time


def run() -> dict[str, float | int | str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "xbdspec", "prove", "--json", "--jobs", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    data = json.loads(proc.stdout)
    items = data["obligations"]
    slowest = max(items, key=lambda o: o["seconds"])
    return {
        "obligations": len(items),
        "wall_seconds_2_jobs": round(wall, 2),
        "solver_seconds_total": round(sum(o["seconds"] for o in items), 2),
        "slowest_obligation": slowest["name"],
        "slowest_seconds": slowest["seconds"],
        "over_5_seconds": sum(1 for o in items if o["seconds"] > 5),
        "unexpected": len(data["unexpected"]),
    }
