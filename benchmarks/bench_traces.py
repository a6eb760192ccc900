"""Access-log lines per second through ``xbdspec check``, and its memory on two sizes.

The workload: a generated oxenstored access log of a busy host: 16 guests, each
attaching a disk (libxl's transaction, blkback's InitWait, the front end's keys in a
transaction with a four-page ring, Initialised, blkback's connect transaction,
Connected), then detaching it (online=0 and Closing, both ends closing, the nodes
removed), over and over; between two handshake lines come about 40 lines of
unrelated traffic (balloon targets, guests' data keys, watch events, transactions of
other tools, network devices).  The check reads the file line by line, as the command
does, after a warm-up on the log's first 20,000 lines (the projection explores the
model's handshake states once per process, about a second; that is reported apart).
Memory is measured on two sizes of log (four times apart): the peak of Python
allocations during the check (tracemalloc, in a second run) and the process's peak
RSS (each size in a fresh process).  Both wall time and the process's CPU time are
reported: on a shared machine the CPU rate is the checker's own cost.
Run: ``python -m benchmarks --only traces``.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from xbdspec.traces.check import check_oxenstored, default_projection
from xbdspec.traces.oxenstored import format_line

GUESTS = 16
NOISE_PER_WRITE = 40
SIZES = (400_000, 1_600_000)


def _noise(i: int) -> list[tuple[str, str, str]]:
    g = 100 + i % GUESTS
    return [
        ("A1", "write", f"/local/domain/{g}/memory/target\x00{1048576 + i % 4096}"),
        (f"D{g}", "w event", "memory/target\x00mem\x00"),
        (f"D{g}", "write", f"data/updated\x00{i}"),
        (f"D{g}", "write", "device/vif/0/state\x004"),
        (f"A{3 + i % 5}.{i % 97 + 1}", "write", f"/vm/uuid-{g}/rtc/timeoffset\x00{i % 60}"),
        (f"A{3 + i % 5}.{i % 97 + 1}", "commit", ""),
        ("D0", "w event", f"/local/domain/{g}/device/vif/0/state\x00vif\x00"),
    ]


def _handshake(g: int, devid: int) -> list[tuple[str, str, str]]:
    be, fe = f"/local/domain/0/backend/vbd/{g}/{devid}", f"/local/domain/{g}/device/vbd/{devid}"
    rel = f"backend/vbd/{g}/{devid}"
    dev = f"device/vbd/{devid}"
    lines = [
        (f"A12.{g}", "write", f"{be}/{k}\x00{v}")
        for k, v in (("frontend", fe), ("online", "1"), ("state", "1"), ("params", "/dev/vg0/d"))
    ]
    lines += [
        (f"A12.{g}", "write", f"{fe}/{k}\x00{v}")
        for k, v in (("backend", be), ("state", "1"), ("virtual-device", str(devid)))
    ]
    lines += [
        (f"A12.{g}", "commit", ""),
        ("D0", "write", f"{rel}/max-ring-page-order\x004"),
        ("D0", "write", f"{rel}/state\x002"),
    ]
    t = f"D{g}.{devid}"
    lines += [(t, "write", f"{dev}/ring-page-order\x002")]
    lines += [(t, "write", f"{dev}/ring-ref{i}\x00{8 + i}") for i in range(4)]
    lines += [
        (t, "write", f"{dev}/event-channel\x0017"),
        (t, "commit", ""),
        (f"D{g}", "write", f"{dev}/state\x003"),
        ("D0.9", "write", f"{rel}/sectors\x0041943040"),
        ("D0.9", "write", f"{rel}/info\x000"),
        ("D0.9", "write", f"{rel}/sector-size\x00512"),
        ("D0.9", "commit", ""),
        ("D0", "write", f"{rel}/state\x004"),
        (f"D{g}", "write", f"{dev}/state\x004"),
        (f"A12.{g}", "write", f"{be}/online\x000"),
        (f"A12.{g}", "write", f"{be}/state\x005"),
        (f"A12.{g}", "commit", ""),
        (f"D{g}", "write", f"{dev}/state\x005"),
        (f"D{g}", "write", f"{dev}/state\x006"),
        ("D0", "write", f"{rel}/state\x006"),
        ("A12", "rm", f"{be}\x00"),
        ("A12", "rm", f"{fe}\x00"),
    ]
    return lines


def generate(path: Path, lines: int) -> int:
    """Write a log of about ``lines`` lines; returns the exact count."""
    written = 0
    cycle = 0
    i = 0
    with path.open("w") as out:
        while written < lines:
            g = 100 + cycle % GUESTS
            for conn, op, data in _handshake(g, 51712):
                for n in range(NOISE_PER_WRITE // 7):
                    for nconn, nop, ndata in _noise(i + n):
                        out.write(format_line("20261126T03:00:00.000Z", nconn, nop, ndata) + "\n")
                        written += 1
                i += 1
                out.write(format_line("20261126T03:00:00.000Z", conn, op, data) + "\n")
                written += 1
            cycle += 1
    return written


def measure(path: Path) -> dict[str, Any]:
    """Check the log at ``path``: lines per second, and the tracemalloc peak."""
    started = time.perf_counter()
    default_projection()
    with path.open() as handle:  # warm-up: the model's handshake states, explored once
        check_oxenstored(itertools.islice(handle, 20_000), str(path))
    warm_up = time.perf_counter() - started
    with path.open() as handle:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = check_oxenstored(handle, str(path))
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    assert result.valid, result.render()
    tracemalloc.start()
    with path.open() as handle:
        check_oxenstored(handle, str(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    devices = result.devices
    return {
        "lines": result.events,
        "seconds": round(seconds, 3),
        "lines_per_second": round(result.events / seconds),
        "cpu_seconds": round(cpu_seconds, 3),
        "lines_per_cpu_second": round(result.events / cpu_seconds),
        "model_warm_up_seconds": round(warm_up, 3),
        "devices": len(devices),
        "handshakes": sum(d.lifecycles for d in devices),
        "tracemalloc_peak_kib": peak // 1024,
    }


def _child(path: str) -> None:
    import resource

    figures = measure(Path(path))
    figures["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(figures))


def run() -> dict[str, Any]:
    """Both sizes, each checked in a fresh process (so peak RSS is its own)."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            path = Path(tmp) / f"access-{size}.log"
            count = generate(path, size)
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from benchmarks.bench_traces import _child; _child(sys.argv[1])",
                    str(path),
                ],
                check=True,
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
                env=dict(os.environ),
            )
            figures = json.loads(out.stdout)
            figures["file_mib"] = round(path.stat().st_size / 2**20, 1)
            results[str(count)] = figures
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
