"""The seed's blkfront.c, compiled unmodified against the kernel shim, as a front end of
the protocol-level harness: the handshake to Connected with the RAM-disk back end, writes,
reads and flushes with their data checked, a multi-page ring with indirect segments, a
seeded campaign of random programs, and the detach; the protocol model checks every
step."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any

import pytest

from xbdspec.cdriver import default_source
from xbdspec.errors import XbdspecError
from xbdspec.traces.protocol import Verdict
from xbdspec.world.backend import SECTOR, BackendConfig
from xbdspec.world.campaign import Shape, campaign
from xbdspec.world.harness import FRONT, World, run_program

if not (os.environ.get("CC") or shutil.which("cc")):
    pytest.skip("no C compiler (cc, or $CC) to build the seed with", allow_module_level=True)
_SOURCE = default_source()
if _SOURCE is None or not _SOURCE.is_file():
    pytest.skip(
        "no blkfront.c: put the seed at ../shared/seed/blkfront.c (beside the repo) "
        f"or set XBD_BLKFRONT=/path/to/blkfront.c (now: {_SOURCE})",
        allow_module_level=True,
    )

from xbdspec.world.frontends.seed import SeedFrontend, dimensions, make  # noqa: E402

Program = list[tuple[str, Mapping[str, Any]]]
DATA = bytes(range(256)) * 4  # two sectors
START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
IO: Program = [
    ("submit", {"id": 1, "op": "write", "sector": 4, "sectors": 2, "data": DATA.hex()}),
    ("settle", {}),
    ("submit", {"id": 2, "op": "read", "sector": 4, "sectors": 2}),
    ("submit", {"id": 3, "op": "flush"}),
    ("settle", {}),
]
DETACH: Program = [("detach", {}), ("settle", {})]


def steps(world: World) -> list[str]:
    return [s.split("(")[0] for s in world.checker.report.steps]


def seed_of(world: World) -> SeedFrontend:
    front = world.frontend
    assert isinstance(front, SeedFrontend)
    return front


def test_the_handshake_reaches_connected() -> None:
    world = run_program(make(), START)
    front = seed_of(world)
    assert world.store.get(f"{FRONT}/state") == "4"
    assert world.store.get(f"{world.backend.back}/state") == "4"
    assert front.state == 4
    sc = front.softc()
    assert sc is not None and sc["xbd_state"] == 1 and sc["has_disk"]  # XBD_STATE_CONNECTED
    # the device's node is relative, resolved in the guest's home, as FreeBSD's xenbus has it
    assert world.store.get(f"{FRONT}/protocol") == "x86_64-abi"
    assert world.store.get(f"{FRONT}/ring-ref") is not None
    assert steps(world) == [
        "backend_init_wait",
        "frontend_publish_transport",
        "frontend_publish_transport",
        "frontend_initialised",
        "backend_connect",
        "frontend_connected",
    ]
    assert world.checker.finish().verdict == Verdict.CONFORMS


def test_writes_reads_and_flushes_carry_their_data() -> None:
    world = run_program(make(), START + IO)
    # the back end performed the write from the seed's granted page...
    assert bytes(world.backend.disk[4 * SECTOR : 6 * SECTOR]) == DATA
    # ...and the read's data the seed handed up is what the disk holds (checked by the
    # world at the completion), every bio done and successful
    assert world.completed == {1: 1, 2: 1, 3: 1}
    names = steps(world)
    assert names.count("frontend_write_request") == 3
    assert names.count("backend_respond") == 3
    assert "frontend_service_ring" in names
    # every data grant was ended when its response was taken
    assert not any(view.answered_grants for view in world.queues)
    assert world.checker.finish().verdict == Verdict.CONFORMS


def test_a_bio_before_the_disk_exists_waits_for_it() -> None:
    early: Program = [
        ("attach", {}),
        ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 1, "data": "5a" * SECTOR}),
        ("backend_probe", {}),
        ("settle", {}),
    ]
    world = run_program(make(), early)
    assert world.completed == {1: 1}
    assert bytes(world.backend.disk[:SECTOR]) == b"\x5a" * SECTOR


def test_a_full_ring_then_more_with_responses_in_reverse() -> None:
    program: Program = [
        *START,
        ("submit_many", {"count": 40}),
        ("serve", {"reverse": True}),
        ("interrupt", {}),
        ("settle", {}),
    ]
    world = run_program(make({"buffer_offsets": False}), program)
    assert len(world.completed) == 40 and all(world.completed.values())
    # a one-page ring holds 32: the rest waited in the seed's bio queue
    assert steps(world).count("frontend_write_request") == 40


def test_a_multi_page_ring_with_indirect_segments() -> None:
    """Ring order 4 (16 pages) and 32 indirect segments offered: a 12-page read goes as
    BLKIF_OP_INDIRECT through the seed's indirect page, with its data checked."""
    config = BackendConfig(sectors=2048, max_ring_page_order=4, max_indirect_segments=32)
    data = (bytes(range(251)) * 196)[: 96 * SECTOR]
    world = World(make(), config)
    for name, params in [
        *START,
        ("submit", {"id": 8, "op": "write", "sector": 100, "sectors": 96, "data": data.hex()}),
        ("settle", {}),
        ("submit", {"id": 9, "op": "read", "sector": 100, "sectors": 96}),
        ("settle", {}),
    ]:
        world.run(name, params)
    front = seed_of(world)
    sc = front.softc()
    assert sc is not None
    assert sc["xbd_ring_pages"] == 16 and sc["xbd_max_request_indirectpages"] == 1
    assert world.store.get(f"{FRONT}/ring-page-order") == "4"
    assert world.store.get(f"{FRONT}/num-ring-pages") == "16"
    assert world.completed == {8: 1, 9: 1}
    assert bytes(world.backend.disk[100 * SECTOR : 196 * SECTOR]) == data
    # the seed grants each command's indirect page once, at connect, and keeps it granted
    # across requests (it ends it only in xbd_free); it never writes feature-persistent
    indirect = {ref for view in world.queues for ref in view.answered_grants}
    assert indirect and all(ref in world.grants.grants for ref in indirect)
    assert world.store.get(f"{FRONT}/feature-persistent") is None
    # an indirect page kept granted for the next request is no leak: the harness's
    # grant rule is about data pages
    assert indirect <= world.indirect_pages
    world.finish()


def test_the_detach_is_answered_by_closed() -> None:
    world = run_program(make(), START + IO + DETACH)
    assert world.store.get(f"{FRONT}/state") == "6"
    assert world.store.get(f"{world.backend.back}/state") == "6"
    assert steps(world)[-4:] == [
        "toolstack_detach",
        "frontend_closing",
        "frontend_closed",
        "backend_closed",
    ]
    assert world.checker.finish().verdict == Verdict.CONFORMS


def test_an_open_disk_is_closed_when_gone_then_the_front_end_closes() -> None:
    world = run_program(make({"open_disk": True}), START + IO + DETACH)
    front = seed_of(world)
    assert "xbd0: detaching with pending users" in front.log
    assert world.store.get(f"{FRONT}/state") == "6"
    assert world.checker.finish().verdict == Verdict.CONFORMS


def test_device_detach_ends_the_ring_grant_in_the_world() -> None:
    world = run_program(make(), START + IO + DETACH)
    front = seed_of(world)
    ring_ref = int(world.store.get(f"{FRONT}/ring-ref") or -1)
    assert ring_ref in world.grants.grants  # xbd_closing keeps the ring
    front.detach()  # device_detach: xbd_free ends it (the back end has unmapped it)
    assert ring_ref not in world.grants.grants
    assert ring_ref in world.ended
    front.shutdown()  # bus_generic_shutdown: nothing


def test_a_seeded_campaign_conforms() -> None:
    shape = Shape(events=16, max_sectors=64, sectors=1024)
    config = BackendConfig(sectors=1024, max_ring_page_order=2, max_indirect_segments=32)
    report = campaign(dimensions(), 7, 25, shape, config, per_program=True)
    assert report.programs == 25 and report.ios > 0
    assert report.findings == [], report.render()
    assert report.coverage["frontend_service_ring"] > 0
    assert report.coverage["frontend_closed"] > 0


def test_one_seed_front_end_at_a_time() -> None:
    first = run_program(make(), START)
    run_program(make(), START)
    with pytest.raises(XbdspecError, match="replaced by a newer one"):
        seed_of(first).interrupt()


def test_options_are_checked_and_recorded() -> None:
    maker = make({"open_disk": "1", "grant_frames": "2"})
    assert maker.options["open_disk"] is True  # type: ignore[attr-defined]
    assert maker.options["grant_frames"] == 2  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no option"):
        make({"fixes": "all"})
    with pytest.raises(ValueError, match="not a boolean"):
        make({"open_disk": "maybe"})
