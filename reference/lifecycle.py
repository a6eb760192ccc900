"""The seed's ring management, initialisation/teardown, state-change handlers and newbus
entry points, ported function by function (``blkfront.c`` sections "Ring Management",
"Initialization/Teardown", "State Change Handlers", "NewBus Entrypoints").

Locals the C code leaves uninitialised when ``xs_scanf``/``xs_gather`` do not assign them
(a blank value makes ``sscanf`` return ``EOF``, which is not an error) are ``None`` here;
reading one raises :class:`~xbdspec.reference.faults.UndefinedBehaviour`.

``xbd_suspend`` sleeps in ``msleep``; with no threads, :func:`suspend` returns a
:class:`SuspendSleep` continuation when it would sleep, and the test resumes it with
:func:`suspend_continue` after a ``wakeup`` or a time-out (see the docstrings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .cint import QUAD_MAX, fls, int_shl, powerof2, s32, s64, u16, u32, u64, udiv
from .constants import (
    BLKIF_MAX_SEGMENTS_PER_REQUEST,
    DISKFLAG_CANFLUSHCACHE,
    DISKFLAG_UNMAPPED_BIO,
    DISKFLAG_WRITE_PROTECT,
    EBUSY,
    EINVAL,
    EIO,
    ENOMEM,
    ENXIO,
    GRANT_REF_INVALID,
    PAGE_SIZE,
    VDISK_READONLY,
    XBD_INDIRECT_SEGS_TO_PAGES,
    XBD_MAX_INDIRECT_SEGMENTS,
    XBD_MAX_REQUESTS,
    XBD_MAX_RING_PAGES,
    XBD_Q_BUSY,
    XBD_Q_COMPLETE,
    XBD_Q_FREE,
    XBD_Q_NONE,
    XBD_Q_READY,
    XBD_SECTOR_SHFT,
    XBD_SEGS_TO_SIZE,
    XBD_SIZE_TO_SEGS,
    XBDCF_INITIALIZER,
    XBDCF_Q_MASK,
    XBDF_BARRIER,
    XBDF_DISCARD,
    XBDF_FLUSH,
    XBDF_PERSISTENT,
    XBDF_READY,
    XBDF_WAIT_IDLE,
    XEN_IO_PROTO_ABI_NATIVE,
    XbdState,
    XenbusState,
    blkif_max_ring_requests,
)
from .driver import (
    BUSY_QUEUE_CHANNEL,
    _dev,
    close,
    cm_thaw,
    dump,
    free_command,
    int_,
    ioctl,
    open_,
    startio,
    strategy,
    thaw,
)
from .faults import KernelAssertion, UndefinedBehaviour
from .locks import mtx_init, mtx_lock, mtx_unlock
from .platform import DRIVER_MODULE, DriverMethods
from .queues import (
    xbd_dequeue_bio,
    xbd_dequeue_cm,
    xbd_initq_cm,
    xbd_initqs,
    xbd_queue_length,
    xbd_remove_cm,
    xbd_requeue_bio,
)
from .ring import FRONT_RING_INIT, SHARED_RING_INIT, SharedRing
from .softc import Bio, Command, Softc, fresh_ring_refs
from .xenbus import (
    XenbusDevice,
    xenbus_dev_error,
    xenbus_dev_fatal,
    xenbus_get_node,
    xenbus_get_otherend_id,
    xenbus_get_otherend_path,
    xenbus_get_state,
    xenbus_get_type,
    xenbus_grant_ring,
    xenbus_set_state,
)
from .xenstore import xs_gather, xs_printf, xs_read, xs_scanf

# Limits the opt-in fixes (``Platform.fixes``) check; the seed has no name for them.

#: ``XBD_MAX_RING_PAGES`` as an order: the largest ``max-ring-page-order`` the front end
#: uses (fix ``ring-page-order-shift``).
XBD_MAX_RING_PAGE_ORDER: Final = fls(XBD_MAX_RING_PAGES) - 1
#: The unit of ``sectors`` in blkif.h, whatever ``sector-size`` is (fix
#: ``media-size-in-sector-units``).
XBD_SECTOR_SIZE: Final = 1 << XBD_SECTOR_SHFT
#: The largest ``sector-size`` for which ``1048576 / sector_size`` is not zero (fix
#: ``sector-size-division-by-zero``).
XBD_MAX_SECTOR_SIZE: Final = 1048576


def _read_local(value: int | None, name: str, where: str) -> int:
    """Read a C local that ``xs_scanf``/``xs_gather`` may have left uninitialised."""
    if value is None:
        raise UndefinedBehaviour(
            where,
            f"reads `{name}`, left uninitialised because sscanf returned EOF (blank value)",
        )
    return value


def _softc(dev: XenbusDevice, where: str) -> Softc:
    sc = dev.softc
    if sc is None:
        raise UndefinedBehaviour(where, "device_get_softc returned no softc")
    return sc


# -------------------------------------------------------------------- Ring Management


def alloc_ring(sc: Softc) -> int:
    """Port of ``xbd_alloc_ring``: allocate, grant and advertise the ring; bind the irq."""
    dev = _dev(sc, "xbd_alloc_ring")
    platform = sc.platform
    size = u32(sc.xbd_ring_pages * PAGE_SIZE)
    if platform.malloc_fails("sring"):
        xenbus_dev_fatal(dev, ENOMEM, "allocating shared ring")
        return ENOMEM
    page = platform.mem.alloc(size)
    sring = SharedRing(page)
    SHARED_RING_INIT(sring, platform.ring_index_start)
    FRONT_RING_INIT(sc.xbd_ring, sring, size, platform.ring_index_start)
    for i in range(sc.xbd_ring_pages):
        error, ref = xenbus_grant_ring(dev, page.pfn + i)
        if error:
            xenbus_dev_fatal(dev, error, f"granting ring_ref({i})")
            return error
        sc.xbd_ring_ref[i] = ref
    node = xenbus_get_node(dev)
    xs = platform.xenstore
    if sc.xbd_ring_pages == 1:
        error = xs_printf(xs, node, "ring-ref", str(u32(sc.xbd_ring_ref[0])))
        if error:
            xenbus_dev_fatal(dev, error, f"writing {node}/ring-ref")
            return error
    else:
        for i in range(sc.xbd_ring_pages):
            ring_ref_name = f"ring-ref{i}"
            error = xs_printf(xs, node, ring_ref_name, str(u32(sc.xbd_ring_ref[i])))
            if error:
                xenbus_dev_fatal(dev, error, f"writing {node}/{ring_ref_name}")
                return error
    error, handle = platform.evtchn.bind(int_, sc)
    if error:
        xenbus_dev_fatal(dev, error, "xen_intr_alloc_and_bind_local_port failed")
        return error
    sc.xen_intr_handle = handle
    return 0


def free_ring(sc: Softc) -> None:
    """Port of ``xbd_free_ring``: revoke the ring grants and free the ring pages.

    Fix ``ring-grant-references-leak``: each reference is also returned to the free list
    (``gnttab_end_foreign_access_references(1, &sc->xbd_ring_ref[i])``); the seed only
    ends the access, so every resume loses ``xbd_ring_pages`` references for good.
    """
    sring = sc.xbd_ring.sring
    if sring is None:
        return
    gnttab = sc.platform.gnttab
    for i in range(sc.xbd_ring_pages):
        if sc.xbd_ring_ref[i] != GRANT_REF_INVALID:
            if sc.platform.fixes.ring_grant_references_leak:
                gnttab.gnttab_end_foreign_access_references(1, [sc.xbd_ring_ref[i]])
            else:
                gnttab.gnttab_end_foreign_access_ref(sc.xbd_ring_ref[i])
            sc.xbd_ring_ref[i] = GRANT_REF_INVALID
    sc.platform.mem.free(sring.page)
    sc.xbd_ring.sring = None


# ------------------------------------------------------------ Initialization/Teardown


def feature_string(sc: Softc, length: int = 80) -> tuple[int, str]:
    """Port of ``xbd_feature_string``: ``(sbuf_len, text)`` of the negotiated features."""
    parts: list[str] = []
    if (sc.xbd_flags & XBDF_FLUSH) != 0:
        parts.append("flush")
    if (sc.xbd_flags & XBDF_BARRIER) != 0:
        parts.append("write_barrier")
    if (sc.xbd_flags & XBDF_DISCARD) != 0:
        parts.append("discard")
    if (sc.xbd_flags & XBDF_PERSISTENT) != 0:
        parts.append("persistent_grants")
    text = ", ".join(parts)
    if len(text) > length - 1:  # SBUF_FIXEDLEN overflow: sbuf_finish fails, len is -1
        return -1, text[: length - 1]
    return len(text), text


def sysctl_features(sc: Softc) -> str:
    """Port of ``xbd_sysctl_features``: the string the ``features`` sysctl reports."""
    length, text = feature_string(sc)
    return text if length >= 0 else ""


def setup_sysctl(xbd: Softc) -> None:
    """Port of ``xbd_setup_sysctl``: the read-only sysctl nodes (names recorded)."""
    xbd.sysctls = {
        "max_requests": "maximum outstanding requests (negotiated)",
        "max_request_segments": "maximum number of pages per requests (negotiated)",
        "max_request_size": "maximum size in bytes of a request (negotiated)",
        "ring_pages": "communication channel pages (negotiated)",
        "features": "protocol features (negotiated)",
    }


#: ``xbd_vdevice_to_unit``'s table: (major, shift, base, name).
VDEV_INFO: tuple[tuple[int, int, int, str], ...] = (
    (3, 6, 0, "ada"),  # ide0
    (22, 6, 2, "ada"),  # ide1
    (33, 6, 4, "ada"),  # ide2
    (34, 6, 6, "ada"),  # ide3
    (56, 6, 8, "ada"),  # ide4
    (57, 6, 10, "ada"),  # ide5
    (88, 6, 12, "ada"),  # ide6
    (89, 6, 14, "ada"),  # ide7
    (90, 6, 16, "ada"),  # ide8
    (91, 6, 18, "ada"),  # ide9
    (8, 4, 0, "da"),  # scsi disk0
    (65, 4, 16, "da"),  # scsi disk1
    (66, 4, 32, "da"),
    (67, 4, 48, "da"),
    (68, 4, 64, "da"),
    (69, 4, 80, "da"),
    (70, 4, 96, "da"),
    (71, 4, 112, "da"),  # scsi disk7
    (128, 4, 128, "da"),  # scsi disk8
    (129, 4, 144, "da"),
    (130, 4, 160, "da"),
    (131, 4, 176, "da"),
    (132, 4, 192, "da"),
    (133, 4, 208, "da"),
    (134, 4, 224, "da"),
    (135, 4, 240, "da"),  # scsi disk15
    (202, 4, 0, "xbd"),  # xbd
)


def vdevice_to_unit(vdevice: int) -> tuple[int, str]:
    """Port of ``xbd_vdevice_to_unit``: Linux major/minor (or extended id) -> (unit, name)."""
    vdevice = u32(vdevice)
    major = vdevice >> 8
    minor = vdevice & 0xFF
    if vdevice & (1 << 28):
        return (vdevice & ((1 << 28) - 1)) >> 8, "xbd"
    for info_major, shift, base, name in VDEV_INFO:
        if info_major == major:
            return base + (minor >> shift), name
    return minor >> 4, "xbd"


def instance_create(
    sc: Softc,
    sectors: int,
    vdevice: int,
    vdisk_info: int,
    sector_size: int,
    phys_sector_size: int,
) -> int:
    """Port of ``xbd_instance_create``: build and publish the GEOM disk.

    Fix ``media-size-in-sector-units``: ``d_mediasize = sectors * 512`` (blkif.h gives
    ``sectors`` in 512-byte units); the seed multiplies by ``sector_size``.

    Fix ``read-only-disk-writable``: ``VDISK_READONLY`` in ``vdisk_info`` sets
    ``DISKFLAG_WRITE_PROTECT``; the seed never reads ``vdisk_info``.
    """
    platform = sc.platform
    dev = _dev(sc, "xbd_instance_create")
    unit, name = vdevice_to_unit(u32(vdevice))
    sc.xbd_unit = unit
    if name != "xbd":
        platform.device_printf(dev, f"attaching as {name}{unit}")
    length, features = feature_string(sc)
    if length > 0:
        platform.device_printf(dev, f"features: {features}")
    disk = platform.disk_alloc()
    sc.xbd_disk = disk
    disk.d_unit = sc.xbd_unit
    disk.d_open = open_
    disk.d_close = close
    disk.d_ioctl = ioctl
    disk.d_strategy = strategy
    disk.d_dump = dump
    disk.d_name = name
    disk.d_drv1 = sc
    disk.d_sectorsize = u32(sector_size)
    disk.d_stripesize = s64(phys_sector_size)
    disk.d_stripeoffset = 0
    if platform.fixes.media_size_in_sector_units:
        disk.d_mediasize = s64(u64(sectors * XBD_SECTOR_SIZE))
    else:
        disk.d_mediasize = s64(u64(sectors * sector_size))
    disk.d_maxsize = u32(sc.xbd_max_request_size)
    disk.d_flags = DISKFLAG_UNMAPPED_BIO
    if (sc.xbd_flags & (XBDF_FLUSH | XBDF_BARRIER)) != 0:
        disk.d_flags |= DISKFLAG_CANFLUSHCACHE
        platform.device_printf(dev, "synchronize cache commands enabled.")
    if platform.fixes.read_only_disk_writable and vdisk_info & VDISK_READONLY:
        disk.d_flags |= DISKFLAG_WRITE_PROTECT  # GEOM refuses write opens (EROFS)
    platform.disk_create(disk)
    return 0


def free(sc: Softc) -> None:
    """Port of ``xbd_free``: disconnect, free the ring and the shadow, unbind the irq."""
    mtx_lock(sc.xbd_io_lock)
    sc.xbd_state = XbdState.DISCONNECTED
    if sc.platform.fixes.resume_loses_ready_write and sc.xbd_shadow:
        _requeue_ready_bios(sc)  # under the lock, while the commands still exist
    mtx_unlock(sc.xbd_io_lock)
    free_ring(sc)
    platform = sc.platform
    if sc.xbd_shadow:
        shadow = sc.xbd_shadow
        for i in range(sc.xbd_max_requests):
            if i >= len(shadow):
                raise UndefinedBehaviour("xbd_free", f"&sc->xbd_shadow[{i}] past the array")
            cm = shadow[i]
            if cm.cm_sg_refs is not None:
                cm.cm_sg_refs = None
            if cm.cm_indirectionpages is not None:
                platform.gnttab.gnttab_end_foreign_access_references(
                    sc.xbd_max_request_indirectpages, cm.cm_indirectionrefs
                )
                platform.mem.free(cm.cm_indirectionpages)
                cm.cm_indirectionpages = None
            if cm.cm_map is not None:
                cm.cm_map.destroyed = True
        sc.xbd_shadow = None
        if sc.xbd_io_dmat is not None:
            sc.xbd_io_dmat.destroyed = True
        xbd_initq_cm(sc, XBD_Q_FREE)
        xbd_initq_cm(sc, XBD_Q_READY)
        xbd_initq_cm(sc, XBD_Q_COMPLETE)
    platform.evtchn.unbind()
    sc.xen_intr_handle = None


def _requeue_ready_bios(sc: Softc) -> None:
    """The fix of ``resume-loses-ready-write``: the bios of commands still waiting on READY
    (a single-stepped write held for WAIT_IDLE) go back to the head of the bio queue, in
    their order, with their grant references released, before ``xbd_free`` forgets READY;
    the WAIT_IDLE hold goes with them (the new ring starts empty)."""
    ready: list[Command] = []
    while (cm := xbd_dequeue_cm(sc, XBD_Q_READY)) is not None:
        ready.append(cm)
    for cm in reversed(ready):
        sc.platform.gnttab.gnttab_free_grant_references(cm.cm_gref_head)
        if cm.cm_bp is not None:
            xbd_requeue_bio(sc, cm.cm_bp)
        cm.cm_bp = None
    thaw(sc, XBDF_WAIT_IDLE)


def _mapping_in_flight(sc: Softc) -> bool:
    """A command holding a bio is off every queue: its bus_dma mapping was deferred and
    its callback has not run yet (between events, the only way a command taken off FREE
    is on no queue)."""
    shadow = sc.xbd_shadow or []
    return any((cm.cm_flags & XBDCF_Q_MASK) == XBD_Q_NONE and cm.cm_bp is not None for cm in shadow)


# -------------------------------------------------------------- State Change Handlers


def initialize(sc: Softc) -> None:
    """Port of ``xbd_initialize``: negotiate the ring, allocate it, publish the transport.

    Fix ``ring-page-order-shift``: ``max-ring-page-order`` is clamped to
    :data:`XBD_MAX_RING_PAGE_ORDER` before ``1 << max_ring_page_order`` (the seed shifts
    first, undefined for an order of 31 or more).
    """
    dev = _dev(sc, "xbd_initialize")
    platform = sc.platform
    if xenbus_get_state(dev) != XenbusState.Initialising:
        return
    max_ring_page_order = 0
    sc.xbd_ring_pages = 1
    otherend_path = xenbus_get_otherend_path(dev)
    node_path = xenbus_get_node(dev)
    xs = platform.xenstore
    blank_is_error = platform.fixes.blank_xenstore_value_uninitialised
    _, value = xs_scanf(xs, otherend_path, "max-ring-page-order", "u", blank_is_error)
    if value is not None:
        max_ring_page_order = value
    if platform.fixes.ring_page_order_shift and max_ring_page_order > XBD_MAX_RING_PAGE_ORDER:
        platform.device_printf(
            dev,
            f"Back-end specified ring-page-order of {max_ring_page_order} limited to "
            f"front-end limit of {XBD_MAX_RING_PAGE_ORDER}.",
        )
        max_ring_page_order = XBD_MAX_RING_PAGE_ORDER
    sc.xbd_ring_pages = u32(int_shl(1, max_ring_page_order, "1 << max_ring_page_order"))
    _, value = xs_scanf(xs, otherend_path, "max-ring-pages", "u", blank_is_error)
    if value is not None:
        sc.xbd_ring_pages = value
    if sc.xbd_ring_pages < 1:
        sc.xbd_ring_pages = 1
    if sc.xbd_ring_pages > XBD_MAX_RING_PAGES:
        platform.device_printf(
            dev,
            f"Back-end specified ring-pages of {sc.xbd_ring_pages} limited to front-end "
            f"limit of {XBD_MAX_RING_PAGES}.",
        )
        sc.xbd_ring_pages = XBD_MAX_RING_PAGES
    if not powerof2(sc.xbd_ring_pages):
        new_page_limit = u32(
            int_shl(1, fls(sc.xbd_ring_pages) - 1, "0x01 << (fls(sc->xbd_ring_pages) - 1)")
        )
        platform.device_printf(
            dev,
            f"Back-end specified ring-pages of {sc.xbd_ring_pages} is not a power of 2. "
            f"Limited to {new_page_limit}.",
        )
        sc.xbd_ring_pages = new_page_limit
    sc.xbd_max_requests = u32(blkif_max_ring_requests(u32(sc.xbd_ring_pages * PAGE_SIZE)))
    if sc.xbd_max_requests > XBD_MAX_REQUESTS:
        platform.device_printf(
            dev,
            f"Back-end specified max_requests of {sc.xbd_max_requests} limited to "
            f"front-end limit of {XBD_MAX_REQUESTS}.",
        )
        sc.xbd_max_requests = XBD_MAX_REQUESTS
    if alloc_ring(sc) != 0:
        return
    if sc.xbd_ring_pages > 1:
        error = xs_printf(xs, node_path, "num-ring-pages", str(sc.xbd_ring_pages))
        if error:
            xenbus_dev_fatal(dev, error, f"writing {node_path}/num-ring-pages")
            return
        error = xs_printf(xs, node_path, "ring-page-order", str(u32(fls(sc.xbd_ring_pages) - 1)))
        if error:
            xenbus_dev_fatal(dev, error, f"writing {node_path}/ring-page-order")
            return
    handle = sc.xen_intr_handle
    port = handle.port if handle is not None else 0
    error = xs_printf(xs, node_path, "event-channel", str(u32(port)))
    if error:
        xenbus_dev_fatal(dev, error, f"writing {node_path}/event-channel")
        return
    error = xs_printf(xs, node_path, "protocol", XEN_IO_PROTO_ABI_NATIVE)
    if error:
        xenbus_dev_fatal(dev, error, f"writing {node_path}/protocol")
        return
    xenbus_set_state(dev, XenbusState.Initialised)


def connect(sc: Softc) -> None:
    """Port of ``xbd_connect``: read the device properties, build the shadow, go live.

    Opt-in fixes (``sc.platform.fixes``), each off by default:

    * ``blank-xenstore-value-uninitialised``: a blank value read with ``xs_gather`` is an
      error (``EINVAL``), so no local is read unassigned;
    * ``sector-size-division-by-zero``: a ``sector-size`` above 1 MiB is rejected
      (``EINVAL``) before ``1048576 / sector_size`` can be zero;
    * ``sector-size-unchecked``: a ``sector-size`` that is not a power of two of at least
      512 (blkif.h) is rejected (``EINVAL``);
    * ``media-size-overflow``: a disk whose byte size does not fit in ``off_t`` is rejected
      (``EINVAL``; on a resize, reported and the old size kept);
    * ``media-size-in-sector-units``: the byte size is ``sectors * 512``, also on a resize;
    * ``stale-features-after-resume``: ``XBDF_BARRIER`` and ``XBDF_FLUSH`` are cleared
      before ``feature-barrier`` and ``feature-flush-cache`` are read, and a disk that
      survived a resume has ``DISKFLAG_CANFLUSHCACHE`` set or cleared to match;
    * ``indirect-pages-before-clamp``: the indirect page count is computed after the
      minimum clamp, and is 0 when only direct requests are possible;
    * ``indirect-pages-partial-allocation``: when an indirection page allocation fails,
      every command falls back to direct requests (see :func:`_fall_back_to_direct`);
    * ``no-commands-after-shadow-failure``: when not one command could be allocated,
      the connection fails with ``ENOMEM``.
    """
    dev = _dev(sc, "xbd_connect")
    platform = sc.platform
    fixes = platform.fixes
    blank_is_error = fixes.blank_xenstore_value_uninitialised
    xs = platform.xenstore
    otherend = xenbus_get_otherend_path(dev)
    if sc.xbd_state == XbdState.SUSPENDED:
        return
    if sc.xbd_state == XbdState.CONNECTED:
        disk = sc.xbd_disk
        if disk is None:
            return
        err, values = xs_gather(xs, otherend, [("sectors", "lu")], blank_is_error)
        if err != 0:
            xenbus_dev_error(dev, err, f"reading sectors at {otherend}")
            return
        new_sectors = _read_local(values[0], "sectors", "xbd_connect")
        if fixes.media_size_overflow and not _media_size_fits(sc, new_sectors, disk.d_sectorsize):
            xenbus_dev_error(
                dev,
                EINVAL,
                f"invalid size from {otherend}: {new_sectors} sectors do not fit in off_t",
            )
            return
        if fixes.media_size_in_sector_units:
            disk.d_mediasize = s64(u64(XBD_SECTOR_SIZE * new_sectors))
        else:
            disk.d_mediasize = s64(u64(disk.d_sectorsize * new_sectors))
        err = platform.disk_resize(disk)
        if err:
            xenbus_dev_error(dev, err, f"unable to resize disk {disk.d_name}{disk.d_unit}")
            return
        platform.device_printf(dev, f"changed capacity to {disk.d_mediasize}")
        return

    err, values = xs_gather(
        xs,
        otherend,
        [("sectors", "lu"), ("info", "u"), ("sector-size", "lu")],
        blank_is_error,
    )
    sectors, binfo, sector_size = values
    if err:
        xenbus_dev_fatal(dev, err, f"reading backend fields at {otherend}")
        return
    where = "xbd_connect"
    if _read_local(sectors, "sectors", where) == 0 or (
        _read_local(sector_size, "sector_size", where) == 0
    ):
        xenbus_dev_fatal(
            dev,
            0,
            f"invalid parameters from {otherend}: sectors = "
            f"{_read_local(sectors, 'sectors', where)}, sector_size = "
            f"{_read_local(sector_size, 'sector_size', where)}",
        )
        return
    sectors_v = _read_local(sectors, "sectors", where)
    sector_size_v = _read_local(sector_size, "sector_size", where)
    if fixes.sector_size_division_by_zero and sector_size_v > XBD_MAX_SECTOR_SIZE:
        xenbus_dev_fatal(
            dev,
            EINVAL,
            f"invalid parameters from {otherend}: sector_size = {sector_size_v} "
            f"exceeds {XBD_MAX_SECTOR_SIZE}",
        )
        return
    if fixes.sector_size_unchecked and (
        not powerof2(sector_size_v) or sector_size_v < XBD_SECTOR_SIZE
    ):
        xenbus_dev_fatal(
            dev,
            EINVAL,
            f"invalid parameters from {otherend}: sector_size = {sector_size_v} "
            f"is not a power of two of at least {XBD_SECTOR_SIZE}",
        )
        return
    if fixes.media_size_overflow and not _media_size_fits(sc, sectors_v, sector_size_v):
        xenbus_dev_fatal(
            dev,
            EINVAL,
            f"invalid parameters from {otherend}: sectors = {sectors_v}, "
            f"sector_size = {sector_size_v}: the size does not fit in off_t",
        )
        return

    err, values = xs_gather(xs, otherend, [("physical-sector-size", "lu")], blank_is_error)
    phys_sector_size = values[0]
    if err or _read_local(phys_sector_size, "phys_sector_size", where) <= sector_size_v:
        phys_sector_size = 0
    phys_sector_size_v = _read_local(phys_sector_size, "phys_sector_size", where)

    if fixes.stale_features_after_resume:
        sc.xbd_flags &= ~(XBDF_BARRIER | XBDF_FLUSH)
    err, values = xs_gather(xs, otherend, [("feature-barrier", "d")], blank_is_error)
    if err == 0 and _read_local(values[0], "feature_barrier", where) != 0:
        sc.xbd_flags |= XBDF_BARRIER
    err, values = xs_gather(xs, otherend, [("feature-flush-cache", "d")], blank_is_error)
    if err == 0 and _read_local(values[0], "feature_flush", where) != 0:
        sc.xbd_flags |= XBDF_FLUSH
    if fixes.stale_features_after_resume and sc.xbd_disk is not None:
        # The disk outlives a resume; GEOM hands BIO_FLUSH down only while d_flags says
        # the disk can flush, and xbd_bio_command panics on a flush it cannot send.
        if (sc.xbd_flags & (XBDF_FLUSH | XBDF_BARRIER)) != 0:
            sc.xbd_disk.d_flags |= DISKFLAG_CANFLUSHCACHE
        else:
            sc.xbd_disk.d_flags &= ~DISKFLAG_CANFLUSHCACHE

    err, values = xs_gather(xs, otherend, [("feature-max-indirect-segments", "u")], blank_is_error)
    if values[0] is not None:
        sc.xbd_max_request_segments = values[0]
    tunables = platform.tunables
    if err != 0 or tunables.xbd_enable_indirect == 0:
        sc.xbd_max_request_segments = 0
    if sc.xbd_max_request_segments > XBD_MAX_INDIRECT_SEGMENTS:
        sc.xbd_max_request_segments = XBD_MAX_INDIRECT_SEGMENTS
    if sc.xbd_max_request_segments > XBD_SIZE_TO_SEGS(tunables.maxphys):
        sc.xbd_max_request_segments = u32(XBD_SIZE_TO_SEGS(tunables.maxphys))
    if fixes.indirect_pages_before_clamp:
        if sc.xbd_max_request_segments < BLKIF_MAX_SEGMENTS_PER_REQUEST:
            sc.xbd_max_request_segments = BLKIF_MAX_SEGMENTS_PER_REQUEST
        if sc.xbd_max_request_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST:
            sc.xbd_max_request_indirectpages = u32(
                XBD_INDIRECT_SEGS_TO_PAGES(sc.xbd_max_request_segments)
            )
        else:
            sc.xbd_max_request_indirectpages = 0
    else:
        sc.xbd_max_request_indirectpages = u32(
            XBD_INDIRECT_SEGS_TO_PAGES(sc.xbd_max_request_segments)
        )
        if sc.xbd_max_request_segments < BLKIF_MAX_SEGMENTS_PER_REQUEST:
            sc.xbd_max_request_segments = BLKIF_MAX_SEGMENTS_PER_REQUEST
    sc.xbd_max_request_size = XBD_SEGS_TO_SIZE(sc.xbd_max_request_segments)

    err, tag = platform.busdma.bus_dma_tag_create(
        512,
        PAGE_SIZE,
        sc.xbd_max_request_size,
        sc.xbd_max_request_segments,
        PAGE_SIZE,
        sc.xbd_io_lock,
    )
    if err != 0:
        xenbus_dev_fatal(dev, err, "Cannot allocate parent DMA tag\n")
        return
    sc.xbd_io_dmat = tag

    if platform.malloc_fails("shadow"):
        if sc.xbd_io_dmat is not None:
            sc.xbd_io_dmat.destroyed = True
        xenbus_dev_fatal(dev, ENOMEM, "Cannot allocate request structures\n")
        return
    sc.xbd_shadow = [Command() for _ in range(sc.xbd_max_requests)]
    gnttab = platform.gnttab
    otherend_id = xenbus_get_otherend_id(dev)
    commands = 0
    for i in range(sc.xbd_max_requests):
        cm = sc.xbd_shadow[i]
        if platform.malloc_fails("sg_refs"):
            break
        cm.cm_sg_refs = [0] * sc.xbd_max_request_segments
        cm.cm_id = i
        cm.cm_flags = XBDCF_INITIALIZER
        cm.cm_sc = sc
        error, dmamap = platform.busdma.bus_dmamap_create(sc.xbd_io_dmat)
        cm.cm_map = dmamap
        if error != 0:
            break
        indirectpages = None
        if sc.xbd_max_request_indirectpages > 0:
            if platform.malloc_fails("contigmalloc"):
                if fixes.indirect_pages_partial_allocation:
                    _fall_back_to_direct(sc, i)
                else:
                    sc.xbd_max_request_indirectpages = 0
            else:
                indirectpages = platform.mem.alloc(PAGE_SIZE * sc.xbd_max_request_indirectpages)
        j = 0
        while j < sc.xbd_max_request_indirectpages:
            if indirectpages is None:
                raise UndefinedBehaviour("xbd_connect", "vtophys(NULL indirectpages)")
            error, ref = gnttab.gnttab_grant_foreign_access(otherend_id, indirectpages.pfn + j, 1)
            if error:
                break
            cm.cm_indirectionrefs[j] = ref
            j += 1
        if j < sc.xbd_max_request_indirectpages:
            if indirectpages is not None:
                platform.mem.free(indirectpages)
            break
        cm.cm_indirectionpages = indirectpages
        free_command(cm)
        commands += 1
    if fixes.no_commands_after_shadow_failure and commands == 0:
        # xbd_free releases what the shadow holds (on resume or detach)
        xenbus_dev_fatal(dev, ENOMEM, "Cannot allocate any request structure\n")
        return

    if sc.xbd_disk is None:
        megabytes = udiv(
            u64(sectors_v),
            udiv(1048576, sector_size_v, "1048576 / sector_size"),
            "(uintmax_t)sectors / (1048576 / sector_size)",
        )
        platform.device_printf(dev, f"{megabytes}MB <{dev.desc}> at {xenbus_get_node(dev)}")
        instance_create(
            sc,
            sectors_v,
            sc.xbd_vdevice,
            u16(_read_local(binfo, "binfo", where)),
            sector_size_v,
            phys_sector_size_v,
        )
    xenbus_set_state(dev, XenbusState.Connected)
    mtx_lock(sc.xbd_io_lock)
    sc.xbd_state = XbdState.CONNECTED
    startio(sc)
    sc.xbd_flags |= XBDF_READY
    mtx_unlock(sc.xbd_io_lock)


def _media_size_fits(sc: Softc, sectors: int, sector_size: int) -> bool:
    """Fix ``media-size-overflow``: does the disk's byte size fit in ``off_t``?

    The size is ``sectors * 512`` with fix ``media-size-in-sector-units`` and
    ``sectors * sector_size`` otherwise (as ``xbd_instance_create`` computes it); the test
    is C's ``sectors <= OFF_MAX / unit``.
    """
    unit = XBD_SECTOR_SIZE if sc.platform.fixes.media_size_in_sector_units else sector_size
    return u64(sectors) <= udiv(QUAD_MAX, unit, "OFF_MAX / unit")


def _fall_back_to_direct(sc: Softc, allocated: int) -> None:
    """Fix ``indirect-pages-partial-allocation``: an indirection page allocation failed
    in ``xbd_connect``'s loop at command ``allocated``.

    Every command falls back to direct requests: the pages of the commands already built
    are ended (``gnttab_end_foreign_access_references``) and freed, and the softc's limits
    go back to ``BLKIF_MAX_SEGMENTS_PER_REQUEST`` segments with no indirect page.  The seed
    only zeroes ``xbd_max_request_indirectpages``, so a later command has no page for a
    request of more than 11 segments, and ``xbd_free`` no longer ends the earlier pages'
    grants.
    """
    shadow = sc.xbd_shadow
    if shadow is None:
        raise UndefinedBehaviour("xbd_connect", "NULL dereference of sc->xbd_shadow")
    platform = sc.platform
    for k in range(allocated):
        cm = shadow[k]
        if cm.cm_indirectionpages is not None:
            platform.gnttab.gnttab_end_foreign_access_references(
                sc.xbd_max_request_indirectpages, cm.cm_indirectionrefs
            )
            platform.mem.free(cm.cm_indirectionpages)
            cm.cm_indirectionpages = None
    sc.xbd_max_request_indirectpages = 0
    sc.xbd_max_request_segments = BLKIF_MAX_SEGMENTS_PER_REQUEST
    sc.xbd_max_request_size = XBD_SEGS_TO_SIZE(sc.xbd_max_request_segments)
    tag = sc.xbd_io_dmat
    if tag is not None:
        # the DMA tag was created with the indirect limits: re-create it with the direct
        # ones, or a disk that survived a resume (its d_maxsize kept) maps more segments
        # than a request can carry; such a bio now fails to map (EFBIG) instead
        tag.maxsize = sc.xbd_max_request_size
        tag.nsegments = sc.xbd_max_request_segments
    platform.device_printf(
        _dev(sc, "xbd_connect"), "Cannot allocate indirection pages; using direct requests only."
    )


def closing(dev: XenbusDevice) -> None:
    """Port of ``xbd_closing``: Closing, destroy the disk, Closed."""
    sc = _softc(dev, "xbd_closing")
    xenbus_set_state(dev, XenbusState.Closing)
    if sc.xbd_disk is not None:
        sc.platform.disk_destroy(sc.xbd_disk)
        sc.xbd_disk = None
    xenbus_set_state(dev, XenbusState.Closed)


# ----------------------------------------------------------------- NewBus Entrypoints


def probe(dev: XenbusDevice) -> int:
    """Port of ``xbd_probe``: claim ``vbd`` devices, but not PV CD-ROMs in HVM guests."""
    platform = dev.platform
    if xenbus_get_type(dev) != "vbd":
        return ENXIO
    if platform.tunables.pv_disks_disabled:
        return ENXIO
    if platform.tunables.hvm_domain:
        error, device_type = xs_read(platform.xenstore, xenbus_get_node(dev), "device-type")
        if error or device_type is None:
            return ENXIO
        c_string = device_type.split("\0", 1)[0]
        if c_string[:5] == "cdrom":
            return ENXIO
    dev.desc = "Virtual Block Device"
    dev.quiet = True
    return 0


def attach(dev: XenbusDevice) -> int:
    """Port of ``xbd_attach``: find the virtual device, set up the softc, Initialising.

    Opt-in fixes (``dev.platform.fixes``): ``blank-xenstore-value-uninitialised`` (a
    blank ``virtual-device`` is an error, ``ERANGE``, not an unassigned ``vdevice``) and
    ``vdevice-name-collision`` (when ``device_set_unit`` reports the ``xbd`` unit taken,
    the attach fails with ``xenbus_dev_fatal`` instead of publishing a second disk under
    that name).
    """
    platform = dev.platform
    xs = platform.xenstore
    blank_is_error = platform.fixes.blank_xenstore_value_uninitialised
    vdevice: int | None = None
    error, value = xs_scanf(xs, xenbus_get_node(dev), "virtual-device", "u", blank_is_error)
    if value is not None:
        vdevice = value
    if error:
        error, value = xs_scanf(xs, xenbus_get_node(dev), "virtual-device-ext", "u", blank_is_error)
        if value is not None:
            vdevice = value
    if error:
        xenbus_dev_fatal(dev, error, "reading virtual-device")
        platform.device_printf(dev, "Couldn't determine virtual device.")
        return error
    vdevice_v = _read_local(vdevice, "vdevice", "xbd_attach")
    unit, name = vdevice_to_unit(vdevice_v)
    if name == "xbd":
        if platform.fixes.vdevice_name_collision:
            error = platform.device_set_unit(dev, unit)
            if error:
                xenbus_dev_fatal(
                    dev, error, f"virtual-device {vdevice_v}: unit {name}{unit} is already in use"
                )
                return error
        else:
            platform.device_set_unit(dev, unit)
    sc = _softc(dev, "xbd_attach")
    mtx_init(sc.xbd_io_lock, platform.tunables.mutex_recursion_fatal)
    xbd_initqs(sc)
    sc.xbd_ring_ref = fresh_ring_refs()
    sc.xbd_dev = dev
    sc.xbd_vdevice = s32(vdevice_v)
    sc.xbd_state = XbdState.DISCONNECTED
    setup_sysctl(sc)
    xenbus_set_state(dev, XenbusState.Initialising)
    return 0


def detach(dev: XenbusDevice) -> int:
    """Port of ``xbd_detach``: free everything.

    Fix ``detach-leaves-disk``: before freeing, every bio the driver holds (queued, on
    READY, in flight on BUSY) fails with ``ENXIO`` and the disk is destroyed, so GEOM calls
    no ``d_open``, ``d_close`` or ``d_strategy`` of the softc newbus frees next; the seed
    leaves the disk, and its ``d_drv1``, behind.
    """
    sc = _softc(dev, "xbd_detach")
    if sc.platform.fixes.detach_leaves_disk:
        _fail_outstanding(sc, ENXIO)
        if sc.xbd_disk is not None:
            sc.platform.disk_destroy(sc.xbd_disk)
            sc.xbd_disk = None
    free(sc)
    if sc.platform.fixes.resume_loses_ready_write:
        _fail_queued_bios(sc)  # the bios xbd_free put back have no device left to go to
    sc.xbd_io_lock.initialised = False
    return 0


@dataclass(slots=True, eq=False)
class SuspendSleep:
    """``xbd_suspend`` asleep in ``msleep(&sc->xbd_cm_q[XBD_Q_BUSY], ..., 30 * hz)``.

    Whether a ``wakeup`` reached the channel is recorded by the platform
    (``Platform.sleep_woken``); the test decides when the sleeper runs again.

    Attributes:
        saved_state: the local ``saved_state``.
        channel: the wait channel (``wakeup`` on it ends the sleep).
    """

    saved_state: XbdState
    channel: str = BUSY_QUEUE_CHANNEL


def suspend(dev: XenbusDevice) -> int | SuspendSleep:
    """Port of ``xbd_suspend`` up to its first ``msleep``.

    Returns 0 when nothing is busy.  Otherwise the driver sleeps (the I/O lock is released
    as ``msleep`` does) and a :class:`SuspendSleep` is returned; resume it with
    :func:`suspend_continue` once the test has delivered a ``wakeup`` (``xbd_int`` wakes
    the channel while SUSPENDED) or decided the 30 s time-out expired.
    """
    sc = _softc(dev, "xbd_suspend")
    mtx_lock(sc.xbd_io_lock)
    saved_state = sc.xbd_state
    sc.xbd_state = XbdState.SUSPENDED
    if sc.platform.fixes.resume_cancelled_connects_unconnected:
        sc.xbd_state_before_suspend = saved_state  # for a cancelled resume
    return _suspend_wait(sc, SuspendSleep(saved_state), first=True, timed_out=False)


def suspend_continue(dev: XenbusDevice, sleep: SuspendSleep, timed_out: bool) -> int | SuspendSleep:
    """Return from ``msleep`` in ``xbd_suspend``: woken (``timed_out=False``) or
    ``EWOULDBLOCK`` after 30 s (``timed_out=True``); runs the loop on from there."""
    sc = _softc(dev, "xbd_suspend")
    mtx_lock(sc.xbd_io_lock)  # msleep re-takes the lock before returning
    return _suspend_wait(sc, sleep, first=False, timed_out=timed_out)


def _suspend_wait(
    sc: Softc, sleep: SuspendSleep, first: bool, timed_out: bool
) -> int | SuspendSleep:
    """The ``while (xbd_queue_length(sc, XBD_Q_BUSY) != 0)`` loop of ``xbd_suspend``."""
    retval = 0
    if not first and timed_out:
        # msleep returned EWOULDBLOCK inside the loop body: give up with EBUSY.
        retval = EBUSY
        return _suspend_finish(sc, sleep, retval)
    busy = xbd_queue_length(sc, XBD_Q_BUSY) != 0
    if sc.platform.fixes.suspend_ignores_deferred_mappings:
        busy = busy or _mapping_in_flight(sc)
    if busy:
        sc.platform.msleep(sleep.channel)
        mtx_unlock(sc.xbd_io_lock)  # msleep drops the lock while asleep
        return sleep
    return _suspend_finish(sc, sleep, retval)


def _suspend_finish(sc: Softc, sleep: SuspendSleep, retval: int) -> int:
    mtx_unlock(sc.xbd_io_lock)
    if retval != 0:
        sc.xbd_state = sleep.saved_state
    return retval


def resume(dev: XenbusDevice) -> int:
    """Port of ``xbd_resume``: cancelled -> CONNECTED again; else rebuild from scratch.

    Fix ``suspend-rollback-frees-ring``: a resume of a device that ``xenbusb_resume`` did
    not set back to Initialising (``bus_generic_suspend`` rolling back a failed suspend
    calls ``DEVICE_RESUME`` directly, with ``xen_suspend_cancelled`` as the last suspend
    left it) is a cancelled suspend: the ring is kept.  The seed frees it and, its xenbus
    state still Connected, ``xbd_initialize`` returns at once: the device stays
    DISCONNECTED for good.
    """
    sc = _softc(dev, "xbd_resume")
    if sc.platform.xen_suspend_cancelled or (
        sc.platform.fixes.suspend_rollback_frees_ring
        and xenbus_get_state(dev) != XenbusState.Initialising
    ):
        # fix suspend-rollback-frees-ring: xenbusb_resume resets the device to
        # Initialising before a real resume; bus_generic_suspend's rollback does not, and
        # no hypervisor suspend happened: the ring is still connected
        sc.xbd_state = XbdState.CONNECTED
        if sc.platform.fixes.resume_cancelled_connects_unconnected:
            sc.xbd_state = sc.xbd_state_before_suspend  # as it was before the suspend
        if (
            sc.platform.fixes.resume_cancelled_does_not_restart
            and sc.xbd_state == XbdState.CONNECTED
        ):
            # bios queued while suspended go now, not at the next unrelated kick
            mtx_lock(sc.xbd_io_lock)
            startio(sc)
            mtx_unlock(sc.xbd_io_lock)
        return 0
    free(sc)
    initialize(sc)
    return 0


def _fail_queued_bios(sc: Softc, error: int = EIO) -> None:
    """Fail every bio on the bio queue with ``error`` (``EIO`` by default): the fixes of
    ``stranded-bios-on-disk-gone`` (a driver that is not connected when its back end goes
    away will never send them) and ``resume-loses-ready-write`` (at detach, the bios
    ``xbd_free`` put back have no device left)."""
    mtx_lock(sc.xbd_io_lock)
    while (bp := xbd_dequeue_bio(sc)) is not None:
        sc.platform.biofinish(bp, error)
    mtx_unlock(sc.xbd_io_lock)


def _fail_outstanding(sc: Softc, error: int) -> None:
    """Fail with ``error`` every bio the driver holds for a back end that will never
    answer: the fixes of ``backend-closed-ignored`` (the back end is Closed or gone) and
    ``detach-leaves-disk`` (the device is deleted).  Commands on BUSY have their grants
    ended (the back end no longer maps them), commands on READY their unused references
    released; each goes back to FREE; then the bio queue fails (:func:`_fail_queued_bios`).
    The driver is left DISCONNECTED, so that ``xbd_int`` ignores what is left on the
    ring it gave up (a response published before the back end left names a command
    already freed) and ``xbd_startio`` sends nothing more.
    """
    shadow = sc.xbd_shadow or []
    gnttab = sc.platform.gnttab
    mtx_lock(sc.xbd_io_lock)
    taken: list[tuple[Command, int]] = []
    for cm in shadow:
        queue = cm.cm_flags & XBDCF_Q_MASK
        if cm.cm_bp is not None and queue in (XBD_Q_BUSY, XBD_Q_READY):
            xbd_remove_cm(cm, queue)
            taken.append((cm, queue))
    mtx_unlock(sc.xbd_io_lock)
    # the grant calls run without the I/O lock: their free callbacks take it
    for cm, queue in taken:
        if queue == XBD_Q_BUSY and cm.cm_sg_refs is not None:
            gnttab.gnttab_end_foreign_access_references(cm.cm_nseg, cm.cm_sg_refs)
        else:
            gnttab.gnttab_free_grant_references(cm.cm_gref_head)
    mtx_lock(sc.xbd_io_lock)
    failed: list[Bio] = []
    for cm, _ in taken:
        if cm.cm_map is not None:
            cm.cm_map.loaded = False
        cm_thaw(sc, cm)
        if cm.cm_bp is not None:
            failed.append(cm.cm_bp)
        free_command(cm)
    if xbd_queue_length(sc, XBD_Q_BUSY) == 0:
        thaw(sc, XBDF_WAIT_IDLE)
    sc.xbd_state = XbdState.DISCONNECTED
    mtx_unlock(sc.xbd_io_lock)
    for bp in failed:
        sc.platform.biofinish(bp, error)
    _fail_queued_bios(sc, error)


def backend_changed(dev: XenbusDevice, backend_state: int) -> None:
    """Port of ``xbd_backend_changed``: react to the back end's new XenbusState.

    Fix ``backend-closed-ignored``: a back end found Closed (it went there without
    Closing, or its node is gone: ``xenbus_read_driver_state`` reads Closed) while the
    front end is not Closed is handled as Closing, after failing every bio it held
    (:func:`_fail_outstanding`, which leaves the driver DISCONNECTED): it answers
    nothing more.  The seed ignores Closed.
    """
    sc = _softc(dev, "xbd_backend_changed")
    if (
        backend_state == XenbusState.Closed
        and sc.platform.fixes.backend_closed_ignored
        and xenbus_get_state(dev) != XenbusState.Closed
    ):
        _fail_outstanding(sc, ENXIO)
        backend_state = XenbusState.Closing
    if backend_state in (
        XenbusState.Unknown,
        XenbusState.Initialising,
        XenbusState.Reconfigured,
        XenbusState.Reconfiguring,
        XenbusState.Closed,
    ):
        pass
    elif backend_state in (XenbusState.InitWait, XenbusState.Initialised):
        initialize(sc)
    elif backend_state == XenbusState.Connected:
        initialize(sc)
        connect(sc)
    elif backend_state == XenbusState.Closing:
        if sc.xbd_users > 0:
            sc.platform.device_printf(dev, "detaching with pending users")
            if sc.xbd_disk is None:
                raise KernelAssertion("xbd_backend_changed", "NULL disk with pending users\n")
            if sc.platform.fixes.stranded_bios_on_disk_gone and sc.xbd_state != XbdState.CONNECTED:
                _fail_queued_bios(sc)
            sc.platform.disk_gone(sc.xbd_disk)
        else:
            closing(dev)


# static device_method_t xbd_methods[] = {...}; DRIVER_MODULE(xbd, xenbusb_front, ...)
DRIVER_MODULE(
    "xbd",
    DriverMethods(
        probe=probe,
        attach=attach,
        detach=detach,
        suspend=suspend,
        resume=resume,
        otherend_changed=backend_changed,
    ),
)

__all__ = [
    "VDEV_INFO",
    "SuspendSleep",
    "alloc_ring",
    "attach",
    "backend_changed",
    "closing",
    "connect",
    "detach",
    "feature_string",
    "free",
    "free_ring",
    "initialize",
    "instance_create",
    "probe",
    "resume",
    "setup_sysctl",
    "suspend",
    "suspend_continue",
    "sysctl_features",
    "vdevice_to_unit",
]
