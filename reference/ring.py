"""Xen's shared ring (``xen/include/public/io/ring.h``) over simulated pages.

The shared ring (``struct blkif_sring``) is a byte array: four 32-bit indices
(``req_prod``, ``req_event``, ``rsp_prod``, ``rsp_event``) in a 64-byte header, then
``nr_ents`` slots of 112 bytes, each holding a request or (later) its response, exactly
overlaid as the C union is.  Both ends keep private indices (:class:`FrontRing`,
:class:`BackRing`).  Indices are ``RING_IDX`` (``uint32_t``), run freely and wrap modulo
2^32; every difference is an unsigned 32-bit subtraction; a slot is ``idx & (nr_ents - 1)``.

The macros are functions named as in ``ring.h``.  Request and response layouts are those of
``blkif_x86_64_request`` / ``blkif_request_indirect`` / ``blkif_x86_64_response``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .constants import BLKIF_X86_64_REQUEST_SIZE, SRING_HEADER_SIZE, ring_size
from .faults import UndefinedBehaviour
from .memory import KernelBuffer

_U32: Final = 0xFFFF_FFFF
ENTRY_SIZE: Final = BLKIF_X86_64_REQUEST_SIZE

_INDEX = struct.Struct("<I")
#: blkif_request header: operation, nr_segments, handle, (pad 4), id, sector_number.
REQUEST_HEADER = struct.Struct("<BBH4xQQ")
#: blkif_request_segment: gref, first_sect, last_sect, (pad 2).
SEGMENT = struct.Struct("<IBB2x")
#: blkif_request_indirect: operation, indirect_op, nr_segments (u16), (pad 4), id,
#: sector_number, handle, (pad 2), indirect_grefs[8].
INDIRECT_REQUEST = struct.Struct("<BBH4xQQH2x8I")
#: blkif_response: id, operation, (pad 1), status (int16).
RESPONSE = struct.Struct("<QBxh")

# The fields ``xbd_queue_cb`` stores one by one (``ring_req->id = ...``): offsets in a slot
# of ``blkif_request`` / ``blkif_request_indirect`` (x86-64).  The C writes only these, so
# every other byte of the slot (padding, segments past ``nr_segments``, indirect grant
# references past ``xbd_max_request_indirectpages``) keeps what the slot held before.
U8 = struct.Struct("<B")
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
REQ_OPERATION: Final = 0  # uint8_t operation
REQ_NR_SEGMENTS: Final = 1  # uint8_t nr_segments
REQ_HANDLE: Final = 2  # blkif_vdev_t handle (uint16_t)
REQ_ID: Final = 8  # uint64_t id
REQ_SECTOR_NUMBER: Final = 16  # blkif_sector_t sector_number
REQ_SEG: Final = 24  # struct blkif_request_segment seg[11]
IND_OPERATION: Final = 0  # uint8_t operation (BLKIF_OP_INDIRECT)
IND_INDIRECT_OP: Final = 1  # uint8_t indirect_op
IND_NR_SEGMENTS: Final = 2  # uint16_t nr_segments
IND_ID: Final = 8  # uint64_t id
IND_SECTOR_NUMBER: Final = 16  # blkif_sector_t sector_number
IND_HANDLE: Final = 24  # blkif_vdev_t handle
IND_GREFS: Final = 28  # grant_ref_t indirect_grefs[8]

REQ_PROD: Final = 0
REQ_EVENT: Final = 4
RSP_PROD: Final = 8
RSP_EVENT: Final = 12


@dataclass(slots=True, eq=False)
class SharedRing:
    """``blkif_sring_t`` living in the pages of ``page`` (granted to the back end)."""

    page: KernelBuffer

    @property
    def buf(self) -> bytearray:
        """The raw bytes of the ring pages."""
        return self.page.mem

    def get(self, field_offset: int) -> int:
        """Read one of the four shared indices."""
        return int(_INDEX.unpack_from(self.page.mem, field_offset)[0])

    def set(self, field_offset: int, value: int) -> None:
        """Write one of the four shared indices (as a ``uint32_t``)."""
        _INDEX.pack_into(self.page.mem, field_offset, value & _U32)

    @property
    def req_prod(self) -> int:
        """``sring->req_prod``."""
        return self.get(REQ_PROD)

    @property
    def req_event(self) -> int:
        """``sring->req_event``."""
        return self.get(REQ_EVENT)

    @property
    def rsp_prod(self) -> int:
        """``sring->rsp_prod``."""
        return self.get(RSP_PROD)

    @property
    def rsp_event(self) -> int:
        """``sring->rsp_event``."""
        return self.get(RSP_EVENT)


def SHARED_RING_INIT(sring: SharedRing, start: int = 0) -> None:
    """``SHARED_RING_INIT``: producers at 0, events at 1, private pad zeroed.

    ``start`` is a test hook (not in ring.h): begin every index at ``start`` so that the
    free-running indices cross 2^32 early.  With ``start == 0`` this is the macro.
    """
    sring.set(REQ_PROD, start)
    sring.set(RSP_PROD, start)
    sring.set(REQ_EVENT, start + 1)
    sring.set(RSP_EVENT, start + 1)
    sring.page.mem[16:SRING_HEADER_SIZE] = bytes(SRING_HEADER_SIZE - 16)


@dataclass(slots=True, eq=False)
class FrontRing:
    """``blkif_front_ring_t``: the front end's private producer and consumer indices."""

    req_prod_pvt: int = 0
    rsp_cons: int = 0
    nr_ents: int = 0
    sring: SharedRing | None = None


@dataclass(slots=True, eq=False)
class BackRing:
    """``blkif_back_ring_t``: the back end's private producer and consumer indices."""

    rsp_prod_pvt: int = 0
    req_cons: int = 0
    nr_ents: int = 0
    sring: SharedRing | None = None


def FRONT_RING_INIT(ring: FrontRing, sring: SharedRing, size: int, start: int = 0) -> None:
    """``FRONT_RING_INIT(r, s, size)``; ``start`` as in :func:`SHARED_RING_INIT`."""
    ring.req_prod_pvt = start & _U32
    ring.rsp_cons = start & _U32
    ring.nr_ents = ring_size(size, ENTRY_SIZE)
    ring.sring = sring


def BACK_RING_ATTACH(ring: BackRing, sring: SharedRing, size: int) -> None:
    """``BACK_RING_ATTACH``: take the indices the front end has published."""
    ring.rsp_prod_pvt = sring.rsp_prod
    ring.req_cons = sring.req_prod
    ring.nr_ents = ring_size(size, ENTRY_SIZE)
    ring.sring = sring


def _sring(ring: FrontRing | BackRing, macro: str) -> SharedRing:
    """``r->sring``; a NULL shared ring (freed or never allocated) is undefined behaviour."""
    sring = ring.sring
    if sring is None:
        raise UndefinedBehaviour(macro, "dereference of a NULL r->sring")
    return sring


def slot_offset(nr_ents: int, idx: int) -> int:
    """Byte offset of ``RING_GET_REQUEST/RESPONSE(r, idx)`` in the ring pages."""
    return SRING_HEADER_SIZE + (idx & (nr_ents - 1)) * ENTRY_SIZE


def RING_SIZE(ring: FrontRing | BackRing) -> int:
    """``RING_SIZE(r)``."""
    return ring.nr_ents


def RING_FREE_REQUESTS(ring: FrontRing) -> int:
    """``RING_SIZE(r) - (r->req_prod_pvt - r->rsp_cons)`` in unsigned 32-bit arithmetic."""
    return (ring.nr_ents - ((ring.req_prod_pvt - ring.rsp_cons) & _U32)) & _U32


def RING_FULL(ring: FrontRing) -> bool:
    """``RING_FREE_REQUESTS(r) == 0``."""
    return RING_FREE_REQUESTS(ring) == 0


def RING_HAS_UNCONSUMED_RESPONSES(ring: FrontRing) -> int:
    """``r->sring->rsp_prod - r->rsp_cons`` (unsigned)."""
    return (_sring(ring, "RING_HAS_UNCONSUMED_RESPONSES").rsp_prod - ring.rsp_cons) & _U32


def RING_HAS_UNCONSUMED_REQUESTS(ring: BackRing) -> int:
    """Back end: ``min(req_prod - req_cons, RING_SIZE - (req_cons - rsp_prod_pvt))``."""
    req = (_sring(ring, "RING_HAS_UNCONSUMED_REQUESTS").req_prod - ring.req_cons) & _U32
    rsp = (ring.nr_ents - ((ring.req_cons - ring.rsp_prod_pvt) & _U32)) & _U32
    return min(req, rsp)


def RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(ring: FrontRing) -> bool:
    """Publish ``req_prod``; notify when ``(new - req_event) < (new - old)`` (unsigned)."""
    sring = _sring(ring, "RING_PUSH_REQUESTS_AND_CHECK_NOTIFY")
    old = sring.req_prod
    new = ring.req_prod_pvt
    sring.set(REQ_PROD, new)
    return ((new - sring.req_event) & _U32) < ((new - old) & _U32)


def RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(ring: BackRing) -> bool:
    """Publish ``rsp_prod``; notify when ``(new - rsp_event) < (new - old)`` (unsigned)."""
    sring = _sring(ring, "RING_PUSH_RESPONSES_AND_CHECK_NOTIFY")
    old = sring.rsp_prod
    new = ring.rsp_prod_pvt
    sring.set(RSP_PROD, new)
    return ((new - sring.rsp_event) & _U32) < ((new - old) & _U32)


def RING_FINAL_CHECK_FOR_RESPONSES(ring: FrontRing) -> bool:
    """Work pending? If none, set ``rsp_event = rsp_cons + 1`` and look again."""
    if RING_HAS_UNCONSUMED_RESPONSES(ring):
        return True
    _sring(ring, "RING_FINAL_CHECK_FOR_RESPONSES").set(RSP_EVENT, ring.rsp_cons + 1)
    return RING_HAS_UNCONSUMED_RESPONSES(ring) != 0


def RING_FINAL_CHECK_FOR_REQUESTS(ring: BackRing) -> bool:
    """Back end: work pending? If none, set ``req_event = req_cons + 1`` and look again."""
    if RING_HAS_UNCONSUMED_REQUESTS(ring):
        return True
    _sring(ring, "RING_FINAL_CHECK_FOR_REQUESTS").set(REQ_EVENT, ring.req_cons + 1)
    return RING_HAS_UNCONSUMED_REQUESTS(ring) != 0
