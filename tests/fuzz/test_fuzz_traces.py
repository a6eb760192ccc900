"""Fuzzing ``xbdspec check`` over every trace format it reads: oxenstored access logs,
files of xenstore commits (the protocol scenarios), FreeBSD-model JSON-lines traces and
the protocol harness's own traces, each valid file mutated (and raw hostile bytes).

Whatever the file, the command ends with one of the documented statuses -- 0 conforms,
1 a violation, 2 an input error naming the file, 3 unverifiable -- never 4 (a crash of
xbdspec) nor a traceback, and its memory stays within :data:`MEMORY_BOUND`.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import tracemalloc
from pathlib import Path

import hostile
from hypothesis import given
from hypothesis import strategies as st

from xbdspec.cli import main
from xbdspec.world.backend import BackendConfig
from xbdspec.world.campaign import START, load_tutorial
from xbdspec.world.harness import run_program, trace_lines

MEMORY_BOUND = 64 << 20
DATA = hostile.REPO / "tests" / "traces" / "data"
WORK = Path(tempfile.mkdtemp(prefix="xbdspec-fuzz-traces-"))


def _protocol_trace() -> bytes:
    world = run_program(
        load_tutorial().LinuxStyleFrontend,
        [*START, ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 1}), ("settle", {})],
        BackendConfig(sectors=64),
    )
    return "".join(json.dumps(line) + "\n" for line in trace_lines(world, {})).encode()


#: format name -> valid files of it
BASES: dict[str, list[bytes]] = {
    "oxenstored": [(DATA / "linux_startup_unplug.log").read_bytes()],
    "commits": [(hostile.REPO / "tests/protocol/scenarios/linux_startup.jsonl").read_bytes()],
    "jsonl": [(DATA / "jsonl/startup.jsonl").read_bytes(), _protocol_trace()],
}


def _check(data: bytes, fmt: str) -> tuple[int, str]:
    path = WORK / "trace"
    path.write_bytes(data)
    err, out = io.StringIO(), io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                status = main(["check", str(path), "--format", fmt])
            except SystemExit as exc:  # argparse
                status = int(exc.code or 0)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"checking took {peak >> 20} MiB"
    text = err.getvalue()
    assert status in (0, 1, 2, 3), (status, text[-2000:])
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    if status in (2, 3):
        assert str(path) in text, text[-2000:]
    return status, text


@hostile.few(40)
@given(
    case=st.sampled_from(sorted(BASES)).flatmap(
        lambda fmt: st.tuples(
            st.just(fmt),
            st.one_of(
                st.tuples(st.sampled_from(BASES[fmt]), hostile.mutations()).map(
                    lambda t: hostile.mutate(*t)
                ),
                hostile.hostile_lines(),
            ),
        )
    ),
    auto=st.booleans(),
)
def test_check_ends_with_a_documented_status_on_any_trace(
    case: tuple[str, bytes], auto: bool
) -> None:
    fmt, data = case
    _check(data, "auto" if auto else fmt)
