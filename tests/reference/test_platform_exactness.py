"""The port and its platform made exact against the C and FreeBSD 14 (issue 21): the ring
slot the C leaves alone, bus_dma's flags, the DISKFLAG values and GEOM's filter, xenstore's
pending events, the grant table's recursive lock, a back end as strict as Linux's blkback,
and a dump that gives up part-way.  Each test fails on the port as it was before."""

from __future__ import annotations

import inspect
from collections import Counter

import pytest
from reference_helpers import boot, make_bio, queue_lengths, serve, submit
from xbdspec.reference import BackendConfig, Fixes, MapMode, Platform, dump, simulate
from xbdspec.reference import driver as driver_module
from xbdspec.reference.backend import BackendProfile, BackendRequest
from xbdspec.reference.constants import (
    BIO_DELETE,
    BIO_FLUSH,
    BIO_GETATTR,
    BIO_ORDERED,
    BIO_READ,
    BIO_SPEEDUP,
    BIO_WRITE,
    BIO_ZONE,
    BLKIF_OP_INDIRECT,
    BLKIF_OP_READ,
    BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER,
    BLKIF_RSP_EOPNOTSUPP,
    BLKIF_RSP_ERROR,
    BLKIF_RSP_OKAY,
    DISKFLAG_CANDELETE,
    DISKFLAG_CANFLUSHCACHE,
    DISKFLAG_CANZONE,
    DISKFLAG_DIRECT_COMPLETION,
    DISKFLAG_OPEN,
    DISKFLAG_UNMAPPED_BIO,
    DISKFLAG_WRITE_PROTECT,
    EBUSY,
    EIO,
    EOPNOTSUPP,
    VDISK_READONLY,
    XBD_Q_COMPLETE,
    XBD_Q_FREE,
    XBD_Q_READY,
    XBDCF_ASYNC_MAPPING,
)
from xbdspec.reference.geom import ENOIOCTL, g_disk_start
from xbdspec.reference.locks import mtx_lock, mtx_unlock
from xbdspec.reference.queues import xbd_dequeue_cm
from xbdspec.reference.ring import (
    IND_GREFS,
    INDIRECT_REQUEST,
    REQUEST_HEADER,
    RESPONSE,
    slot_offset,
)
from xbdspec.reference.softc import Softc
from xbdspec.reference.xenstore import XenStore

GARBAGE = 0xA5


def _soil_next_slot(platform: Platform) -> int:
    """Fill the ring slot the next request goes to with garbage; its offset."""
    ring = platform.softc().xbd_ring
    assert ring.sring is not None
    offset = slot_offset(ring.nr_ents, ring.req_prod_pvt)
    ring.sring.buf[offset : offset + 112] = bytes([GARBAGE]) * 112
    return offset


# ------------------------------------------------- the ring slot the C leaves alone


def test_an_indirect_request_copies_only_the_negotiated_indirect_grefs() -> None:
    """``memcpy(indirect_grefs, ..., sizeof(grant_ref_t) * xbd_max_request_indirectpages)``:
    one page negotiated, so grefs 1..7 and the padding keep the slot's old bytes."""
    platform = boot(BackendConfig(max_indirect_segments=32))
    sc = platform.softc()
    assert sc.xbd_max_request_indirectpages == 1
    offset = _soil_next_slot(platform)
    submit(platform, make_bio(platform, BIO_READ, 0, 16 * 4096))  # 16 segments: indirect
    ring = sc.xbd_ring
    assert ring.sring is not None
    raw = bytes(ring.sring.buf[offset : offset + 112])
    fields = INDIRECT_REQUEST.unpack_from(raw)
    assert fields[0] == BLKIF_OP_INDIRECT and fields[1] == BLKIF_OP_READ and fields[2] == 16
    cm = next(c for c in sc.xbd_shadow or [] if c.cm_bp is not None)
    assert fields[6] == cm.cm_indirectionrefs[0]
    garbage_u32 = int.from_bytes(bytes([GARBAGE]) * 4, "little")
    assert list(fields[7:]) == [garbage_u32] * 7  # the old port wrote zeros here
    assert raw[4:8] == bytes([GARBAGE]) * 4 and raw[26:28] == bytes([GARBAGE]) * 2
    assert raw[IND_GREFS + 32 :] == bytes([GARBAGE]) * (112 - IND_GREFS - 32)
    serve(platform)  # the back end reads only the pages the request names
    assert cm.cm_bp is None


def test_a_direct_request_leaves_padding_and_unused_segments_as_they_were() -> None:
    platform = boot()
    offset = _soil_next_slot(platform)
    submit(platform, make_bio(platform, BIO_WRITE, 8, 2 * 4096, fill=3))
    ring = platform.softc().xbd_ring
    assert ring.sring is not None
    raw = bytes(ring.sring.buf[offset : offset + 112])
    operation, nsegs, _handle, _id, sector = REQUEST_HEADER.unpack_from(raw)
    assert (operation, nsegs, sector) == (BLKIF_OP_WRITE, 2, 8)
    assert raw[4:8] == bytes([GARBAGE]) * 4  # header padding
    assert raw[24 + 2 * 8 :] == bytes([GARBAGE]) * (112 - 40)  # segments 2..10
    assert serve(platform) == 1 and platform.backend.disk[8 * 512 : 8 * 512 + 8192] == b"\3" * 8192


# ------------------------------------------------------------ bus_dma's flags


def test_a_load_short_of_resources_is_deferred_without_nowait() -> None:
    """The seed passes flags 0: FreeBSD queues a map short of bounce pages and answers
    EINPROGRESS, so ``xbd_queue_request`` never returns ENOMEM (the old platform did, and
    the seed's dead ``break`` ran)."""
    platform = boot()
    sc = platform.softc()
    platform.busdma.next_modes.append(MapMode.FAIL_ENOMEM)
    first = submit(platform, make_bio(platform, BIO_READ, 0))
    second = submit(platform, make_bio(platform, BIO_READ, 8))
    assert first.done_count == 0 and not any("xbd_queue_request" in x for x in platform.log)
    assert platform.busdma.enomem_deferred == 1 and len(platform.busdma.deferred) == 1
    cm = platform.busdma.deferred[0].arg
    assert cm.cm_flags & XBDCF_ASYNC_MAPPING and list(sc.xbd_bioq) == [second]
    assert platform.busdma.run_deferred()  # pages come back (busdma_swi)
    serve(platform)
    serve(platform)
    assert first.done_count == 1 and not first.bio_error
    assert second.done_count == 1 and not second.bio_error


def test_only_the_nowait_hook_answers_enomem_at_once() -> None:
    platform = boot()
    platform.busdma.assume_nowait = True
    platform.busdma.next_modes.append(MapMode.FAIL_ENOMEM)
    first = submit(platform, make_bio(platform, BIO_READ, 0))
    assert first.done_count == 1 and first.bio_error == EIO
    assert "xbd_queue_request returned 12" in platform.log


# ------------------------------------------------ DISKFLAG values and GEOM's filter


def test_diskflag_values_are_freebsd_14s() -> None:
    """``sys/geom/geom_disk.h`` (FreeBSD 14); the old port had CANFLUSHCACHE = 0x4 (which
    is CANDELETE) and UNMAPPED_BIO = 0x20 (DIRECT_COMPLETION)."""
    assert (DISKFLAG_OPEN, DISKFLAG_CANDELETE, DISKFLAG_CANFLUSHCACHE) == (0x2, 0x4, 0x8)
    assert (DISKFLAG_UNMAPPED_BIO, DISKFLAG_DIRECT_COMPLETION) == (0x10, 0x20)
    assert (DISKFLAG_CANZONE, DISKFLAG_WRITE_PROTECT) == (0x80, 0x100)


@pytest.mark.parametrize("features", [True, False])
def test_the_disk_advertises_freebsd_flags(features: bool) -> None:
    platform = boot(BackendConfig(barrier=features, flush=features))
    disk = platform.softc().xbd_disk
    assert disk is not None
    assert disk.d_flags == (0x18 if features else 0x10)


def test_geom_filters_what_the_disk_did_not_ask_for() -> None:
    platform = boot(BackendConfig(barrier=False, flush=False))
    sc = platform.softc()
    delete = make_bio(platform, BIO_DELETE, 0, 4096)  # (a zero-length one: delivered as 0)
    getattr_ = make_bio(platform, BIO_GETATTR, 0, 0)
    flush = make_bio(platform, BIO_FLUSH, 0, 0)  # would panic the seed if it got through
    zone = make_bio(platform, BIO_ZONE, 0, 0)
    empty_read = make_bio(platform, BIO_READ, 0, 0)
    for bp in (delete, getattr_, flush, zone, empty_read):
        assert not g_disk_start(bp)
    assert (delete.bio_error, flush.bio_error, zone.bio_error) == (EOPNOTSUPP,) * 3
    assert getattr_.bio_error == ENOIOCTL and empty_read.bio_error == 0
    assert platform.backend.fetch() == 0 and sc.xbd_cm_q[XBD_Q_FREE].q_length == 32
    read = make_bio(platform, BIO_READ, 0)
    assert g_disk_start(read) and serve(platform) == 1 and read.done_count == 1


def test_geom_passes_a_flush_with_canflushcache() -> None:
    platform = boot()
    flush = make_bio(platform, BIO_FLUSH, 0, 0)
    assert g_disk_start(flush) and serve(platform) == 1 and flush.bio_error == 0


def test_a_speedup_passes_geom_and_leaks_its_grants() -> None:
    """The one command the seed does not know that ``g_disk_start`` lets through."""
    platform = boot()
    free_before = platform.gnttab.free_count
    speedup = make_bio(platform, BIO_SPEEDUP, 0, 0)
    assert g_disk_start(speedup)  # reached xbd_strategy
    assert speedup.bio_error == EOPNOTSUPP and speedup.done_count == 1
    assert platform.gnttab.free_count == free_before - platform.softc().xbd_max_request_segments


# ------------------------------------------------------------- xenstore's events


def test_a_watch_holds_one_pending_event_as_freebsd_14s_other_end_watch() -> None:
    xs = XenStore()
    xs.register_watch("be/state", "front")  # the initial event
    xs.write("be/state", "2")
    xs.write("be/state", "4")
    assert xs.pending == ["front"] and xs.dropped == 2
    assert xs.next_event() == "front"  # xenwatch_thread: pending-- before the callback
    xs.write("be/state", "5")
    assert xs.pending == ["front"]


def test_an_unlimited_watch_queues_every_event_as_older_trees() -> None:
    xs = XenStore()
    xs.register_watch("be/state", "front", max_pending=0)
    xs.write("be/state", "2")
    xs.write("be/state", "4")
    assert xs.pending == ["front"] * 3 and xs.dropped == 0
    xs.unregister_watch("front")
    assert xs.pending == []


# ------------------------------------------------------ the grant table's lock


def test_free_callbacks_run_under_the_recursive_grant_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``MTX_DEF | MTX_RECURSE``: the callback's nested grant calls (allocation and the
    return of the unclaimed rest, through xbd_startio) retake the lock legally."""
    platform = boot(grant_frames=1)  # INVARIANTS: a non-recursive recursion is fatal
    gnttab = platform.gnttab
    _, hoarded = gnttab.gnttab_alloc_grant_references(gnttab.free_count - 5)
    waiting = submit(platform, make_bio(platform, BIO_READ, 8))
    assert gnttab.callbacks and gnttab.lock.depth == 0
    depths: list[int] = []
    real = driver_module.restart_queue_callback

    def spy(arg: Softc) -> None:
        depths.append(gnttab.lock.depth)
        real(arg)

    monkeypatch.setattr(driver_module, "restart_queue_callback", spy)
    gnttab.callbacks[0].fn = spy
    recursions = gnttab.lock.recursions
    gnttab.gnttab_free_grant_references(hoarded)  # another grant user gives them back
    assert depths == [1] and gnttab.lock.depth == 0
    assert gnttab.lock.recursions > recursions  # the nested allocation and return
    assert platform.softc().xbd_io_lock.recursions == 0
    assert serve(platform) == 1 and waiting.done_count == 1


def test_the_restart_callback_recurses_only_inside_xbd_int(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seed note 12: under grant pressure, the driver's own callback runs under
    ``xbd_io_lock`` only from ``xbd_int``, never from ``xbd_queue_cb``."""
    seen: Counter[tuple[bool, str]] = Counter()
    real = driver_module.restart_queue_callback

    def spy(arg: Softc) -> None:
        frames = [f.function for f in inspect.stack()[1:16]]
        inside = next((f for f in frames if f in ("queue_cb", "int_")), "outside")
        seen[(arg.xbd_io_lock.depth > 0, inside)] += 1
        real(arg)

    monkeypatch.setattr(driver_module, "restart_queue_callback", spy)
    for seed in range(12):
        simulate.run_simulation(300, seed)
    assert seen[(True, "int_")] > 0 and seen[(False, "outside")] > 0
    assert set(seen) <= {(True, "int_"), (False, "outside")}, seen


# ------------------------------------------------ a back end as strict as blkback


def _strict(**kwargs: object) -> BackendConfig:
    return BackendConfig(profile=BackendProfile.LINUX_BLKBACK, **kwargs)  # type: ignore[arg-type]


def test_the_default_back_end_is_permissive() -> None:
    assert BackendConfig().profile is BackendProfile.PERMISSIVE


@pytest.mark.parametrize("strict", [False, True])
def test_an_indirect_barrier_is_refused_by_blkback(strict: bool) -> None:
    """An ordered write of 16 pages to a back end with barriers and indirect segments is
    sent as an indirect WRITE_BARRIER, which blkback refuses (indirect_op must be READ or
    WRITE)."""
    make = _strict if strict else BackendConfig
    platform = boot(make(max_indirect_segments=32))
    write = submit(platform, make_bio(platform, BIO_WRITE, 0, 16 * 4096, BIO_ORDERED, fill=7))
    platform.backend.fetch()
    [request] = platform.backend.pending
    assert (request.operation, request.io_op) == (BLKIF_OP_INDIRECT, BLKIF_OP_WRITE_BARRIER)
    serve(platform)
    assert write.done_count == 1
    assert write.bio_error == (EIO if strict else 0)
    if strict:
        assert platform.backend.refused == [
            f"invalid indirect operation ({BLKIF_OP_WRITE_BARRIER})"
        ]
        assert platform.backend.disk[: 16 * 4096] == bytes(16 * 4096)


@pytest.mark.parametrize("strict", [False, True])
def test_io_not_aligned_to_sector_size_is_refused_by_blkback(strict: bool) -> None:
    """On a 4096-byte-sector disk the seed sends block 1 as sector 1 (seed note 20): not a
    multiple of 8 512-byte sectors, which blkback refuses."""
    make = _strict if strict else BackendConfig
    platform = boot(make(sector_size=4096))
    write = submit(platform, make_bio(platform, BIO_WRITE, 1, 4096, fill=9))
    serve(platform)
    assert write.bio_error == (EIO if strict else 0)
    if strict:
        assert platform.backend.refused == ["misaligned I/O request"]


@pytest.mark.parametrize("cmd", [BIO_READ, BIO_WRITE])
@pytest.mark.parametrize("strict", [False, True])
def test_zero_segment_reads_and_writes_are_refused_by_blkback(cmd: int, strict: bool) -> None:
    """A zero-length bio handed to ``xbd_strategy`` directly (GEOM completes it itself)
    becomes a request with no segment."""
    make = _strict if strict else BackendConfig
    platform = boot(make())
    bio = submit(platform, make_bio(platform, cmd, 0, 0))
    platform.backend.fetch()
    assert platform.backend.pending[0].nr_segments == 0
    serve(platform)
    assert bio.done_count == 1 and bio.bio_error == (EIO if strict else 0)


def test_blkback_serves_a_flush_without_segments() -> None:
    platform = boot(_strict())
    flush = submit(platform, make_bio(platform, BIO_FLUSH, 0, 0))
    serve(platform)
    assert flush.done_count == 1 and flush.bio_error == 0 and platform.backend.refused == []


def test_blkback_refuses_writes_to_a_read_only_disk() -> None:
    platform = boot(_strict(info=VDISK_READONLY))
    write = submit(platform, make_bio(platform, BIO_WRITE, 0, 4096, fill=1))
    read = submit(platform, make_bio(platform, BIO_READ, 8))
    serve(platform)
    assert write.bio_error == EIO and read.bio_error == 0
    assert platform.backend.refused == ["write to a read-only disk"]


def test_blkback_checks_the_whole_request_before_writing() -> None:
    """Permissive writes segment by segment and fails at the bad one; blkback maps every
    grant first, so a bad second grant leaves the disk untouched."""
    for profile, touched in (
        (BackendProfile.PERMISSIVE, True),
        (BackendProfile.LINUX_BLKBACK, False),
    ):
        platform = boot(BackendConfig(profile=profile))
        page = platform.mem.alloc(4096)
        page.view()[:] = b"\x42" * 4096
        _, ref = platform.gnttab.gnttab_grant_foreign_access(0, page.pfn, 1)
        request = BackendRequest(
            7, BLKIF_OP_WRITE, BLKIF_OP_WRITE, 0, 2, 0, [(ref, 0, 7), (9999, 0, 7)]
        )
        assert platform.backend._perform(request) == BLKIF_RSP_ERROR
        assert (platform.backend.disk[:4096] == b"\x42" * 4096) is touched


def test_blkback_answers_an_unknown_operation_with_eopnotsupp() -> None:
    for profile, status in (
        (BackendProfile.PERMISSIVE, BLKIF_RSP_ERROR),
        (BackendProfile.LINUX_BLKBACK, BLKIF_RSP_EOPNOTSUPP),
    ):
        platform = boot(BackendConfig(profile=profile))
        request = BackendRequest(1, 9, 9, 0, 0, 0, [])
        assert platform.backend._perform(request) == status


def test_blkback_echoes_indirect_op_in_the_response() -> None:
    platform = boot(_strict(max_indirect_segments=32))
    read = submit(platform, make_bio(platform, BIO_READ, 0, 16 * 4096))
    platform.backend.fetch()
    platform.backend.respond_all()
    ring = platform.backend.ring
    assert ring is not None and ring.sring is not None
    offset = ring.sring.page.offset + slot_offset(ring.nr_ents, ring.rsp_prod_pvt - 1)
    _id, operation, status = RESPONSE.unpack_from(ring.sring.buf, offset)
    assert (operation, status) == (BLKIF_OP_READ, BLKIF_RSP_OKAY)
    platform.deliver_interrupt()
    assert read.done_count == 1 and read.bio_error == 0


# ------------------------------------------------------ a dump that gives up


@pytest.mark.parametrize("fix", [False, True])
def test_a_dump_without_enough_commands_takes_its_chunks_back_with_the_fix(fix: bool) -> None:
    platform = Platform(fixes=Fixes.only("dump-ebusy-strands-ready") if fix else Fixes())
    platform.boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    assert disk is not None
    mtx_lock(sc.xbd_io_lock)
    while sc.xbd_cm_q[XBD_Q_FREE].q_length > 1:
        xbd_dequeue_cm(sc, XBD_Q_FREE)  # the others are taken (a test's shortcut)
    mtx_unlock(sc.xbd_io_lock)
    free_grants = platform.gnttab.free_count
    length = 2 * sc.xbd_max_request_size
    assert dump(disk, platform.mem.alloc(length), 0, length) == EBUSY
    lengths = queue_lengths(sc)
    assert lengths[XBD_Q_READY] == (0 if fix else 1)
    assert lengths[XBD_Q_FREE] == (1 if fix else 0)
    assert (platform.gnttab.free_count == free_grants) is fix
    assert lengths[XBD_Q_COMPLETE] == 0
