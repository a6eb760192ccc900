"""The seed's command processing, dump support and disk entry points, ported function by
function (``blkfront.c`` sections "Command Processing", "Dump Support", "Disk Entrypoints").

Each function names the seed function it ports and keeps its control flow, flags and
queues, so the two can be read side by side.  Kernel services (grant table, bus DMA, event
channels, ``biodone``, ``printf``) are reached through ``sc.platform``.  Departures from
the C code are listed in ``docs/reference.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .busdma import Segment
from .cint import s32, sdiv, u8, u16, u32, u64
from .constants import (
    BIO_ERROR,
    BIO_FLUSH,
    BIO_ORDERED,
    BIO_READ,
    BIO_WRITE,
    BLKIF_MAX_SEGMENTS_PER_REQUEST,
    BLKIF_OP_FLUSH_DISKCACHE,
    BLKIF_OP_INDIRECT,
    BLKIF_OP_READ,
    BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER,
    BLKIF_RSP_OKAY,
    BUS_DMA_WAITOK,
    BUS_DMASYNC_POSTREAD,
    BUS_DMASYNC_POSTWRITE,
    BUS_DMASYNC_PREREAD,
    BUS_DMASYNC_PREWRITE,
    EBUSY,
    EINPROGRESS,
    EINVAL,
    EIO,
    ENOTTY,
    ENXIO,
    EOPNOTSUPP,
    GNTTAB_LIST_END,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    XBD_Q_BUSY,
    XBD_Q_COMPLETE,
    XBD_Q_FREE,
    XBD_Q_NONE,
    XBD_Q_READY,
    XBD_SECTOR_SHFT,
    XBDCF_ASYNC_MAPPING,
    XBDCF_FROZEN,
    XBDCF_INITIALIZER,
    XBDCF_Q_FREEZE,
    XBDCF_Q_MASK,
    XBDF_BARRIER,
    XBDF_CM_SHORTAGE,
    XBDF_FLUSH,
    XBDF_GNT_SHORTAGE,
    XBDF_NONE,
    XBDF_OPEN,
    XBDF_WAIT_IDLE,
    XbdState,
    XenbusState,
)
from .faults import KernelAssertion, KernelPanic, UndefinedBehaviour
from .grants import GnttabFreeCallback
from .locks import mtx_assert_owned, mtx_lock, mtx_owned, mtx_unlock
from .memory import KernelBuffer
from .queues import (
    xbd_dequeue_bio,
    xbd_dequeue_cm,
    xbd_enqueue_bio,
    xbd_enqueue_cm,
    xbd_queue_length,
    xbd_remove_cm,
    xbd_requeue_bio,
    xbd_requeue_cm,
)
from .ring import (
    IND_GREFS,
    IND_HANDLE,
    IND_ID,
    IND_INDIRECT_OP,
    IND_NR_SEGMENTS,
    IND_OPERATION,
    IND_SECTOR_NUMBER,
    REQ_HANDLE,
    REQ_ID,
    REQ_NR_SEGMENTS,
    REQ_OPERATION,
    REQ_SECTOR_NUMBER,
    REQ_SEG,
    RESPONSE,
    RING_FINAL_CHECK_FOR_RESPONSES,
    RING_FULL,
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY,
    RSP_EVENT,
    SEGMENT,
    U8,
    U16,
    U32,
    U64,
    slot_offset,
)
from .softc import Bio, Command, Disk, Softc
from .xenbus import xenbus_dev_fatal, xenbus_get_otherend_id, xenbus_get_otherend_state

if TYPE_CHECKING:
    from .xenbus import XenbusDevice

_SECTOR_SIZE = 1 << XBD_SECTOR_SHFT
#: the wait channel ``&sc->xbd_cm_q[XBD_Q_BUSY]`` (suspend sleeps on it, xbd_int wakes it).
BUSY_QUEUE_CHANNEL = "xbd_cm_q[XBD_Q_BUSY]"


def _dev(sc: Softc, where: str) -> XenbusDevice:
    """``sc->xbd_dev``; a NULL one is undefined behaviour at ``where``."""
    dev = sc.xbd_dev
    if dev is None:
        raise UndefinedBehaviour(where, "NULL dereference of sc->xbd_dev")
    return dev


# ----------------------------------------------------------------- Command Processing


def freeze(sc: Softc, xbd_flag: int) -> None:
    """Port of ``xbd_freeze``: count one more reason to hold the queue (once per flag)."""
    if xbd_flag != XBDF_NONE and (sc.xbd_flags & xbd_flag) != 0:
        return
    sc.xbd_flags |= xbd_flag
    sc.xbd_qfrozen_cnt = s32(sc.xbd_qfrozen_cnt + 1)


def thaw(sc: Softc, xbd_flag: int) -> None:
    """Port of ``xbd_thaw``: drop one reason to hold the queue; panics when not frozen."""
    if xbd_flag != XBDF_NONE and (sc.xbd_flags & xbd_flag) == 0:
        return
    if sc.xbd_qfrozen_cnt == 0:
        raise KernelPanic("xbd_thaw", f"xbd_thaw: Thaw with flag 0x{xbd_flag:x} while not frozen.")
    sc.xbd_flags &= ~xbd_flag
    sc.xbd_qfrozen_cnt = s32(sc.xbd_qfrozen_cnt - 1)


def cm_freeze(sc: Softc, cm: Command, cm_flag: int) -> None:
    """Port of ``xbd_cm_freeze``: a command holds the queue at most once (``FROZEN``)."""
    if (cm.cm_flags & XBDCF_FROZEN) != 0:
        return
    cm.cm_flags |= XBDCF_FROZEN | cm_flag
    freeze(sc, XBDF_NONE)


def cm_thaw(sc: Softc, cm: Command) -> None:
    """Port of ``xbd_cm_thaw``: release the command's hold on the queue, if any."""
    if (cm.cm_flags & XBDCF_FROZEN) == 0:
        return
    cm.cm_flags &= ~XBDCF_FROZEN
    thaw(sc, XBDF_NONE)


def flush_requests(sc: Softc) -> None:
    """Port of ``xbd_flush_requests``: publish ``req_prod`` and notify if the back end asks."""
    if RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(sc.xbd_ring) and sc.xen_intr_handle is not None:
        sc.platform.evtchn.signal_backend()


def free_command(cm: Command) -> None:
    """Port of ``xbd_free_command``: reset the command, put it on FREE, thaw CM_SHORTAGE."""
    if (cm.cm_flags & XBDCF_Q_MASK) != XBD_Q_NONE:
        raise KernelAssertion(
            "xbd_free_command",
            f"Freeing command that is still on queue {cm.cm_flags & XBDCF_Q_MASK}.",
        )
    cm.cm_flags = XBDCF_INITIALIZER
    cm.cm_bp = None
    cm.cm_complete = None
    xbd_enqueue_cm(cm, XBD_Q_FREE)
    sc = cm.cm_sc
    if sc is None:
        raise UndefinedBehaviour("xbd_free_command", "NULL dereference of cm->cm_sc")
    thaw(sc, XBDF_CM_SHORTAGE)


def mksegarray(
    sc: Softc,
    segs: list[Segment],
    nsegs: int,
    gref_head: list[int],
    otherend_id: int,
    readonly: int,
    sg_ref: list[int],
    dest: bytearray,
    dest_offset: int,
    dest_capacity: int,
) -> None:
    """Port of ``xbd_mksegarray``: one grant and one ``blkif_request_segment`` per segment.

    ``dest``/``dest_offset`` is where the segment array lives (the ring slot for a direct
    request, the indirection pages for an indirect one); ``dest_capacity`` is how many
    segments fit there (writing past it is undefined behaviour, as in C).
    """
    gnttab = sc.platform.gnttab
    if nsegs > len(segs):
        raise UndefinedBehaviour("xbd_mksegarray", f"reads segs[{len(segs)}] past the array")
    if nsegs > len(sg_ref):
        raise UndefinedBehaviour("xbd_mksegarray", f"writes sg_ref[{len(sg_ref)}] past cm_sg_refs")
    if nsegs > dest_capacity:
        raise UndefinedBehaviour(
            "xbd_mksegarray", f"writes sg[{dest_capacity}] past the segment array"
        )
    pack_segment = SEGMENT.pack_into
    for index in range(nsegs):
        buffer_ma, ds_len = segs[index]
        if buffer_ma % _SECTOR_SIZE != 0:
            raise KernelAssertion("xbd_mksegarray", "XEN disk driver I/O must be sector aligned")
        if ds_len % _SECTOR_SIZE != 0:
            raise KernelAssertion(
                "xbd_mksegarray", "XEN disk driver I/Os must be a multiple of the sector length"
            )
        fsect = (buffer_ma & PAGE_MASK) >> XBD_SECTOR_SHFT
        lsect = u64(fsect + (ds_len >> XBD_SECTOR_SHFT) - 1)
        if not lsect <= 7:
            raise KernelAssertion(
                "xbd_mksegarray", "XEN disk driver data cannot cross a page boundary"
            )
        ref = gnttab.gnttab_claim_grant_reference(gref_head)
        if ref == GNTTAB_LIST_END:
            raise KernelAssertion("xbd_mksegarray", "grant_reference failed")
        gnttab.gnttab_grant_foreign_access_ref(ref, otherend_id, buffer_ma >> PAGE_SHIFT, readonly)
        sg_ref[index] = ref
        pack_segment(dest, dest_offset + 8 * index, ref, u8(fsect), u8(lsect))


def _data_readonly(sc: Softc, cm: Command) -> int:
    """``xbd_queue_cb``'s ``readonly`` argument: the back end only reads the data of a
    write (the seed: of a ``BLKIF_OP_WRITE``; fixed: of a ``WRITE_BARRIER`` too)."""
    if sc.platform.fixes.barrier_data_granted_writable:
        return int(cm.cm_operation in (BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER))
    return int(cm.cm_operation == BLKIF_OP_WRITE)


def queue_cb(arg: Any, segs: list[Segment], nsegs: int, error: int) -> None:
    """Port of ``xbd_queue_cb``: the bus DMA callback that fills in the ring request."""
    cm: Command = arg
    sc = cm.cm_sc
    if sc is None:
        raise UndefinedBehaviour("xbd_queue_cb", "NULL dereference of cm->cm_sc")
    if error:
        bp = cm.cm_bp
        if bp is None:
            raise UndefinedBehaviour("xbd_queue_cb", "NULL dereference of cm->cm_bp")
        fixes = sc.platform.fixes
        deferred = (cm.cm_flags & XBDCF_ASYNC_MAPPING) != 0
        bp.bio_error = EIO
        if fixes.failed_mapping_leaks:
            # the bio fails as biofinish would; the command's grants and hold are released
            bp.bio_flags |= BIO_ERROR
            bp.bio_resid = bp.bio_bcount
            sc.platform.gnttab.gnttab_free_grant_references(cm.cm_gref_head)
            cm_thaw(sc, cm)
        sc.platform.biodone(bp)
        free_command(cm)
        if fixes.suspend_ignores_deferred_mappings and sc.xbd_state == XbdState.SUSPENDED:
            sc.platform.wakeup(BUSY_QUEUE_CHANNEL)  # a suspend waits for this mapping
        if fixes.mapping_failure_stops_loop and deferred:
            startio(sc)  # the bios behind the failed one go on
        return
    if not nsegs <= sc.xbd_max_request_segments:
        raise KernelAssertion("xbd_queue_cb", "Too many segments in a blkfront I/O")
    ring = sc.xbd_ring
    sring = ring.sring
    if sring is None:
        raise UndefinedBehaviour("xbd_queue_cb", "RING_GET_REQUEST on a NULL sring")
    otherend_id = xenbus_get_otherend_id(_dev(sc, "xbd_queue_cb"))
    disk = sc.xbd_disk
    handle = u16(disk.address) if disk is not None else 0
    if cm.cm_sg_refs is None:
        raise UndefinedBehaviour("xbd_queue_cb", "NULL dereference of cm->cm_sg_refs")
    offset = slot_offset(ring.nr_ents, ring.req_prod_pvt)
    ring.req_prod_pvt = u32(ring.req_prod_pvt + 1)
    buf = sring.buf
    # field by field, as the C assigns them: the rest of the slot keeps its old bytes
    if nsegs <= BLKIF_MAX_SEGMENTS_PER_REQUEST:
        U64.pack_into(buf, offset + REQ_ID, u64(cm.cm_id))
        U8.pack_into(buf, offset + REQ_OPERATION, u8(cm.cm_operation))
        U64.pack_into(buf, offset + REQ_SECTOR_NUMBER, u64(cm.cm_sector_number))
        U16.pack_into(buf, offset + REQ_HANDLE, handle)
        U8.pack_into(buf, offset + REQ_NR_SEGMENTS, u8(nsegs))
        cm.cm_nseg = nsegs
        mksegarray(
            sc,
            segs,
            nsegs,
            cm.cm_gref_head,
            otherend_id,
            _data_readonly(sc, cm),
            cm.cm_sg_refs,
            buf,
            offset + REQ_SEG,
            BLKIF_MAX_SEGMENTS_PER_REQUEST,
        )
    else:
        U64.pack_into(buf, offset + IND_ID, u64(cm.cm_id))
        U8.pack_into(buf, offset + IND_OPERATION, BLKIF_OP_INDIRECT)
        U8.pack_into(buf, offset + IND_INDIRECT_OP, u8(cm.cm_operation))
        U64.pack_into(buf, offset + IND_SECTOR_NUMBER, u64(cm.cm_sector_number))
        U16.pack_into(buf, offset + IND_HANDLE, handle)
        U16.pack_into(buf, offset + IND_NR_SEGMENTS, u16(nsegs))
        pages = cm.cm_indirectionpages
        cm.cm_nseg = nsegs
        if pages is None:
            raise UndefinedBehaviour(
                "xbd_queue_cb", "xbd_mksegarray writes through NULL cm->cm_indirectionpages"
            )
        mksegarray(
            sc,
            segs,
            nsegs,
            cm.cm_gref_head,
            otherend_id,
            _data_readonly(sc, cm),
            cm.cm_sg_refs,
            pages.mem,
            pages.offset,
            pages.length // 8,
        )
        # memcpy(ring_req->indirect_grefs, &cm->cm_indirectionrefs,
        #        sizeof(grant_ref_t) * sc->xbd_max_request_indirectpages)
        ncopy = sc.xbd_max_request_indirectpages
        if ncopy > 8:
            raise UndefinedBehaviour("xbd_queue_cb", "memcpy past indirect_grefs[8]")
        for index in range(ncopy):
            U32.pack_into(buf, offset + IND_GREFS + 4 * index, cm.cm_indirectionrefs[index])
    if cm.cm_operation == BLKIF_OP_READ:
        op = BUS_DMASYNC_PREREAD
    elif cm.cm_operation == BLKIF_OP_WRITE or (
        cm.cm_operation == BLKIF_OP_WRITE_BARRIER and sc.platform.fixes.barrier_write_not_synced
    ):
        op = BUS_DMASYNC_PREWRITE
    else:
        op = 0
    if cm.cm_map is not None:
        cm.cm_map.last_sync = op
    sc.platform.gnttab.gnttab_free_grant_references(cm.cm_gref_head)
    xbd_enqueue_cm(cm, XBD_Q_BUSY)
    if (cm.cm_flags & XBDCF_ASYNC_MAPPING) != 0:
        flush_requests(sc)


def queue_request(sc: Softc, cm: Command) -> int:
    """Port of ``xbd_queue_request``: map the data; freeze the queue if mapping is deferred."""
    tag = sc.xbd_io_dmat
    if tag is None or cm.cm_map is None:
        raise UndefinedBehaviour("xbd_queue_request", "bus_dmamap_load with a NULL tag or map")
    busdma = sc.platform.busdma
    # flags 0 (BUS_DMA_WAITOK): a load short of resources is deferred, never ENOMEM, so
    # this returns 0 on FreeBSD whatever the outcome (see busdma.py)
    if cm.cm_bp is not None:
        bp = cm.cm_bp
        error = busdma.load(
            tag, cm.cm_map, bp.bio_data, bp.bio_bcount, queue_cb, cm, BUS_DMA_WAITOK
        )
    else:
        error = busdma.load(tag, cm.cm_map, cm.cm_data, cm.cm_datalen, queue_cb, cm, BUS_DMA_WAITOK)
    if error == EINPROGRESS:
        if sc.platform.fixes.deferred_single_step_unpublished:
            # marked even when already frozen (single-stepped): xbd_queue_cb must publish it
            cm.cm_flags |= XBDCF_ASYNC_MAPPING
        cm_freeze(sc, cm, XBDCF_ASYNC_MAPPING)
        return 0
    return error


def restart_queue_callback(arg: Any) -> None:
    """Port of ``xbd_restart_queue_callback``: grants are back; thaw and restart I/O."""
    sc: Softc = arg
    if sc.platform.fixes.io_lock_recursion and mtx_owned(sc.xbd_io_lock):
        # called back from inside the driver (on the seed only xbd_int's response loop),
        # which holds the lock and restarts the queue itself: only drop the hold
        thaw(sc, XBDF_GNT_SHORTAGE)
        return
    mtx_lock(sc.xbd_io_lock)
    thaw(sc, XBDF_GNT_SHORTAGE)
    startio(sc)
    mtx_unlock(sc.xbd_io_lock)


def _needs_indirect(bp: Bio) -> bool:
    """Whether a bio's data spans more pages than one direct request carries
    (``BLKIF_MAX_SEGMENTS_PER_REQUEST``): it would go as ``BLKIF_OP_INDIRECT``, whose
    ``indirect_op`` blkif.h allows only READ or WRITE (``ordered-write-indirect-barrier``'s
    fix: such an ordered write is single-stepped as a plain write instead)."""
    data = bp.bio_data
    offset = data.offset if data is not None else 0
    pages = (offset + bp.bio_bcount + PAGE_SIZE - 1) // PAGE_SIZE
    return pages > BLKIF_MAX_SEGMENTS_PER_REQUEST


def bio_command(sc: Softc) -> Command | None:
    """Port of ``xbd_bio_command``: turn the next bio into a command, or hold the queue."""
    if sc.xbd_state != XbdState.CONNECTED:
        return None
    bp = xbd_dequeue_bio(sc)
    if sc.platform.fixes.unsupported_bio_waits_for_a_command:
        # a bio that can only be rejected is failed before it takes a command
        while bp is not None and _rejected_before_a_command(sc, bp):
            sc.platform.biofinish(bp, EOPNOTSUPP)
            bp = xbd_dequeue_bio(sc)
    if bp is None:
        return None
    cm = xbd_dequeue_cm(sc, XBD_Q_FREE)
    if cm is None:
        freeze(sc, XBDF_CM_SHORTAGE)
        xbd_requeue_bio(sc, bp)
        return None
    gnttab = sc.platform.gnttab
    error, head = gnttab.gnttab_alloc_grant_references(sc.xbd_max_request_segments)
    if error != 0:
        if sc.xbd_callback is None:
            sc.xbd_callback = GnttabFreeCallback()
        gnttab.gnttab_request_free_callback(
            sc.xbd_callback, restart_queue_callback, sc, sc.xbd_max_request_segments
        )
        freeze(sc, XBDF_GNT_SHORTAGE)
        xbd_requeue_bio(sc, bp)
        xbd_enqueue_cm(cm, XBD_Q_FREE)
        return None
    cm.cm_gref_head = head
    cm.cm_bp = bp
    cm.cm_sector_number = u64(bp.bio_pblkno)
    if sc.platform.fixes.request_sectors_in_device_units:
        cm.cm_sector_number = _blkif_sector(sc, bp.bio_pblkno)
    cmd = bp.bio_cmd
    if cmd == BIO_READ:
        cm.cm_operation = BLKIF_OP_READ
    elif cmd == BIO_WRITE:
        cm.cm_operation = BLKIF_OP_WRITE
        if (bp.bio_flags & BIO_ORDERED) != 0:
            if (sc.xbd_flags & XBDF_BARRIER) != 0 and not (
                sc.platform.fixes.ordered_write_indirect_barrier and _needs_indirect(bp)
            ):
                cm.cm_operation = BLKIF_OP_WRITE_BARRIER
            else:
                cm.cm_flags |= XBDCF_Q_FREEZE
                if xbd_queue_length(sc, XBD_Q_BUSY) != 0:
                    freeze(sc, XBDF_WAIT_IDLE)
                    xbd_requeue_cm(cm, XBD_Q_READY)
                    return None
    elif cmd == BIO_FLUSH:
        if (sc.xbd_flags & XBDF_FLUSH) != 0:
            cm.cm_operation = BLKIF_OP_FLUSH_DISKCACHE
        elif (sc.xbd_flags & XBDF_BARRIER) != 0:
            cm.cm_operation = BLKIF_OP_WRITE_BARRIER
        elif sc.platform.fixes.flush_without_support_panics:
            _reject(sc, cm, bp, release=True)  # as for a command the back end cannot do
            return None
        else:
            raise KernelPanic("xbd_bio_command", "flush request, but no flush support available")
    else:
        _reject(sc, cm, bp, release=sc.platform.fixes.unsupported_bio_leaks_grants)
        return None
    return cm


def _rejected_before_a_command(sc: Softc, bp: Bio) -> bool:
    """A bio ``xbd_bio_command`` would only fail with ``EOPNOTSUPP`` (fix
    ``unsupported-bio-waits-for-a-command``): a command it does not know, or a flush the
    back end cannot do when that is failed rather than a panic."""
    if bp.bio_cmd in (BIO_READ, BIO_WRITE):
        return False
    if bp.bio_cmd == BIO_FLUSH:
        supported = (sc.xbd_flags & (XBDF_FLUSH | XBDF_BARRIER)) != 0
        return not supported and sc.platform.fixes.flush_without_support_panics
    return True


def _blkif_sector(sc: Softc, pblkno: int) -> int:
    """The fix of ``request-sectors-in-device-units``: ``bio_pblkno`` counts the disk's
    sectors (``d_sectorsize``); a request's ``sector_number`` counts 512-byte units
    (blkif.h), whatever ``sector-size`` is."""
    disk = sc.xbd_disk
    sector_size = disk.d_sectorsize if disk is not None and disk.d_sectorsize else 512
    return u64(pblkno * sector_size // _SECTOR_SIZE)


def _reject(sc: Softc, cm: Command, bp: Bio, release: bool) -> None:
    """``xbd_bio_command``'s default case: fail the bio with ``EOPNOTSUPP`` and give the
    command back; with ``release`` its grant references and bio pointer too (the seed
    keeps them: ``unsupported-bio-leaks-grants``)."""
    sc.platform.biofinish(bp, EOPNOTSUPP)
    if release:
        sc.platform.gnttab.gnttab_free_grant_references(cm.cm_gref_head)
        free_command(cm)
    else:
        xbd_enqueue_cm(cm, XBD_Q_FREE)


def _bio_failed_not_held(sc: Softc) -> bool:
    """The fix of ``rejected-bio-stops-loop``: ``xbd_bio_command`` returned ``NULL``
    with bios still queued and nothing holding the queue, which happens only when it
    failed the head bio itself (a shortage or a single-stepped write freezes the queue)."""
    return bool(sc.xbd_bioq) and sc.xbd_qfrozen_cnt == 0


def startio(sc: Softc) -> None:
    """Port of ``xbd_startio``: move work onto the ring until it is full or frozen."""
    mtx_assert_owned(sc.xbd_io_lock)
    if sc.xbd_state != XbdState.CONNECTED:
        return
    queued = 0
    ring = sc.xbd_ring
    while not RING_FULL(ring):
        if sc.xbd_qfrozen_cnt != 0:
            break
        cm = xbd_dequeue_cm(sc, XBD_Q_READY)
        if cm is None:
            cm = bio_command(sc)
        if cm is None:
            if sc.platform.fixes.rejected_bio_stops_loop and _bio_failed_not_held(sc):
                continue  # xbd_bio_command failed a bio itself: take the next one
            break
        if (cm.cm_flags & XBDCF_Q_FREEZE) != 0:
            cm_freeze(sc, cm, XBDCF_Q_FREEZE)
        error = queue_request(sc, cm)
        if error != 0:
            # dead code on FreeBSD: with flags 0 bus_dmamap_load* never returns an error
            # (only busdma's assume_nowait test hook gets here)
            sc.platform.printf(f"xbd_queue_request returned {error}")
            if sc.platform.fixes.mapping_failure_stops_loop:
                continue  # the failed mapping already completed its bio: go on
            break
        queued += 1
    if queued != 0:
        flush_requests(sc)


def bio_complete(sc: Softc, cm: Command) -> None:
    """Port of ``xbd_bio_complete``: finish the command's bio with the back end's status."""
    bp = cm.cm_bp
    if bp is None:
        raise UndefinedBehaviour("xbd_bio_complete", "NULL dereference of cm->cm_bp")
    if cm.cm_status != BLKIF_RSP_OKAY:
        sc.platform.disk_err(bp, "disk error")
        sc.platform.printf(f" status: {cm.cm_status & 0xFFFFFFFF:x}")
        bp.bio_flags |= BIO_ERROR
    if bp.bio_flags & BIO_ERROR:
        bp.bio_error = EIO
    else:
        bp.bio_resid = 0
    free_command(cm)
    sc.platform.biodone(bp)


def _response_id_valid(sc: Softc, bret_id: int) -> bool:
    """The fix of ``response-id-trusted``: a response names a command of the shadow array
    that is on BUSY (blkif.h: ``id`` is copied from the request)."""
    shadow = sc.xbd_shadow
    if shadow is None or bret_id >= min(len(shadow), sc.xbd_max_requests):
        return False
    return (shadow[bret_id].cm_flags & XBDCF_Q_MASK) == XBD_Q_BUSY


def int_(xsc: Any) -> None:
    """Port of ``xbd_int``: consume responses, complete commands, thaw, restart, wake."""
    sc: Softc = xsc
    lock = sc.xbd_io_lock
    mtx_lock(lock)
    if sc.xbd_state == XbdState.DISCONNECTED:
        mtx_unlock(lock)
        return
    ring = sc.xbd_ring
    platform = sc.platform
    gnttab = platform.gnttab
    unpack_response = RESPONSE.unpack_from
    hostile: list[int] = []  # fix response-id-trusted: ids reported once the lock is dropped
    while True:  # again:
        sring = ring.sring
        if sring is None:
            raise UndefinedBehaviour("xbd_int", "dereference of a NULL sc->xbd_ring.sring")
        rp = sring.rsp_prod
        buf = sring.buf
        i = ring.rsp_cons
        while i != rp:
            bret_id, _bret_op, bret_status = unpack_response(buf, slot_offset(ring.nr_ents, i))
            shadow = sc.xbd_shadow
            if platform.fixes.response_id_trusted and not _response_id_valid(sc, bret_id):
                hostile.append(bret_id)  # skipped; xenbus_dev_fatal may sleep: not here
                i = (i + 1) & 0xFFFF_FFFF
                continue
            if shadow is None or bret_id >= len(shadow):
                raise UndefinedBehaviour(
                    "xbd_int",
                    f"&sc->xbd_shadow[bret->id] with id {bret_id} outside the "
                    f"{0 if shadow is None else len(shadow)}-entry shadow array",
                )
            cm = shadow[bret_id]
            xbd_remove_cm(cm, XBD_Q_BUSY)
            if cm.cm_sg_refs is None:
                raise UndefinedBehaviour("xbd_int", "NULL dereference of cm->cm_sg_refs")
            gnttab.gnttab_end_foreign_access_references(cm.cm_nseg, cm.cm_sg_refs)
            i = (i + 1) & 0xFFFF_FFFF
            if cm.cm_operation == BLKIF_OP_READ:
                op = BUS_DMASYNC_POSTREAD
            elif cm.cm_operation in (BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER):
                op = BUS_DMASYNC_POSTWRITE
            else:
                op = 0
            if cm.cm_map is not None:
                cm.cm_map.last_sync = op
                cm.cm_map.loaded = False
            cm_thaw(sc, cm)
            cm.cm_status = bret_status
            if cm.cm_bp is not None:
                bio_complete(sc, cm)
            elif cm.cm_complete is not None:
                cm.cm_complete(cm)
            else:
                free_command(cm)
        ring.rsp_cons = i
        if i != ring.req_prod_pvt:
            if RING_FINAL_CHECK_FOR_RESPONSES(ring):
                continue
        else:
            sring.set(RSP_EVENT, i + 1)
        break
    if xbd_queue_length(sc, XBD_Q_BUSY) == 0:
        thaw(sc, XBDF_WAIT_IDLE)
    startio(sc)
    if sc.xbd_state == XbdState.SUSPENDED:
        platform.wakeup(BUSY_QUEUE_CHANNEL)
    mtx_unlock(lock)
    for bret_id in hostile:
        xenbus_dev_fatal(_dev(sc, "xbd_int"), EINVAL, f"response with unknown request id {bret_id}")


# ----------------------------------------------------------------------- Dump Support


def quiesce(sc: Softc) -> None:
    """Port of ``xbd_quiesce``: poll (``HYPERVISOR_yield``) until nothing is busy."""
    while xbd_queue_length(sc, XBD_Q_BUSY) != 0:
        mtd = RING_FINAL_CHECK_FOR_RESPONSES(sc.xbd_ring)
        if mtd:
            int_(sc)
        if xbd_queue_length(sc, XBD_Q_BUSY) != 0:
            sc.platform.hypervisor_yield()


def dump_complete(cm: Command) -> None:
    """Port of ``xbd_dump_complete``: park the finished dump command on COMPLETE."""
    xbd_enqueue_cm(cm, XBD_Q_COMPLETE)


def dump(arg: Disk, virtual: KernelBuffer, offset: int, length: int) -> int:
    """Port of ``xbd_dump``: write ``length`` bytes of ``virtual`` at byte ``offset``."""
    dp = arg
    sc = dp.d_drv1
    if sc is None:
        raise UndefinedBehaviour("xbd_dump", "NULL dereference of dp->d_drv1")
    rc = 0
    if length == 0:
        return 0
    quiesce(sc)
    mtx_lock(sc.xbd_io_lock)
    platform = sc.platform
    dev = _dev(sc, "xbd_dump")
    consumed = 0
    fixes = platform.fixes
    queued: list[Command] = []  # fix dump-ebusy-strands-ready: this call's chunks
    while length > 0:
        cm = xbd_dequeue_cm(sc, XBD_Q_FREE)
        if cm is None:
            stranded = _take_back_dump_chunks(sc, queued) if fixes.dump_ebusy_strands_ready else []
            mtx_unlock(sc.xbd_io_lock)
            _free_dump_grants(sc, stranded)  # (fixed) outside the lock
            platform.device_printf(dev, "dump: no more commands?")
            return EBUSY
        error, head = platform.gnttab.gnttab_alloc_grant_references(sc.xbd_max_request_segments)
        if error != 0:
            free_command(cm)
            stranded = _take_back_dump_chunks(sc, queued) if fixes.dump_ebusy_strands_ready else []
            mtx_unlock(sc.xbd_io_lock)
            _free_dump_grants(sc, stranded)  # (fixed) outside the lock
            platform.device_printf(dev, "no more grant allocs?")
            return EBUSY
        cm.cm_gref_head = head
        chunk = sc.xbd_max_request_size if length > sc.xbd_max_request_size else length
        cm.cm_data = KernelBuffer(virtual.mem, virtual.pfn, virtual.offset + consumed, chunk)
        cm.cm_datalen = chunk
        cm.cm_operation = BLKIF_OP_WRITE
        if platform.fixes.request_sectors_in_device_units:
            cm.cm_sector_number = u64(offset // _SECTOR_SIZE)  # blkif.h: 512-byte units
        else:
            cm.cm_sector_number = u64(sdiv(offset, dp.d_sectorsize, "offset / dp->d_sectorsize"))
        cm.cm_complete = dump_complete
        xbd_enqueue_cm(cm, XBD_Q_READY)
        queued.append(cm)
        length -= chunk
        offset += chunk
        consumed += chunk
    startio(sc)
    mtx_unlock(sc.xbd_io_lock)
    quiesce(sc)
    while True:
        cm = xbd_dequeue_cm(sc, XBD_Q_COMPLETE)
        if cm is None:
            break
        if cm.cm_status != BLKIF_RSP_OKAY:
            platform.device_printf(dev, f"Dump I/O failed at sector {cm.cm_sector_number}")
            rc = EIO
        free_command(cm)
    return rc


def _take_back_dump_chunks(sc: Softc, queued: list[Command]) -> list[list[int]]:
    """The fix of ``dump-ebusy-strands-ready``, under ``xbd_io_lock``: before ``xbd_dump``
    gives up with ``EBUSY``, the chunks this call put on READY come off it and return to
    FREE, so nothing is sent later from a buffer the dumper no longer owns and no command
    is stranded on COMPLETE.  Their reserved grant references are returned by
    :func:`_free_dump_grants` once the lock is dropped (a registered grant callback would
    take it again)."""
    heads: list[list[int]] = []
    for cm in queued:
        xbd_remove_cm(cm, XBD_Q_READY)
        heads.append(cm.cm_gref_head)
        cm.cm_gref_head = []  # GNTTAB_LIST_END: the command no longer holds them
        free_command(cm)
    return heads


def _free_dump_grants(sc: Softc, heads: list[list[int]]) -> None:
    """Return the grant references :func:`_take_back_dump_chunks` took back."""
    for head in heads:
        sc.platform.gnttab.gnttab_free_grant_references(head)


# ------------------------------------------------------------------- Disk Entrypoints


def open_(dp: Disk) -> int:
    """Port of ``xbd_open``: count a user and mark the device open."""
    sc = dp.d_drv1
    if sc is None:
        if dp.platform is not None:
            dp.platform.printf(f"xbd{dp.d_unit}: not found")
        return ENXIO
    sc.xbd_flags |= XBDF_OPEN
    sc.xbd_users = s32(sc.xbd_users + 1)
    return 0


def close(dp: Disk) -> int:
    """Port of ``xbd_close``: drop a user; the last one honours a pending Closing.

    Fix ``backend-closed-ignored``: the last close also closes the device when the back
    end is Closed (or its node gone), not only Closing.
    """
    from .lifecycle import closing  # the seed's forward declaration of xbd_closing

    sc = dp.d_drv1
    if sc is None:
        return ENXIO
    if not sc.platform.fixes.close_clears_open_flag:
        sc.xbd_flags &= ~XBDF_OPEN
    sc.xbd_users = s32(sc.xbd_users - 1)
    if sc.platform.fixes.close_clears_open_flag and sc.xbd_users == 0:
        sc.xbd_flags &= ~XBDF_OPEN  # the last user is gone
    if sc.xbd_users == 0:
        dev = _dev(sc, "xbd_close")
        otherend = xenbus_get_otherend_state(dev)
        if otherend == XenbusState.Closing or (
            # fix backend-closed-ignored: a back end Closed (or gone) closes the device too
            sc.platform.fixes.backend_closed_ignored
            and otherend == XenbusState.Closed
            and dev.state != XenbusState.Closed
        ):
            closing(dev)
    return 0


def ioctl(dp: Disk, cmd: int = 0, addr: Any = None, flag: int = 0, td: Any = None) -> int:
    """Port of ``xbd_ioctl``: no ioctls are supported."""
    if dp.d_drv1 is None:
        return ENXIO
    return ENOTTY


def strategy(bp: Bio) -> None:
    """Port of ``xbd_strategy``: queue the bio and kick the ring."""
    disk = bp.bio_disk
    if disk is None:
        raise UndefinedBehaviour("xbd_strategy", "NULL dereference of bp->bio_disk")
    sc = disk.d_drv1
    if sc is None:
        bp.bio_error = EINVAL
        bp.bio_flags |= BIO_ERROR
        bp.bio_resid = bp.bio_bcount
        if disk.platform is None:
            raise UndefinedBehaviour("xbd_strategy", "biodone on a disk with no kernel")
        disk.platform.biodone(bp)
        return
    mtx_lock(sc.xbd_io_lock)
    xbd_enqueue_bio(sc, bp)
    startio(sc)
    mtx_unlock(sc.xbd_io_lock)
