"""Reference-level replays of the findings on the I/O path that the model cannot express:
a hostile response id, the grant callback re-entering the driver, the open flag, the
grants of a barrier write, a dump that fails part-way."""

from __future__ import annotations

from xbdspec.reference import BackendConfig, BackendProfile, Bio, Platform, strategy
from xbdspec.reference.constants import (
    BIO_ORDERED,
    BIO_READ,
    BIO_WRITE,
    BLKIF_OP_INDIRECT,
    BLKIF_OP_READ,
    BLKIF_OP_WRITE,
    BUS_DMASYNC_PREWRITE,
    EBUSY,
    XBD_Q_COMPLETE,
    XBD_Q_FREE,
    XBD_Q_READY,
    XBDF_OPEN,
    XenbusState,
)
from xbdspec.reference.driver import close, dump, open_
from xbdspec.reference.geom import g_disk_access
from xbdspec.reference.grants import GTF_readonly
from xbdspec.reference.lifecycle import attach, probe, resume, suspend

from .scenario import Run, scenario

SECTOR = 512


def _bio(platform: Platform, cmd: int, sector: int, flags: int = 0) -> Bio:
    """A one-page bio on the booted disk."""
    sc = platform.softc()
    return Bio(cmd, sector, 4096, flags, platform.mem.alloc(4096, 0), bio_disk=sc.xbd_disk)


@scenario("response-id-trusted")
def response_id_trusted(run: Run) -> None:
    """A back end answers with an id that names no request: the front end must not index
    its shadow array with it (blkif.h: a response's ``id`` is the request's)."""
    platform = run.platform()
    run.step("the disk connects (shadow of 32 commands)")
    platform.boot()
    run.step("the back end pushes a response with id 10000, for no request")
    platform.backend.write_response(10_000, 0, 0)
    platform.backend.push()
    run.step("the front end takes the interrupt (xbd_int)")
    platform.deliver_interrupt()
    dev = platform.dev
    run.expect(
        dev is not None and any("unknown request id 10000" in line for line in platform.log),
        "the hostile response is reported (xenbus_dev_fatal) and skipped",
    )


@scenario("io-lock-recursion")
def io_lock_recursion(run: Run) -> None:
    """The grant free callback runs synchronously inside ``xbd_int`` (which holds
    ``xbd_io_lock``) and takes the lock again: a recursion on a non-recursive mutex."""
    platform = run.platform(grant_frames=1)  # INVARIANTS kernel: recursion is fatal
    gnttab = platform.gnttab
    run.step("the disk connects on a one-frame grant table")
    platform.boot()
    run.step("bio 0 (read) is sent")
    first = _bio(platform, BIO_READ, 0)
    strategy(first)
    run.step("another grant user takes all but 5 free grant references")
    _, hoarded = gnttab.gnttab_alloc_grant_references(gnttab.free_count - 5)
    run.step("bio 1 (read) finds too few grants: GNT_SHORTAGE, free callback registered")
    second = _bio(platform, BIO_READ, 8)
    strategy(second)
    run.step("the other user returns 10 references (below the callback's threshold)")
    gnttab.free.extend(hoarded[:10])
    run.step("the back end answers bio 0; the interrupt ends its grants (crossing it)")
    platform.backend.fetch()
    platform.backend.respond_all()
    platform.deliver_interrupt()
    run.step("the back end answers what was sent since; interrupt")
    platform.backend.fetch()
    platform.backend.respond_all()
    platform.deliver_interrupt()
    run.expect(first.done_count == 1, "bio 0 completes")
    run.expect(second.done_count == 1, "bio 1 completes once the grants are back")


@scenario("close-clears-open-flag")
def close_clears_open_flag(run: Run) -> None:
    """Through GEOM two users open the disk and one closes: GEOM calls ``d_open`` on the
    first access only and ``d_close`` on the last only (``g_disk_access``), so the flag
    and ``xbd_users`` agree.  Then ``d_open`` is called twice directly, as no caller in
    FreeBSD does, and ``d_close`` once: the device is still open."""
    platform = run.platform()
    run.step("the disk connects")
    platform.boot()
    sc = platform.softc()
    disk = sc.xbd_disk
    if disk is None:
        run.expect(False, "the disk exists after connecting")
        return
    run.step("through GEOM: user A opens the disk, user B opens it, A closes it")
    g_disk_access(disk, 1, 0, 0)
    g_disk_access(disk, 1, 0, 0)
    g_disk_access(disk, -1, 0, 0)
    run.expect(
        sc.xbd_users == 1 and (sc.xbd_flags & XBDF_OPEN) != 0,
        "through GEOM d_open ran once and no d_close yet: xbd_users 1, XBDF_OPEN set",
    )
    run.step("B closes it (GEOM's last access: d_close)")
    g_disk_access(disk, -1, 0, 0)
    run.step("a caller other than GEOM calls d_open twice, then d_close once")
    open_(disk)
    open_(disk)
    close(disk)
    run.expect(sc.xbd_users == 1, "one user remains")
    run.expect(
        (sc.xbd_flags & XBDF_OPEN) != 0, "XBDF_OPEN still set while a user has the disk open"
    )


@scenario("barrier-data-granted-writable")
def barrier_data_granted_writable(run: Run) -> None:
    """An ordered write to a back end with ``feature-barrier`` becomes a WRITE_BARRIER; the
    back end only reads its data, so the data pages must be granted read-only."""
    platform = run.platform()
    run.step("the disk connects to a back end offering feature-barrier")
    platform.boot()
    sc = platform.softc()
    run.step("bio 0 (ordered write) is sent as BLKIF_OP_WRITE_BARRIER")
    strategy(_bio(platform, BIO_WRITE, 0, BIO_ORDERED))
    sent = platform.backend.fetch()
    run.expect(sent == 1, "the barrier write is on the ring")
    shadow = sc.xbd_shadow or []
    busy = [cm for cm in shadow if cm.cm_bp is not None and cm.cm_sg_refs is not None]
    refs = [ref for cm in busy for ref in (cm.cm_sg_refs or [])[: cm.cm_nseg]]
    run.expect(bool(refs), "the barrier write's data is granted")
    run.expect(
        all(platform.gnttab.flags[ref] & GTF_readonly for ref in refs),
        "the barrier write's data pages are granted read-only",
    )
    run.step("the back end answers; interrupt")
    platform.backend.respond_all()
    platform.deliver_interrupt()
    run.expect(all(cm.cm_bp is None for cm in busy), "the barrier write completes")


@scenario("ordered-write-indirect-barrier")
def ordered_write_indirect_barrier(run: Run) -> None:
    """An ordered write of 16 pages to a back end offering ``feature-barrier`` and
    indirect segments: it needs more than 11 segments, so it goes as
    ``BLKIF_OP_INDIRECT``; blkif.h allows ``indirect_op`` only READ or WRITE, and Linux's
    blkback (the strict profile) answers an indirect WRITE_BARRIER with an error."""
    platform = run.platform(
        backend_config=BackendConfig(max_indirect_segments=32, profile=BackendProfile.LINUX_BLKBACK)
    )
    run.step("the disk connects to a back end offering feature-barrier and 32 indirect segments")
    platform.boot()
    sc = platform.softc()
    run.step("bio 0, an ordered write of 16 pages (64 KiB)")
    bp = Bio(
        BIO_WRITE, 0, 16 * 4096, BIO_ORDERED, platform.mem.alloc(16 * 4096, 0), bio_disk=sc.xbd_disk
    )
    strategy(bp)
    sent = platform.backend.fetch()
    run.expect(sent == 1, "the ordered write is on the ring")
    requests = list(platform.backend.pending)
    run.expect(
        all(
            r.operation != BLKIF_OP_INDIRECT or r.io_op in (BLKIF_OP_READ, BLKIF_OP_WRITE)
            for r in requests
        ),
        "an indirect request's indirect_op is BLKIF_OP_READ or BLKIF_OP_WRITE (blkif.h)",
    )
    run.step("the back end answers; interrupt")
    platform.backend.respond_all()
    platform.deliver_interrupt()
    run.expect(
        bp.done_count == 1 and bp.bio_error == 0, "the ordered write completes without an error"
    )


@scenario("barrier-write-not-synced")
def barrier_write_not_synced(run: Run) -> None:
    """A WRITE_BARRIER carries data the back end reads: ``bus_dmamap_sync`` must run
    ``PREWRITE`` before it goes on the ring, as for a plain write (with bounce buffers,
    the device would otherwise read stale data)."""
    platform = run.platform()
    run.step("the disk connects to a back end offering feature-barrier")
    platform.boot()
    sc = platform.softc()
    run.step("bio 0 (ordered write) is mapped and sent as BLKIF_OP_WRITE_BARRIER")
    strategy(_bio(platform, BIO_WRITE, 0, BIO_ORDERED))
    shadow = sc.xbd_shadow or []
    sent = [cm for cm in shadow if cm.cm_bp is not None and cm.cm_map is not None]
    run.expect(len(sent) == 1, "the barrier write holds a command")
    run.expect(
        all(cm.cm_map is not None and cm.cm_map.last_sync == BUS_DMASYNC_PREWRITE for cm in sent),
        "the barrier write's data was synced for the device (BUS_DMASYNC_PREWRITE)",
    )


@scenario("request-sectors-in-device-units")
def request_sectors_in_device_units(run: Run) -> None:
    """A 4096-byte-sector disk: block 1 is bytes 4096-8191, sector 8 in blkif.h's
    512-byte units."""
    platform = run.platform(backend_config=BackendConfig(sector_size=4096))
    run.step("the disk connects to a back end advertising sector-size 4096")
    platform.boot()
    run.step("bio 0 writes 4096 bytes of 0xAA at block 1 (bio_pblkno = 1)")
    write = _bio(platform, BIO_WRITE, 1)
    if write.bio_data is not None:
        write.bio_data.view()[:] = b"\xaa" * 4096
    strategy(write)
    run.step("the back end serves it; interrupt")
    platform.backend.fetch()
    platform.backend.respond_all()
    platform.deliver_interrupt()
    disk = platform.backend.disk
    run.expect(write.done_count == 1 and not write.bio_error, "the write completes")
    run.expect(bytes(disk[4096:8192]) == b"\xaa" * 4096, "block 1 (bytes 4096-8191) holds the data")
    run.expect(bytes(disk[0:4096]) == bytes(4096), "block 0 is untouched")


@scenario("resume-cancelled-connects-unconnected")
def resume_cancelled_connects_unconnected(run: Run) -> None:
    """A suspend cancelled before the disk ever connected: ``xbd_resume`` sets CONNECTED
    whatever the state was, and the handshake that follows never builds the disk."""
    platform = run.platform()
    run.step("the tool stack plugs the disk; xbd_probe and xbd_attach run (Initialising)")
    dev = platform.plug()
    run.expect(probe(dev) == 0 and attach(dev) == 0, "the front end attaches")
    platform.register_watches()
    run.step("the guest suspends before the back end has started (nothing in flight)")
    run.expect(suspend(dev) == 0, "the suspend completes")
    run.step("the suspend is cancelled: xbd_resume")
    platform.xen_suspend_cancelled = True
    resume(dev)
    platform.xen_suspend_cancelled = False
    run.step("the back end starts; the handshake runs to the end")
    platform.backend.start()
    platform.settle()
    sc = platform.softc()
    run.expect(dev.state == XenbusState.Connected, "the front end reaches Connected")
    run.expect(sc.xbd_disk is not None, "the disk is published")


@scenario("dump-ebusy-strands-ready")
def dump_ebusy_strands_ready(run: Run) -> None:
    """A dump write longer than one request after a migration, with grants short: the
    first chunk is left on READY when ``xbd_dump`` gives up, and the system going on
    later sends it from the dumper's (reused) buffer and strands its command on
    COMPLETE."""
    platform = run.platform(backend_config=BackendConfig(max_indirect_segments=32))
    run.step("the disk connects with 32 indirect segments: d_maxsize = 126976 (31 pages)")
    dev = platform.boot()
    run.step("dumpon: the dumper's maxiosize is that d_maxsize (g_disk_kerneldump)")
    run.step("the guest migrates: suspend, resume on a back end without indirect segments")
    suspend(dev)
    platform.backend.reset(BackendConfig())
    platform.resume_device()
    platform.backend.start()
    platform.settle()
    sc = platform.softc()
    disk = sc.xbd_disk
    if disk is None:
        run.expect(False, "the disk survives the resume")
        return
    run.step(
        f"requests now carry at most {sc.xbd_max_request_size} bytes; "
        f"d_maxsize stays {disk.d_maxsize}"
    )
    run.step("another grant user holds all but one request's worth of grant references")
    gnttab = platform.gnttab
    _, hoarded = gnttab.gnttab_alloc_grant_references(
        gnttab.free_count - sc.xbd_max_request_segments
    )
    offset, length = 4 * 1024 * 1024, 65536
    buffer = platform.mem.alloc(length, 0)
    buffer.view()[:] = b"\x5a" * length
    run.step(f"the kernel dump writes {length} bytes at byte {offset} (xbd_dump)")
    rc = dump(disk, buffer, offset, length)
    run.expect(rc == EBUSY, "xbd_dump finds no grants for its second chunk: EBUSY")
    run.step("the dump is abandoned; the dumper reuses its buffer (now 0xee)")
    buffer.view()[:] = b"\xee" * length
    run.step("the other grant user gives its references back; the system goes on")
    gnttab.gnttab_free_grant_references(hoarded)
    run.step("bio 0 (read) is submitted; the back end answers everything; interrupt")
    read = _bio(platform, BIO_READ, 0)
    strategy(read)
    platform.backend.fetch()
    platform.backend.respond_all()
    platform.deliver_interrupt()
    area = bytes(platform.backend.disk[offset : offset + length])
    written = sum(1 for byte in area if byte != 0)
    run.expect(
        written == 0,
        "the failed dump's chunks are not written after xbd_dump returned EBUSY "
        f"({written} bytes of the dump area were written from the reused buffer)",
    )
    queues = sc.xbd_cm_q
    run.expect(
        queues[XBD_Q_COMPLETE].q_length == 0 and queues[XBD_Q_READY].q_length == 0,
        "no dump command is left on READY or COMPLETE "
        f"({queues[XBD_Q_READY].q_length} on READY, {queues[XBD_Q_COMPLETE].q_length} "
        "on COMPLETE)",
    )
    run.expect(
        queues[XBD_Q_FREE].q_length == sc.xbd_max_requests,
        f"every command is back on FREE ({queues[XBD_Q_FREE].q_length} of {sc.xbd_max_requests})",
    )
    run.expect(read.done_count == 1 and not read.bio_error, "bio 0 completes")


__all__ = [
    "barrier_data_granted_writable",
    "barrier_write_not_synced",
    "close_clears_open_flag",
    "dump_ebusy_strands_ready",
    "io_lock_recursion",
    "request_sectors_in_device_units",
    "response_id_trusted",
    "resume_cancelled_connects_unconnected",
]
