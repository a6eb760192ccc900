"""The reference driver (the port of FreeBSD's seed blkfront) as a front end of the
protocol-level harness: unmodified, on a platform whose xenstore, grant table, event
channel and block layer are the world's (``xbdspec.world.frontends.reference``)."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Mapping
from typing import Any

import pytest
from xbdspec.reference import ring as ref_ring
from xbdspec.reference.constants import SRING_HEADER_SIZE
from xbdspec.reference.platform import Fixes

from xbdspec.findings.catalogue import claim_protocol
from xbdspec.traces.protocol import Verdict
from xbdspec.world import ring as world_ring
from xbdspec.world.backend import SECTOR, BackendConfig
from xbdspec.world.campaign import Shape, campaign
from xbdspec.world.frontends.reference import ReferenceFrontend, make
from xbdspec.world.harness import BACK, FRONT, Violation, World, run_program

Program = list[tuple[str, Mapping[str, Any]]]

START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
DETACH: Program = [("detach", {}), ("settle", {})]
#: the seed's largest request without indirect segments: 11 segments, d_maxsize 40 KiB
MAX_DIRECT_SECTORS = 80


def data(seed: int, sectors: int) -> bytes:
    return bytes((seed * 31 + i) & 0xFF for i in range(sectors * SECTOR))


def write(bio: int, sector: int, sectors: int) -> tuple[str, dict[str, Any]]:
    payload = data(bio, sectors).hex()
    return (
        "submit",
        {"id": bio, "op": "write", "sector": sector, "sectors": sectors, "data": payload},
    )


def read(bio: int, sector: int, sectors: int) -> tuple[str, dict[str, Any]]:
    return ("submit", {"id": bio, "op": "read", "sector": sector, "sectors": sectors})


def front(world: World) -> ReferenceFrontend:
    frontend = world.frontend
    assert isinstance(frontend, ReferenceFrontend)
    return frontend


def state(world: World, directory: str) -> str | None:
    return world.store.get(f"{directory}/state")


def test_the_handshake_reaches_connected_on_both_ends() -> None:
    world = run_program(make(), START)
    assert (state(world, FRONT), state(world, BACK)) == ("4", "4")
    steps = [s.split("(", 1)[0] for s in world.checker.report.steps]
    for step in ("backend_init_wait", "frontend_initialised", "backend_connect"):
        assert step in steps
    assert steps[-1] == "frontend_connected"
    # what the seed published, through the world's store
    assert world.store.get(f"{FRONT}/protocol") == "x86_64-abi"
    ring_ref = int(world.store.get(f"{FRONT}/ring-ref") or -1)
    assert world.grants.grants[ring_ref].mapped == 1  # the back end mapped the ring page
    assert front(world).state == 4
    assert front(world).log  # the kernel's messages, e.g. the disk's size


def test_the_reference_ring_layout_is_the_worlds() -> None:
    """blkif on x86-64, byte for byte: the reference's structs and field offsets
    (``reference/ring.py``) against the world's (``xbdspec/world/ring.py``)."""
    assert (SRING_HEADER_SIZE, ref_ring.ENTRY_SIZE) == (world_ring.HEADER, 112)
    assert world_ring.ENTRY == 112
    # private structs of the world's module: the layout is what is compared
    pairs = [
        (ref_ring.REQUEST_HEADER, world_ring._REQUEST),
        (ref_ring.SEGMENT, world_ring._SEGMENT),
        (ref_ring.INDIRECT_REQUEST, world_ring._INDIRECT),
        (ref_ring.RESPONSE, world_ring._RESPONSE),
    ]
    for ours, theirs in pairs:
        assert ours.size == theirs.size
        values = tuple(range(1, 1 + len(ours.unpack(bytes(ours.size)))))
        assert ours.pack(*values) == theirs.pack(*values)
    assert ref_ring.REQ_SEG == world_ring._REQUEST.size == 24
    assert ref_ring.IND_GREFS == struct.calcsize("<BBHxxxxQQHxx") == 28


def test_a_multi_page_ring_is_published_and_used() -> None:
    config = BackendConfig(sectors=256, max_ring_page_order=2)
    world = run_program(make(), [*START, write(1, 8, 16), read(2, 8, 16), ("settle", {})], config)
    assert world.store.get(f"{FRONT}/ring-page-order") == "2"
    assert world.store.get(f"{FRONT}/num-ring-pages") == "4"
    assert all(world.store.get(f"{FRONT}/ring-ref{i}") for i in range(4))
    assert world.backend.ring is not None and world.backend.ring.size == 128
    assert world.completed == {1: 1, 2: 1}


@pytest.mark.parametrize("offsets", [True, False], ids=["offset buffers", "page-aligned"])
def test_reads_writes_and_flushes_complete_with_the_data_checked(offsets: bool) -> None:
    program: Program = [
        *START,
        write(1, 0, 3),
        write(2, 40, MAX_DIRECT_SECTORS),
        ("submit", {"id": 3, "op": "flush"}),
        ("settle", {}),
        read(4, 0, 3),
        read(5, 40, MAX_DIRECT_SECTORS),
        ("deliver_back_watch", {}),
        ("serve", {"reverse": True}),
        ("interrupt", {}),
        ("settle", {}),
    ]
    config = BackendConfig(sectors=256)
    world = run_program(make({"buffer_offsets": offsets}), program, config)
    assert world.checker.finish().verdict == Verdict.CONFORMS
    assert world.completed == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    # the world compared both reads with the disk, and the writes are on it
    assert world.compared["read data compared"] == 2
    disk = world.backend.disk
    assert disk[: 3 * SECTOR] == data(1, 3)
    assert disk[40 * SECTOR : (40 + MAX_DIRECT_SECTORS) * SECTOR] == data(2, MAX_DIRECT_SECTORS)
    # every data grant was ended; the ring's stays while connected
    assert set(world.grants.grants) == {int(world.store.get(f"{FRONT}/ring-ref") or -1)}
    ops = [s for s in world.checker.report.steps if s.startswith("frontend_write_request")]
    assert any("FLUSH_DISKCACHE" in s for s in ops)


def test_a_bio_before_the_disk_exists_waits_for_it() -> None:
    program: Program = [("attach", {}), write(1, 4, 2), ("backend_probe", {}), ("settle", {})]
    world = run_program(make(), [*program, read(2, 4, 2), ("settle", {})])
    assert world.completed == {1: 1, 2: 1}


def test_a_full_ring_then_more() -> None:
    world = run_program(make(), [*START, ("submit_many", {"count": 40}), ("settle", {})])
    assert len(world.completed) == 40 and all(world.completed.values())


def test_the_seeded_campaign_does_real_io_without_violations() -> None:
    shape = Shape(events=24, max_sectors=MAX_DIRECT_SECTORS, sectors=2048)
    config = BackendConfig(sectors=2048)
    report = campaign(make(), seed=1, programs=40, shape=shape, config=config)
    # the seed's behaviour: only documented findings, each claimed by its signature
    # (the back end's end going away reaches backend-closed-ignored and
    # detach-leaves-disk)
    assert [f.rule for f in report.findings if claim_protocol(f.rule, f.config) is None] == []
    assert report.ios > 0
    for step in ("frontend_write_request", "frontend_service_ring", "backend_respond"):
        assert report.coverage[step] > 0


def test_the_reference_fixed_profile_runs_too() -> None:
    maker = make({"fixes": "all"})
    assert maker.options["fixes"] == "all"  # as a campaign finding records it
    world = run_program(maker, [*START, write(1, 0, 8), read(2, 0, 8), ("settle", {}), *DETACH])
    assert front(world).platform.fixes == Fixes.all()
    assert world.completed == {1: 1, 2: 1}
    shape = Shape(events=24, max_sectors=MAX_DIRECT_SECTORS, sectors=2048)
    report = campaign(maker, seed=2, programs=20, shape=shape, config=BackendConfig(sectors=2048))
    assert report.findings == [] and report.ios > 0


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="no option"):
        make({"nonsense": 1})
    with pytest.raises(ValueError, match="no fix"):
        make({"fixes": ["no-such-finding"]})
    only = make({"fixes": "io-lock-recursion"})
    assert only.options["fixes"] == ("io-lock-recursion",)


@pytest.mark.parametrize("open_disk", [True, False], ids=["disk open", "disk not open"])
def test_the_detach_path_closes_both_ends(open_disk: bool) -> None:
    program: Program = [*START, write(1, 0, 4), ("settle", {}), *DETACH]
    world = run_program(make({"open": open_disk}), program)
    assert world.checker.finish().verdict == Verdict.CONFORMS
    assert (state(world, FRONT), state(world, BACK)) == ("6", "6")
    steps = [s.split("(", 1)[0] for s in world.checker.report.steps]
    assert steps[-4:] == [
        "toolstack_detach",
        "frontend_closing",
        "frontend_closed",
        "backend_closed",
    ]
    gone = "detaching with pending users" in " ".join(front(world).log)
    assert gone == open_disk  # the seed's Closing with a user: disk_gone, Closed on close


def test_a_detach_with_io_in_flight_closes_once_the_io_is_done() -> None:
    """The disk is open (GEOM's consumer): the seed only calls disk_gone at the back
    end's Closing; the consumer closes it when its last bio is done, and xbd_close then
    closes the device."""
    program: Program = [*START, write(1, 0, 4), write(2, 8, 4), ("detach", {})]
    world = World(make(), BackendConfig())
    for name, params in program:
        world.run(name, params)
    world.run("deliver_front_watch")
    assert state(world, FRONT) == "4"  # still Connected: the disk has a user
    world.run("settle")
    world.finish()
    assert world.completed == {1: 1, 2: 1}
    assert (state(world, FRONT), state(world, BACK)) == ("6", "6")
    assert world.backend.disk[: 4 * SECTOR] == data(1, 4)


def test_a_bio_after_the_detach_fails_without_reaching_the_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """g_disk_start fails a bio to a destroyed disk with ENXIO.  (The harness, which
    wants a request on the ring for every completion, may call that a violation: the
    test looks at the completion itself.)"""
    world = World(make(), BackendConfig())
    for name, params in [*START, *DETACH]:
        world.run(name, params)
    env = front(world).env
    completions: list[tuple[int, bool]] = []
    complete = env.complete

    def spy(bio_id: int, ok: bool, data: bytes = b"") -> None:
        completions.append((bio_id, ok))
        complete(bio_id, ok, data)

    monkeypatch.setattr(env, "complete", spy)
    with contextlib.suppress(Violation):
        world.run(*read(1, 0, 1))
    assert completions == [(1, False)]
    assert front(world).outstanding == 0


def test_the_guest_shutdown_does_nothing_to_the_device() -> None:
    world = run_program(make(), START)
    before = dict(world.store.nodes)
    front(world).shutdown()
    assert world.store.nodes == before


def test_the_seeds_grant_callback_recursion_is_reached_through_the_world() -> None:
    """A grant shortage: the free callback runs from xbd_int's response loop, which holds
    the I/O lock (finding io-lock-recursion); an INVARIANTS kernel stops, a production
    kernel recurses, the fixed driver does not."""
    config = BackendConfig(sectors=8192, max_ring_page_order=1)
    bios = [read(i, MAX_DIRECT_SECTORS * i, MAX_DIRECT_SECTORS) for i in range(1, 49)]
    program: Program = [*START, *bios, ("settle", {})]
    with pytest.raises(Violation, match="recursed on non-recursive mutex"):
        run_program(make({"grant_frames": 1}), program, config)
    for options in ({"grant_frames": 1, "invariants": False}, {"grant_frames": 1, "fixes": "all"}):
        world = run_program(make(options), program, config)
        assert len(world.completed) == 48
        assert front(world).platform.gnttab.callbacks_fired > 0
