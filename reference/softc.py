"""The driver's data structures: ``struct xbd_softc``, ``struct xbd_command``, bios, disks.

Field names and C types follow FreeBSD ``sys/dev/xen/blkfront/block.h``:

=================================  ==================  =====================================
field                              C type              kept as
=================================  ==================  =====================================
``xbd_flags``                      ``xbd_flag_t``      int (bit set, ``XBDF_*``)
``xbd_qfrozen_cnt``                ``int``             Python int (never wraps in practice)
``xbd_vdevice``, ``xbd_unit``      ``int``             wrapped with ``s32``
``xbd_ring_pages``                 ``u_int``           wrapped with ``u32``
``xbd_max_requests`` ...           ``uint32_t``        wrapped with ``u32``
``cm_flags``                       ``xbdc_flag_t``     int; low byte = queue index
``cm_id``                          ``uint64_t``        int
``cm_nseg``                        ``u_int``           int
``cm_sector_number``               ``blkif_sector_t``  wrapped with ``u64``
=================================  ==================  =====================================

Every object here is plain data (``__slots__`` dataclasses, lists, deques), so the whole
driver and platform can be snapshot with :func:`copy.deepcopy`.  Callbacks the C code keeps
as function pointers (``cm_complete``, the grant free callback) are module-level functions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .constants import (
    GRANT_REF_INVALID,
    XBD_MAX_RING_PAGES,
    XBD_Q_COUNT,
    XbdState,
)
from .memory import KernelBuffer
from .ring import FrontRing

if TYPE_CHECKING:
    from .busdma import DmaMap, DmaTag
    from .evtchn import IntrHandle
    from .grants import GnttabFreeCallback
    from .platform import Platform
    from .xenbus import XenbusDevice


@dataclass(slots=True, eq=False)
class Bio:
    """``struct bio``: the fields the seed reads and writes, plus simulation bookkeeping.

    Attributes:
        bio_cmd: ``BIO_READ``, ``BIO_WRITE``, ``BIO_FLUSH``, ...
        bio_flags: ``BIO_ORDERED``, ``BIO_ERROR``, ``BIO_DONE``.
        bio_pblkno: the physical block number (in ``d_sectorsize`` units as GEOM sets it;
            the simulation uses 512-byte sectors).
        bio_bcount: byte count.
        bio_data: the data buffer (``None`` for a flush).
        bio_error, bio_resid: set on completion.
        bio_disk: the disk the bio was sent to.
        bio_id: the simulation's identifier (not in the kernel).
        done_count: how many times ``biodone`` was called on it (not in the kernel).
    """

    bio_cmd: int
    bio_pblkno: int = 0
    bio_bcount: int = 0
    bio_flags: int = 0
    bio_data: KernelBuffer | None = None
    bio_error: int = 0
    bio_resid: int = 0
    bio_disk: Disk | None = None
    bio_id: int = 0
    done_count: int = 0


@dataclass(slots=True, eq=False)
class Disk:
    """``struct disk`` (``sys/geom/geom_disk.h``): the fields the seed sets.

    Attributes:
        d_drv1: the softc (``None`` models a bogus disk).
        address: a simulated kernel address of the structure, deterministic; the seed puts
            ``(blkif_vdev_t)(uintptr_t)sc->xbd_disk`` into each request's ``handle``.
        created, destroyed, gone: ``disk_create`` / ``disk_destroy`` / ``disk_gone`` seen.
        acr, acw, ace: the access counts of the disk's GEOM provider (``pp->acr`` ..., which
            ``g_disk_access`` sees; :func:`~xbdspec.reference.geom.g_disk_access`).
    """

    address: int
    platform: Platform | None = None
    d_unit: int = 0
    d_name: str = ""
    d_drv1: Softc | None = None
    d_sectorsize: int = 0
    d_stripesize: int = 0
    d_stripeoffset: int = 0
    d_mediasize: int = 0
    d_maxsize: int = 0
    d_flags: int = 0
    d_open: Callable[[Disk], int] | None = None
    d_close: Callable[[Disk], int] | None = None
    d_ioctl: Callable[..., int] | None = None
    d_strategy: Callable[[Bio], None] | None = None
    d_dump: Callable[..., int] | None = None
    created: bool = False
    destroyed: bool = False
    gone: bool = False
    acr: int = 0
    acw: int = 0
    ace: int = 0


@dataclass(slots=True, eq=False)
class Command:
    """``struct xbd_command`` (block.h).

    ``cm_gref_head`` is the private grant list of ``gnttab_alloc_grant_references`` (a
    Python list; empty means ``GNTTAB_LIST_END``).  ``cm_data`` is ``(buffer, offset)``.
    """

    cm_sc: Softc | None = None
    cm_flags: int = 0
    cm_map: DmaMap | None = None
    cm_id: int = 0
    cm_sg_refs: list[int] | None = None
    cm_bp: Bio | None = None
    cm_gref_head: list[int] = field(default_factory=list)
    cm_data: KernelBuffer | None = None
    cm_datalen: int = 0
    cm_nseg: int = 0
    cm_operation: int = 0
    cm_sector_number: int = 0
    cm_status: int = 0
    cm_complete: Callable[[Command], None] | None = None
    cm_indirectionpages: KernelBuffer | None = None
    cm_indirectionrefs: list[int] = field(default_factory=lambda: [0] * 8)


@dataclass(slots=True, eq=False)
class CmQueue:
    """``xbd_cm_q_t``: a tail queue with its length and high-water mark (``uint32_t``)."""

    q_tailq: deque[Command] = field(default_factory=deque)
    q_length: int = 0
    q_max: int = 0


@dataclass(slots=True, eq=False)
class Mutex:
    """An ``MTX_DEF`` mutex: ``depth`` is the owner's lock depth.

    Attributes:
        recursions: how many times it was locked while already held (on a non-recursive
            mutex a production kernel recurses and an ``INVARIANTS`` kernel panics, see
            ``Tunables``).
        recursive: initialised with ``MTX_RECURSE`` (the grant table's
            ``gnttab_list_lock``): taking it again is legal, only counted.
    """

    name: str
    depth: int = 0
    recursions: int = 0
    initialised: bool = False
    recursion_fatal: bool = True
    recursive: bool = False


@dataclass(slots=True, eq=False)
class Softc:
    """``struct xbd_softc`` (block.h), one per virtual block device.

    ``platform`` is the simulated kernel and hypervisor this instance runs on (the C code
    reaches them through globals).
    """

    platform: Platform
    xbd_dev: XenbusDevice | None = None
    xbd_disk: Disk | None = None
    xbd_bioq: deque[Bio] = field(default_factory=deque)
    xbd_unit: int = 0
    xbd_flags: int = 0
    xbd_qfrozen_cnt: int = 0
    xbd_vdevice: int = 0
    xbd_state: XbdState = XbdState.DISCONNECTED
    #: not in the seed: the state ``xbd_suspend`` found, kept for a cancelled resume (fix
    #: ``resume-cancelled-connects-unconnected``)
    xbd_state_before_suspend: XbdState = XbdState.CONNECTED
    xbd_ring_pages: int = 0
    xbd_max_requests: int = 0
    xbd_max_request_segments: int = 0
    xbd_max_request_size: int = 0
    xbd_max_request_indirectpages: int = 0
    xbd_ring_ref: list[int] = field(default_factory=lambda: [0] * XBD_MAX_RING_PAGES)
    xbd_ring: FrontRing = field(default_factory=FrontRing)
    xen_intr_handle: IntrHandle | None = None
    xbd_callback: GnttabFreeCallback | None = None
    xbd_cm_q: list[CmQueue] = field(default_factory=lambda: [CmQueue() for _ in range(XBD_Q_COUNT)])
    xbd_io_dmat: DmaTag | None = None
    xbd_users: int = 0
    xbd_io_lock: Mutex = field(default_factory=lambda: Mutex("blkfront i/o lock"))
    xbd_shadow: list[Command] | None = None
    #: the sysctl nodes ``xbd_setup_sysctl`` registered (name -> description).
    sysctls: dict[str, Any] = field(default_factory=dict)


def fresh_ring_refs() -> list[int]:
    """The ``xbd_ring_ref`` array as ``xbd_attach`` leaves it: all ``GRANT_REF_INVALID``."""
    return [GRANT_REF_INVALID] * XBD_MAX_RING_PAGES
