"""Access-log lines per second through ``xbdspec check``, its memory, and removals.

Three workloads, each a generated oxenstored access log checked by
:func:`xbdspec.traces.check.check_file` (what ``xbdspec check LOG`` runs: the chunked
reading, the protocol model), each next to a plain line-by-line read of the same file
measured in the same run (``for line in file``): on a shared machine the ratio is the
figure that means something; the rates are the best of three runs.

* ``vbd``: every line is a vbd line.  Sixteen guests with two disks each attach and
  detach them over and over, as the real parties write it: libxl's creation
  transaction (fifteen keys of both directories), blkback's probe and its hotplug
  script's keys, the Linux front end's transaction (four queues, each with its ring
  reference and event channel, the protocol, persistent grants), Initialised, blkback's
  connect transaction (features and the disk's properties), both ends Connected; then
  libxl's detach transaction, the front end's Closed, the back end's, both nodes
  removed.  Transaction ids grow per connection as oxenstored numbers them, grant
  references and event channels differ from life to life, and the disks' sizes differ:
  nothing repeats a line.  The target is 500,000 lines per second on one core.
* ``busy_host``: the earlier workload (16 guests' handshakes with about 40 lines of
  unrelated traffic between two handshake lines), on two sizes four times apart, each
  checked in a fresh process: the memory (tracemalloc's peak during the check, the
  process's peak RSS) does not grow with the log.
* ``removals``: 25,000 guests each create a disk, and remove it with its two nodes, its
  domain's home and a key of its own: 100,000 ``rm`` lines, with a device more for each
  guest (the issue's quadratic ``rm`` compared every device ever seen).  Checked at two
  sizes, half and whole: linear when the rate does not fall with the size.

Run: ``python -m benchmarks --only traces`` (part of ``make bench``).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from xbdspec.traces.check import check_file, check_oxenstored, default_projection
from xbdspec.traces.oxenstored import format_line
from xbdspec.traces.protocol import DEFAULT_SIZES, step_table

#: Lines per second the issue asks of an access log whose every line is a vbd line.
TARGET_VBD_LINES = 500_000
DATE = "20261126T03:00:00.000Z"
VBD_LINES = 1_000_000
REMOVALS = 100_000
GUESTS = 16
NOISE_PER_WRITE = 40
SIZES = (400_000, 1_600_000)
REPEAT = 3

Line = tuple[str, str, str]


# --------------------------------------------------------------------------- the workloads


class Connections:
    """Transaction ids as oxenstored gives them: per connection, counting up."""

    def __init__(self) -> None:
        self.tids: dict[str, int] = {}

    def tid(self, conn: str) -> str:
        self.tids[conn] = self.tids.get(conn, 0) + 1
        return f"{conn}.{self.tids[conn]}"


def _life(conns: Connections, guest: int, devid: int, life: int) -> list[Line]:
    """One disk's life on a Linux guest with blkback, as the log shows it."""
    be = f"/local/domain/0/backend/vbd/{guest}/{devid}"
    fe = f"/local/domain/{guest}/device/vbd/{devid}"
    rel_be, rel_fe = f"backend/vbd/{guest}/{devid}", f"device/vbd/{devid}"
    t = conns.tid("A12")
    lines: list[Line] = [
        (t, "write", f"{be}/{k}\0{v}")
        for k, v in (
            ("frontend", fe),
            ("frontend-id", str(guest)),
            ("online", "1"),
            ("removable", "0"),
            ("bootable", "1"),
            ("state", "1"),
            ("dev", "xvda"),
            ("type", "phy"),
            ("mode", "w"),
            ("params", f"/dev/vg0/guest-{guest}-{devid}"),
        )
    ]
    lines += [
        (t, "write", f"{fe}/{k}\0{v}")
        for k, v in (
            ("backend", be),
            ("backend-id", "0"),
            ("state", "1"),
            ("virtual-device", str(devid)),
            ("device-type", "disk"),
        )
    ]
    lines.append((t, "commit", ""))
    lines += [
        ("D0", "write", f"{rel_be}/feature-max-indirect-segments\x00256"),
        ("D0", "write", f"{rel_be}/multi-queue-max-queues\x004"),
        ("D0", "write", f"{rel_be}/max-ring-page-order\x004"),
        ("D0", "write", f"{rel_be}/state\x002"),
        ("A13", "write", f"{be}/physical-device\x00fe:{life % 256:x}"),
        ("A13", "write", f"{be}/physical-device-path\x00/dev/dm-{life % 256}"),
        ("A13", "write", f"{be}/hotplug-status\x00connected"),
    ]
    t = conns.tid(f"D{guest}")
    grant = 8 + (life * 7) % 4000
    lines.append((t, "write", f"{rel_fe}/multi-queue-num-queues\x004"))
    for q in range(4):
        lines.append((t, "write", f"{rel_fe}/queue-{q}/ring-ref\x00{grant + q}"))
        lines.append((t, "write", f"{rel_fe}/queue-{q}/event-channel\x00{17 + q + life % 40}"))
    lines += [
        (t, "write", f"{rel_fe}/protocol\x00x86_64-abi"),
        (t, "write", f"{rel_fe}/feature-persistent\x001"),
        (t, "commit", ""),
        (f"D{guest}", "write", f"{rel_fe}/state\x003"),
    ]
    t = conns.tid("D0")
    lines += [
        (t, "write", f"{rel_be}/{k}\0{v}")
        for k, v in (
            ("feature-flush-cache", "1"),
            ("feature-discard", "1"),
            ("feature-barrier", "1"),
            ("feature-persistent", "1"),
            ("sectors", str(41943040 + 2048 * (guest % 8))),
            ("info", "0"),
            ("sector-size", "512"),
            ("physical-sector-size", "512"),
        )
    ]
    lines += [
        (t, "commit", ""),
        ("D0", "write", f"{rel_be}/state\x004"),
        (f"D{guest}", "write", f"{rel_fe}/state\x004"),
    ]
    t = conns.tid("A12")
    lines += [
        (t, "write", f"{be}/online\x000"),
        (t, "write", f"{be}/state\x005"),
        (t, "commit", ""),
        (f"D{guest}", "write", f"{rel_fe}/state\x006"),
        ("D0", "write", f"{rel_be}/state\x006"),
        ("A12", "rm", f"{be}\x00"),
        ("A12", "rm", f"{fe}\x00"),
    ]
    return lines


def vbd_lines() -> Iterator[Line]:
    """The ``vbd`` workload, endless: the guests' disks' lives, interleaved."""
    conns = Connections()
    for life in itertools.count():
        guest = 100 + life % GUESTS
        yield from _life(conns, guest, 51712 + 16 * ((life // GUESTS) % 2), life)


def write_log(path: Path, lines: Iterator[Line], count: int) -> int:
    """Write the first ``count`` lines of a workload; returns how many were written."""
    written = 0
    with path.open("w") as out:
        for conn, op, data in itertools.islice(lines, count):
            out.write(format_line(DATE, conn, op, data, nb_chars=0) + "\n")
            written += 1
    return written


def removal_lines(guests: int) -> Iterator[Line]:
    """``guests`` guests each create a disk and remove it: four ``rm`` lines a guest."""
    conns = Connections()
    for guest in range(1, guests + 1):
        be = f"/local/domain/0/backend/vbd/{guest}/768"
        fe = f"/local/domain/{guest}/device/vbd/768"
        t = conns.tid("A12")
        yield (t, "write", f"{be}/frontend\x00{fe}")
        yield (t, "write", f"{be}/online\x001")
        yield (t, "write", f"{be}/state\x001")
        yield (t, "write", f"{fe}/backend\x00{be}")
        yield (t, "write", f"{fe}/state\x001")
        yield (t, "commit", "")
        yield ("D0", "write", f"backend/vbd/{guest}/768/state\x002")
        yield (f"D{guest}", "rm", "data/updated\x00")
        yield ("A12", "rm", f"{be}\x00")
        yield ("A12", "rm", f"{fe}\x00")
        yield ("A3", "rm", f"/local/domain/{guest}\x00")


# the busy host (the earlier workload, kept as it was for comparison)


def _noise(i: int) -> list[Line]:
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


def _handshake(g: int, devid: int) -> list[Line]:
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
    """Write a busy host's log of about ``lines`` lines; returns the exact count."""
    written = 0
    cycle = 0
    i = 0
    with path.open("w") as out:
        while written < lines:
            g = 100 + cycle % GUESTS
            for conn, op, data in _handshake(g, 51712):
                for n in range(NOISE_PER_WRITE // 7):
                    for nconn, nop, ndata in _noise(i + n):
                        out.write(format_line(DATE, nconn, nop, ndata) + "\n")
                        written += 1
                i += 1
                out.write(format_line(DATE, conn, op, data) + "\n")
                written += 1
            cycle += 1
    return written


# --------------------------------------------------------------------------- measuring


def plain_read(path: Path) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of reading the file line by line and doing nothing."""
    start, cpu = time.perf_counter(), time.process_time()
    with path.open() as handle:
        for _ in handle:
            pass
    return time.perf_counter() - start, time.process_time() - cpu


def timed(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(wall, CPU, result)`` of ``run()``, the protocol's step table empty at the start
    as in a fresh process (the protocol model itself stays built)."""
    step_table.cache_clear()
    step_table(DEFAULT_SIZES)
    start, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - start, time.process_time() - cpu, result


def against_plain_read(path: Path, lines: int, run: Callable[[], Any]) -> dict[str, Any]:
    """The check and the plain read of the same file, alternated :data:`REPEAT` times;
    the best of each, their rates and their ratio."""
    checks, reads = [], []
    result: Any = None
    for _ in range(REPEAT):
        reads.append(plain_read(path))
        wall, cpu, result = timed(run)
        checks.append((wall, cpu))
    wall = min(w for w, _ in checks)
    cpu = min(c for _, c in checks)
    read_wall = min(w for w, _ in reads)
    read_cpu = min(c for _, c in reads)
    return {
        "lines": lines,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "lines_per_second": round(lines / wall),
        "lines_per_cpu_second": round(lines / cpu),
        "plain_read_seconds": round(read_wall, 3),
        "plain_read_lines_per_second": round(lines / read_wall),
        "ratio_to_plain_read": round(wall / read_wall, 1),
        "ratio_to_plain_read_cpu": round(cpu / read_cpu, 1),
        "result": result,
    }


def _vbd(tmp: Path) -> dict[str, Any]:
    path = tmp / "vbd.log"
    count = write_log(path, vbd_lines(), VBD_LINES)
    step_table(DEFAULT_SIZES)  # the protocol model, built once per process

    def run() -> dict[str, Any]:
        result = check_file(str(path))
        assert result.events == count and result.valid, result.render()[:2000]
        return {"devices": len(result.devices), "lives": sum(d.lifecycles for d in result.devices)}

    figures = against_plain_read(path, count, run)
    figures.update(figures.pop("result"))
    figures["target_lines_per_second"] = TARGET_VBD_LINES
    figures["target_met_on_cpu"] = figures["lines_per_cpu_second"] >= TARGET_VBD_LINES
    return figures


def _removals(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for share, name in ((2, "half"), (1, "whole")):
        guests = REMOVALS // 4 // share
        path = tmp / f"rm-{name}.log"
        count = write_log(path, removal_lines(guests), 11 * guests)

        def run(path: Path = path, guests: int = guests) -> dict[str, Any]:
            result = check_file(str(path))
            assert len(result.devices) == guests and result.valid, result.render()[:2000]
            return {"devices": guests, "rm_lines": 4 * guests}

        figures = against_plain_read(path, count, run)
        figures.update(figures.pop("result"))
        out[name] = figures
    half, whole = out["half"], out["whole"]
    out["rate_whole_over_half"] = round(
        whole["lines_per_cpu_second"] / half["lines_per_cpu_second"], 2
    )
    return out


def measure(path: Path) -> dict[str, Any]:
    """The busy host: check the log at ``path``: lines per second, and the tracemalloc
    peak (in a second run)."""
    started = time.perf_counter()
    default_projection()
    step_table(DEFAULT_SIZES)
    with path.open() as handle:  # warm-up: the model, built once per process
        check_oxenstored(itertools.islice(handle, 20_000), str(path))
    warm_up = time.perf_counter() - started
    count = sum(1 for _ in path.open())

    def run() -> dict[str, Any]:
        result = check_file(str(path))
        assert result.valid, result.render()[:2000]
        return {
            "devices": len(result.devices),
            "handshakes": sum(d.lifecycles for d in result.devices),
        }

    figures = against_plain_read(path, count, run)
    figures.update(figures.pop("result"))
    figures["model_warm_up_seconds"] = round(warm_up, 3)
    tracemalloc.start()
    check_file(str(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures["tracemalloc_peak_kib"] = peak // 1024
    return figures


def peak_rss_kib() -> int:
    """The process's peak resident set (``VmHWM``: its own, where ``ru_maxrss`` also
    counts what the parent held when it forked)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(path: str) -> None:
    figures = measure(Path(path))
    figures["peak_rss_kib"] = peak_rss_kib()
    print(json.dumps(figures))


def _busy_host(tmp: Path) -> dict[str, Any]:
    """Both sizes, each checked in a fresh process (so peak RSS is its own)."""
    results: dict[str, Any] = {}
    for size in SIZES:
        path = tmp / f"access-{size}.log"
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
        results[str(count)] = json.loads(out.stdout)
        path.unlink()
    return results


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "vbd": _vbd(Path(tmp)),
            "removals": _removals(Path(tmp)),
            "busy_host": _busy_host(Path(tmp)),
        }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
