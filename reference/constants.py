"""Constants of the protocol (Xen ``blkif.h``, ``ring.h``, ``xenbus.h``) and of FreeBSD.

Sources: ``xen/include/public/io/blkif.h`` and ``ring.h``; FreeBSD
``sys/dev/xen/blkfront/block.h`` (the ``XBD_*`` limits, ``xbd_flag_t``, ``xbdc_flag_t``,
``xbd_q_index_t``, ``xbd_state_t``), ``sys/xen/blkif.h`` (``BLKIF_MAX_RING_REQUESTS``),
``sys/sys/bio.h``, ``sys/geom/geom_disk.h``, ``sys/sys/bus_dma.h`` and ``sys/sys/errno.h``
of FreeBSD 14, the tree the seed comes from (its ``maxphys`` and four-argument
``DRIVER_MODULE`` are FreeBSD 14's).  Sizes are those of amd64 (LP64).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from xbdspec.model import vocabulary

# ------------------------------------------------------------------ machine (amd64)
PAGE_SHIFT: Final = 12
PAGE_SIZE: Final = 1 << PAGE_SHIFT
PAGE_MASK: Final = PAGE_SIZE - 1
#: ``XBD_SECTOR_SHFT`` of the seed: blkif sectors are 512 bytes.
XBD_SECTOR_SHFT: Final = 9
#: ``MAXPHYS`` on LP64 (``sys/sys/param.h``); the kernel tunable ``maxphys`` defaults to it.
MAXPHYS_DEFAULT: Final = 1024 * 1024

# ------------------------------------------------------------------ errno (FreeBSD)
ENOENT: Final = 2
EIO: Final = 5
ENXIO: Final = 6
ENOMEM: Final = 12
EBUSY: Final = 16
EEXIST: Final = 17
EINVAL: Final = 22
ENOTTY: Final = 25
EFBIG: Final = 27
ENOSPC: Final = 28
EROFS: Final = 30
ERANGE: Final = 34
EWOULDBLOCK: Final = 35
EINPROGRESS: Final = 36
EOPNOTSUPP: Final = 45


# ------------------------------------------------------------------ xenbus.h
#: ``enum xenbus_state``: the protocol's one definition, shared with the model
XenbusState = vocabulary.XenbusState


# ------------------------------------------------------------------ blkif.h
BLKIF_OP_READ: Final = 0
BLKIF_OP_WRITE: Final = 1
BLKIF_OP_WRITE_BARRIER: Final = 2
BLKIF_OP_FLUSH_DISKCACHE: Final = 3
BLKIF_OP_DISCARD: Final = 5
BLKIF_OP_INDIRECT: Final = 6

BLKIF_RSP_OKAY: Final = 0
BLKIF_RSP_ERROR: Final = -1
BLKIF_RSP_EOPNOTSUPP: Final = -2

#: Segments in a direct request (``BLKIF_MAX_SEGMENTS_PER_REQUEST``).
BLKIF_MAX_SEGMENTS_PER_REQUEST: Final = 11
#: Indirect pages named by one indirect request.
BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: Final = 8
#: ``sizeof(struct blkif_request_segment)``: gref (4), first_sect, last_sect, pad (2).
BLKIF_SEGMENT_SIZE: Final = 8
#: ``sizeof(blkif_request_t)`` on x86-64: 24-byte header + 11 segments of 8 bytes.
BLKIF_X86_64_REQUEST_SIZE: Final = 112
#: ``sizeof(blkif_x86_32_request_t)`` (``#pragma pack(4)``): 20-byte header + 88.
BLKIF_X86_32_REQUEST_SIZE: Final = 108
#: ``sizeof(blkif_response_t)`` on x86-64 (id 8, operation 1, pad 1, status 2, pad 4).
BLKIF_X86_64_RESPONSE_SIZE: Final = 16
#: ``sizeof(blkif_x86_32_response_t)`` (packed to 4).
BLKIF_X86_32_RESPONSE_SIZE: Final = 12
#: ``offsetof(struct blkif_sring, ring)``: four indices plus the 48-byte private pad.
SRING_HEADER_SIZE: Final = 64
#: ``XEN_IO_PROTO_ABI_NATIVE`` on amd64.
XEN_IO_PROTO_ABI_NATIVE: Final = "x86_64-abi"

VDISK_CDROM: Final = 0x1
VDISK_REMOVABLE: Final = 0x2
VDISK_READONLY: Final = 0x4

# ------------------------------------------------------------------ grant table
#: ``GNTTAB_LIST_END``: the end of a private grant list (``~0`` as an int is ``-1``).
GNTTAB_LIST_END: Final = 0xFFFF_FFFF
#: ``GRANT_REF_INVALID``.
GRANT_REF_INVALID: Final = 0xFFFF_FFFF
#: Entries the tool stack reserves at the start of the grant table (``NR_RESERVED_ENTRIES``).
NR_RESERVED_ENTRIES: Final = 8
#: Grant entries per grant frame (v1 entries are 8 bytes).
GREFS_PER_GRANT_FRAME: Final = PAGE_SIZE // 8


def rd32(value: int) -> int:
    """``__RD32(x)`` of ``ring.h``: round down to a power of two (0 stays 0)."""
    return 1 << (value.bit_length() - 1) if value > 0 else 0


def ring_size(ring_bytes: int, entry_size: int) -> int:
    """``__RING_SIZE`` / ``__CONST_RING_SIZE``: entries after the header, rounded down."""
    if ring_bytes < SRING_HEADER_SIZE:
        return 0
    return rd32((ring_bytes - SRING_HEADER_SIZE) // entry_size)


def blkif_max_ring_requests(ring_bytes: int) -> int:
    """``BLKIF_MAX_RING_REQUESTS(sz)`` of FreeBSD ``sys/xen/blkif.h``.

    The maximum over the x86-64, x86-32 and native (= x86-64) ring layouts; one 4 KiB page
    gives 32 entries, 32 pages give 1024.
    """
    return max(
        ring_size(ring_bytes, BLKIF_X86_64_REQUEST_SIZE),
        ring_size(ring_bytes, BLKIF_X86_32_REQUEST_SIZE),
    )


# ------------------------------------------------------------------ block.h limits
XBD_MAX_RING_PAGES: Final = 32
#: ``__CONST_RING_SIZE(blkif, PAGE_SIZE * XBD_MAX_RING_PAGES)`` = 1024.
XBD_MAX_REQUESTS: Final = ring_size(PAGE_SIZE * XBD_MAX_RING_PAGES, BLKIF_X86_64_REQUEST_SIZE)
XBD_MAX_SEGMENTS_PER_PAGE: Final = PAGE_SIZE // BLKIF_SEGMENT_SIZE
XBD_MAX_INDIRECT_SEGMENTS: Final = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * XBD_MAX_SEGMENTS_PER_PAGE


def XBD_SEGS_TO_SIZE(segs: int) -> int:
    """``(((segs) - 1) * PAGE_SIZE)`` evaluated in ``uint32_t`` (segs is a uint32_t)."""
    return ((segs - 1) * PAGE_SIZE) & 0xFFFF_FFFF


def XBD_SIZE_TO_SEGS(size: int) -> int:
    """``((size / PAGE_SIZE) + 1)`` in the type of ``size`` (``u_long`` for maxphys)."""
    return ((size // PAGE_SIZE) + 1) & 0xFFFF_FFFF_FFFF_FFFF


def XBD_INDIRECT_SEGS_TO_PAGES(segs: int) -> int:
    """``((segs + XBD_MAX_SEGMENTS_PER_PAGE - 1) / XBD_MAX_SEGMENTS_PER_PAGE)`` in size_t."""
    return (segs + XBD_MAX_SEGMENTS_PER_PAGE - 1) // XBD_MAX_SEGMENTS_PER_PAGE


# ------------------------------------------------------------------ block.h flags
XBDF_NONE: Final = 0
XBDF_OPEN: Final = 1 << 0
XBDF_BARRIER: Final = 1 << 1
XBDF_FLUSH: Final = 1 << 2
XBDF_READY: Final = 1 << 3
XBDF_CM_SHORTAGE: Final = 1 << 4
XBDF_GNT_SHORTAGE: Final = 1 << 5
XBDF_WAIT_IDLE: Final = 1 << 6
XBDF_DISCARD: Final = 1 << 7
XBDF_PERSISTENT: Final = 1 << 8

#: Names of the ``xbd_flag_t`` bits, for observations and messages.
XBDF_NAMES: Final = {
    XBDF_OPEN: "OPEN",
    XBDF_BARRIER: "BARRIER",
    XBDF_FLUSH: "FLUSH",
    XBDF_READY: "READY",
    XBDF_CM_SHORTAGE: "CM_SHORTAGE",
    XBDF_GNT_SHORTAGE: "GNT_SHORTAGE",
    XBDF_WAIT_IDLE: "WAIT_IDLE",
    XBDF_DISCARD: "DISCARD",
    XBDF_PERSISTENT: "PERSISTENT",
}

XBDCF_Q_MASK: Final = 0xFF
XBDCF_FROZEN: Final = 1 << 8
XBDCF_Q_FREEZE: Final = 1 << 9
XBDCF_ASYNC_MAPPING: Final = 1 << 10
XBDCF_INITIALIZER: Final = XBDCF_Q_MASK

# xbd_q_index_t
XBD_Q_FREE: Final = 0
XBD_Q_READY: Final = 1
XBD_Q_BUSY: Final = 2
XBD_Q_COMPLETE: Final = 3
XBD_Q_BIO: Final = 4
XBD_Q_COUNT: Final = 5
XBD_Q_NONE: Final = XBDCF_Q_MASK

XBD_Q_NAMES: Final = {
    XBD_Q_FREE: "FREE",
    XBD_Q_READY: "READY",
    XBD_Q_BUSY: "BUSY",
    XBD_Q_COMPLETE: "COMPLETE",
    XBD_Q_BIO: "BIO",
    XBD_Q_NONE: "NONE",
}


class XbdState(IntEnum):
    """``xbd_state_t``: the driver's own connection to the device layer."""

    DISCONNECTED = 0
    CONNECTED = 1
    SUSPENDED = 2


# ------------------------------------------------------------------ bio.h
BIO_READ: Final = 0x01
BIO_WRITE: Final = 0x02
BIO_DELETE: Final = 0x03
BIO_GETATTR: Final = 0x04
BIO_FLUSH: Final = 0x05
BIO_ZONE: Final = 0x09
#: "Upper layers face shortage" (``g_io_speedup``); ``g_disk_start`` passes it to every
#: disk's ``d_strategy`` whatever ``d_flags`` says (see :mod:`.geom`).
BIO_SPEEDUP: Final = 0x0A

BIO_ERROR: Final = 0x01
BIO_DONE: Final = 0x02
BIO_ORDERED: Final = 0x08

# ------------------------------------------------------------------ geom_disk.h
# FreeBSD 14 ``sys/geom/geom_disk.h`` (checked in the FreeBSD 14 vendor tree
# sobomax/freebsd14_vendor at 0f7ff3427c99afe8b7a0ccf8638dc10aed02c3f8; FreeBSD 8's copy
# already had CANFLUSHCACHE at 0x8; the seed's shim, ``shim/include/xbd_shim.h``, agrees).
DISKFLAG_RESERVED: Final = 0x0001  # was DISKFLAG_NEEDSGIANT
DISKFLAG_OPEN: Final = 0x0002
DISKFLAG_CANDELETE: Final = 0x0004
DISKFLAG_CANFLUSHCACHE: Final = 0x0008
DISKFLAG_UNMAPPED_BIO: Final = 0x0010
DISKFLAG_DIRECT_COMPLETION: Final = 0x0020
DISKFLAG_CANZONE: Final = 0x0080
DISKFLAG_WRITE_PROTECT: Final = 0x0100

# ------------------------------------------------------------------ bus_dma.h
#: ``BUS_DMA_WAITOK``: the seed's ``flags`` (0) for every ``bus_dmamap_load*``.
BUS_DMA_WAITOK: Final = 0x00
#: ``BUS_DMA_NOWAIT``: with it, a load that runs out of resources returns ``ENOMEM``
#: instead of being deferred (``EINPROGRESS``).
BUS_DMA_NOWAIT: Final = 0x01

# bus_dmamap_sync operations
BUS_DMASYNC_PREREAD: Final = 1
BUS_DMASYNC_POSTREAD: Final = 2
BUS_DMASYNC_PREWRITE: Final = 4
BUS_DMASYNC_POSTWRITE: Final = 8
