"""Linux 6.1's xen-blkfront.c, compiled unmodified against shim-linux/, under the
protocol-level harness: the handshake to Connected with the RAM-disk back end (one
queue, one ring page), a write then a read of the same sectors with the right data, and
the detach (the back end's Closing answered by Closed); the protocol model checks every
step."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from xbdspec.linux import source
from xbdspec.traces.protocol import Verdict
from xbdspec.world.harness import run_program

if not source.available():
    if os.environ.get("CI"):
        pytest.fail("CI is set and linux-source-6.1 cannot be installed", pytrace=False)
    pytest.skip(
        "linux-source-6.1 is not installed and apt cannot install it "
        "(/usr/src/linux-source-6.1.tar.xz is absent)",
        allow_module_level=True,
    )

from xbdspec.linux.adapter import LinuxBlkfront, build, make

Program = list[tuple[str, Mapping[str, Any]]]
DATA = bytes(range(256)) * 4  # two sectors
START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
WRITE_READ: Program = [
    ("submit", {"id": 1, "op": "write", "sector": 4, "sectors": 2, "data": DATA.hex()}),
    ("settle", {}),
    ("submit", {"id": 2, "op": "read", "sector": 4, "sectors": 2}),
    ("settle", {}),
]
DETACH: Program = [("detach", {}), ("settle", {})]


def test_the_driver_compiles_unmodified() -> None:
    built = build()
    assert built.library.is_file()
    assert built.driver.name == "xen-blkfront.c"
    assert not built.warnings, built.warnings


def test_the_handshake_reaches_connected() -> None:
    world = run_program(make(), START)
    front = world.frontend
    assert isinstance(front, LinuxBlkfront)
    assert world.store.get(f"{world.backend.front}/state") == "4"
    assert world.store.get(f"{world.backend.back}/state") == "4"
    assert front.state == 4 and front.disk_added
    steps = world.checker.report.steps
    assert [s.split("(")[0] for s in steps] == [
        "backend_init_wait",
        "frontend_publish_transport",
        "frontend_initialised",
        "backend_connect",
        "frontend_connected",
    ]


@pytest.mark.parametrize("persistent", [1, 0], ids=["feature_persistent=1", "feature_persistent=0"])
def test_a_write_then_a_read_of_the_same_sectors(persistent: int) -> None:
    world = run_program(make({"feature_persistent": persistent}), START + WRITE_READ)
    assert world.checker.finish().verdict == Verdict.CONFORMS
    assert world.completed == {1: 1, 2: 1}
    assert bytes(world.backend.disk[4 * 512 : 6 * 512]) == DATA
    steps = [s.split("(")[0] for s in world.checker.report.steps]
    assert steps.count("frontend_write_request") == 2
    assert steps.count("frontend_service_ring") == 2
    # without persistent grants negotiated, every data grant was ended: only the ring's
    # grant is left
    assert len(world.grants.grants) == 1


def test_detach_answers_closing_with_closed() -> None:
    world = run_program(make(), START + WRITE_READ + DETACH)
    assert world.checker.finish().verdict == Verdict.CONFORMS
    assert world.store.get(f"{world.backend.front}/state") == "6"
    assert world.store.get(f"{world.backend.back}/state") == "6"
    assert world.checker.report.steps[-2:] == ["frontend_closed()", "backend_closed()"]


FLUSH_IO: Program = [
    ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 2, "data": "ab" * 1024}),
    ("submit", {"id": 2, "op": "read", "sector": 0, "sectors": 2}),
    ("submit", {"id": 3, "op": "flush"}),
]
PROGRAMS: dict[str, Program] = {
    "write, read, flush, detach": START + FLUSH_IO + [("settle", {})] + DETACH,
    "responses in reverse order": START
    + FLUSH_IO
    + [("deliver_back_watch", {}), ("serve", {"reverse": True}), ("interrupt", {}), ("settle", {})],
    "a full ring, then more": START
    + [("submit_many", {"count": 40}), ("settle", {})] * 1
    + [("settle", {})],
    "a bio before the disk exists": [
        ("attach", {}),
        ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 1, "data": "cd" * 512}),
        ("backend_probe", {}),
        ("settle", {}),
        ("settle", {}),
    ],
    "eight-page bios": [
        *START,
        ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 64, "data": "ef" * 32768}),
        ("submit", {"id": 2, "op": "read", "sector": 0, "sectors": 64}),
        ("settle", {}),
    ],
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_driver_conforms_on_the_tutorial_programs(name: str) -> None:
    world = run_program(make({"feature_persistent": 0}), PROGRAMS[name])
    assert world.checker.finish().verdict == Verdict.CONFORMS
    assert set(world.completed) == set(world.bios) and all(world.completed.values())


def test_a_bio_before_the_disk_exists_is_kept_by_the_block_layer() -> None:
    """Until ``device_add_disk`` there is no block device to open: the block layer keeps
    the bio (the harness counts it), the driver never sees it, and nothing is owed."""
    world = run_program(make({"feature_persistent": 0}), PROGRAMS["a bio before the disk exists"])
    assert world.checker.finish().verdict == Verdict.CONFORMS
    assert 1 not in world.bios and world.compared["bios the block layer kept"] == 1
    front = world.frontend
    assert isinstance(front, LinuxBlkfront) and front.disk_added
