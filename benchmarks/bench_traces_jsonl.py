"""Events per second through ``xbdspec check`` for JSON-lines protocol traces.

A protocol trace (``"kind": "protocol"``, what the protocol harness writes beside a
replay) is a header naming the protocol model's sizes, the xenstore commits of the
handshake, then lines of ring steps, each checked against the protocol model by its
queue's checker (:func:`xbdspec.traces.protocol.check_scenario`, what ``xbdspec check
FILE`` runs).  Three workloads, each next to a plain line-by-line read of the same file
measured in the same run; the rates are the best of three runs, each with the step
table empty at its start, as in a fresh process:

* ``steady``: a Linux-style device with four queues, then batches of I/O as a front
  end and a back end do them, round-robin over the queues: one to eight requests (a
  reader's reads, or a writer's writes ending with a cache flush) written with the
  lowest free ids and pushed (the first push notifies), the back end woken, taking
  them, answering in any order, pushing the answers with a notification and doing its
  final check, the front end taking every answer and re-arming.  Each line carries the
  harness's event number, so no two lines are alike byte for byte (the check knows a
  line met before by all but its event number).  The target is 100,000 events per
  second.
* ``mixed``: the same with every request's operation drawn on its own: the operations
  of the requests in flight are part of the ring's state, so the ring meets many more
  states (about 3**8 for a batch of eight), about half the steps the first time.
* ``harness``: the trace the protocol harness itself recorded of a random program of
  the tutorial front end (submits, serves, interrupts, watch deliveries, settles): the
  ring passes through states it rarely meets again, and its 10,000 lines are about 300
  different lines, each compiled the second time it is met (the compiled steps'
  worst case: compiling is a large part of the time).
* ``harness_long``: the same with a program five times as long (about 40,000 lines):
  what a long campaign's trace costs once its lines are compiled.

Run: ``python -m benchmarks --only traces_jsonl`` (part of ``make bench``).
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from xbdspec.traces.protocol import check_scenario, step_table

#: Events per second the issue asks of a JSON-lines protocol trace.
TARGET_EVENTS = 100_000
STEADY_EVENTS = 200_000
QUEUES = 4
IDS = 32
REPEAT = 3
SIZES = {"ids": IDS, "ring_slots": 32, "max_order": 4, "max_queues": QUEUES, "ring_base": 0}


def _handshake() -> list[dict[str, Any]]:
    """Linux 6.1's start-up with blkback, four queues of one page each."""
    front: dict[str, str] = {"front/multi-queue-num-queues": str(QUEUES)}
    for q in range(QUEUES):
        front[f"front/queue-{q}/ring-ref"] = str(8 + q)
        front[f"front/queue-{q}/event-channel"] = str(17 + q)
    front["front/protocol"] = "x86_64-abi"
    return [
        {
            "by": "toolstack",
            "writes": {
                "back/frontend": "/local/domain/5/device/vbd/51712",
                "back/online": "1",
                "back/state": "1",
                "front/backend": "/local/domain/0/backend/vbd/5/51712",
                "front/state": "1",
            },
        },
        {"by": "backend", "writes": {"back/multi-queue-max-queues": str(QUEUES)}},
        {"by": "backend", "writes": {"back/max-ring-page-order": "4"}},
        {"by": "backend", "writes": {"back/state": "2"}},
        {"by": "frontend", "writes": front},
        {"by": "frontend", "writes": {"front/state": "3"}},
        {
            "by": "backend",
            "writes": {
                "back/feature-flush-cache": "1",
                "back/sectors": "41943040",
                "back/info": "0",
                "back/sector-size": "512",
            },
        },
        {"by": "backend", "writes": {"back/state": "4"}},
        {"by": "frontend", "writes": {"front/state": "4"}},
    ]


def steady_lines(seed: int = 15, mixed: bool = False) -> Iterator[dict[str, Any]]:
    """The ``steady`` workload (``mixed``: every request's operation drawn apart),
    endless after its handshake."""
    rng = random.Random(seed)
    event = 0
    for commit in _handshake():
        event += 1
        yield {**commit, "event": event}
    queue = 0
    while True:
        size = rng.randint(1, 8)
        if mixed:
            ops = [rng.choice(["READ", "WRITE", "WRITE", "FLUSH_DISKCACHE"]) for _ in range(size)]
        elif rng.random() < 0.5:
            ops = ["READ"] * size
        else:
            ops = ["WRITE"] * (size - 1) + ["FLUSH_DISKCACHE"]
        batch = list(range(size))
        at = {"queue": queue}
        event += 1
        for n, (i, op) in enumerate(zip(batch, ops, strict=True)):
            write = {"id": i, "op": op, "push": False, "notify": False}
            steps = [
                ["frontend_write_request", write],
                ["frontend_push_requests", {"notify": n == 0}],
            ]
            yield _line("frontend", at, steps, "the front end pushes requests", event)
        event += 1
        yield _line(
            "backend", at, [["backend_wake", {}]], "the back end takes its notification", event
        )
        for i in batch:
            yield _line("backend", at, [["backend_consume", {"id": i}]], "backend_consume", event)
        for i in rng.sample(batch, len(batch)):
            respond = {"id": i, "push": False, "notify": False}
            yield _line("backend", at, [["backend_respond", respond]], "backend_respond", event)
        yield _line("backend", at, [["backend_push_responses", {"notify": True}]], "push", event)
        yield _line("backend", at, [["backend_final_check", {}]], "backend_final_check", event)
        event += 1
        service = {"take": [i in batch for i in range(IDS)], "end_grants": False, "rearm": True}
        steps = [["frontend_service_ring", service]]
        yield _line("frontend", at, steps, "the front end takes responses and waits", event)
        queue = (queue + 1) % QUEUES


def _line(
    by: str, at: dict[str, int], steps: list[list[Any]], what: str, event: int
) -> dict[str, Any]:
    return {"by": by, "queue": at["queue"], "steps": steps, "what": what, "event": event}


def write_steady(path: Path, events: int, mixed: bool = False) -> int:
    header = {"xbdspec_trace": 2, "kind": "protocol", "source": "bench", "sizes": SIZES}
    lines = steady_lines(mixed=mixed)
    with path.open("w") as out:
        out.write(json.dumps(header) + "\n")
        for _ in range(events):
            out.write(json.dumps(next(lines)) + "\n")
    return events


def write_harness(path: Path, seed: int = 5, events: int = 3000) -> int:
    """A random program of the tutorial front end through the protocol harness; returns
    the trace's lines after its header."""
    from xbdspec.world.campaign import Shape, generate, load_tutorial
    from xbdspec.world.harness import run_program, trace_lines

    module = load_tutorial()
    program = generate(random.Random(seed), Shape(events=events))
    world = run_program(module.LinuxStyleFrontend, program)
    lines = trace_lines(world)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return len(lines) - 1


def plain_read(path: Path) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    with path.open() as handle:
        for _ in handle:
            pass
    return time.perf_counter() - start, time.process_time() - cpu


def against_plain_read(path: Path, events: int, run: Callable[[], Any]) -> dict[str, Any]:
    """The check and the plain read of the same file, alternated; the best of each."""
    checks, reads = [], []
    result: Any = None
    for _ in range(REPEAT):
        reads.append(plain_read(path))
        start, cpu = time.perf_counter(), time.process_time()
        result = run()
        checks.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, cpu = min(w for w, _ in checks), min(c for _, c in checks)
    read_wall, read_cpu = min(w for w, _ in reads), min(c for _, c in reads)
    return {
        "events": events,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "events_per_second": round(events / wall),
        "events_per_cpu_second": round(events / cpu),
        "plain_read_seconds": round(read_wall, 4),
        "ratio_to_plain_read": round(wall / read_wall, 1),
        "ratio_to_plain_read_cpu": round(cpu / read_cpu, 1),
        **result,
    }


def _check(path: Path) -> dict[str, Any]:
    """``xbdspec check`` of a protocol trace, as a fresh process does it: the step
    table, and every step compiled, start empty (the protocol model itself stays
    built)."""
    step_table.cache_clear()
    _, report = check_scenario(str(path))
    assert report.verdict == "conforms", report.render(str(path))
    return {"verdict": report.verdict, "protocol_steps": len(report.steps)}


def run() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, mixed in (("steady", False), ("mixed", True)):
            path = Path(tmp) / f"{name}.jsonl"
            events = write_steady(path, STEADY_EVENTS, mixed)
            figures = against_plain_read(path, events, functools.partial(_check, path))
            figures["target_events_per_second"] = TARGET_EVENTS
            figures["target_met_on_cpu"] = figures["events_per_cpu_second"] >= TARGET_EVENTS
            out[name] = figures
        for name, program in (("harness", 3000), ("harness_long", 15000)):
            path = Path(tmp) / f"{name}.jsonl"
            started = time.perf_counter()
            events = write_harness(path, events=program)
            recorded = time.perf_counter() - started
            figures = against_plain_read(path, events, functools.partial(_check, path))
            figures["harness_seconds_to_record"] = round(recorded, 1)
            figures["target_events_per_second"] = TARGET_EVENTS
            figures["target_met_on_cpu"] = figures["events_per_cpu_second"] >= TARGET_EVENTS
            out[name] = figures
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
