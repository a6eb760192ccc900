"""The compiled seed's memory faults are contained (issue 19, item 4).

A hostile response id makes the seed index its 32-entry shadow array out of bounds
(finding response-id-trusted).  Before the shim trapped SIGSEGV, an id of 2**40 killed
the Python process (exit 139, no message) and ids 32 and 10000 read other memory and
only happened to trip a KernelPanic.  Now each is the driver's reported fault: an
``UndefinedBehaviour`` naming the shadow index (the shim fences the array) or, for an
address no pointer can hold, saying so; in the protocol world it is a violation with its
program, and ``xbdspec difftest --replay`` reports it and exits 1.  Each run is a child
process, so that a regression is a failed assertion, not a dead test runner.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xbdspec.cdriver import BuildResult
from xbdspec.cdriver.scenarios import HOSTILE_RESPONSE_IDS

SEED_MESSAGE = {
    32: "sc->xbd_shadow[32], past the end of its 32-entry array",
    10_000: "sc->xbd_shadow[10000], past the end of its 32-entry array",
    1 << 40: "at an address the processor refuses (non-canonical",
}


def _child(args: list[str], seed_build: BuildResult) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XBD_BLKFRONT": str(seed_build.source)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.mark.parametrize("rid", HOSTILE_RESPONSE_IDS)
def test_a_wild_shadow_access_is_a_reported_fault_not_a_dead_process(
    seed_build: BuildResult, rid: int
) -> None:
    proc = _child(["-m", "xbdspec.cdriver", "scenario", f"response-id-{rid}"], seed_build)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    fault = json.loads(proc.stdout.strip().splitlines()[-1])["fault"]
    assert fault["kind"] == "UndefinedBehaviour" and fault["where"] == "xbd_int", fault
    assert fault["message"].startswith("SIGSEGV: an invalid memory access inside the driver")
    assert SEED_MESSAGE[rid] in fault["message"], fault


def test_the_fault_in_the_protocol_world_is_a_violation_with_its_program(
    seed_build: BuildResult, tmp_path: Path
) -> None:
    """``unknown-id`` (0xDEADBEEF0BAD: no address) through ``difftest --impl seed``."""
    replay = tmp_path / "hostile.jsonl"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from xbdspec.world.backend import BackendConfig
        from xbdspec.world.campaign import START
        from xbdspec.world.replay import Replay, write
        program = [*START, ("submit", {{"id": 1, "op": "read", "sector": 0, "sectors": 8}}),
                   ("backend_hostile", {{"kind": "unknown-id"}}), ("interrupt", {{}})]
        write(Path({str(replay)!r}), Replay("seed", {{}}, BackendConfig(sectors=2048), program))
        """
    )
    assert _child(["-c", script], seed_build).returncode == 0
    proc = _child(
        ["-m", "xbdspec", "difftest", "--impl", "seed", "--replay", str(replay)], seed_build
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "UndefinedBehaviour in xbd_int: SIGSEGV" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_fault_of_the_harness_itself_is_not_blamed_on_the_driver(
    seed_build: BuildResult,
) -> None:
    """A segmentation fault in a harness callback (Python, inside the driver's call) goes
    to the handler that was there before: the process dies as it would without the shim,
    and no driver fault is reported."""
    script = textwrap.dedent(
        """
        import ctypes
        from xbdspec.cdriver import CPlatform, build
        p = CPlatform(build())
        class Crashing(dict):
            def get(self, key, default=None):
                ctypes.string_at(8)  # a load from address 8: the harness's own crash
        p.plug()
        p.xenstore.values = Crashing(p.xenstore.values)
        p.probe()
        p.attach()  # xbd_attach reads the device's nodes: the callback runs
        print("survived")
        """
    )
    proc = _child(["-c", script], seed_build)
    assert proc.returncode == -signal.SIGSEGV, (proc.returncode, proc.stdout, proc.stderr)
    assert "survived" not in proc.stdout and "UndefinedBehaviour" not in proc.stderr
