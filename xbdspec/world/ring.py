"""The shared ring page in blkif's layout on x86-64 (Xen 4.17's ``blkif.h`` and
``ring.h``): what both ends read and write, byte for byte.

``struct blkif_sring``: ``req_prod`` at 0, ``req_event`` at 4, ``rsp_prod`` at 8,
``rsp_event`` at 12, 48 bytes of padding, then the entries from offset 64, each the
112-byte union of a request and a response.  A ring of ``2**order`` pages has
``__RD32((PAGE_SIZE << order) - 64) / 112)`` entries (32 for one page).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

PAGE_SIZE = 4096
HEADER = 64
ENTRY = 112
MAX_SEGMENTS = 11
MAX_INDIRECT_PAGES = 8
SEGMENTS_PER_INDIRECT_PAGE = PAGE_SIZE // 8
U32 = 0xFFFF_FFFF

_INDEXES = struct.Struct("<IIII")
_REQUEST = struct.Struct("<BBHxxxxQQ")  # operation, nr_segments, handle, id, sector_number
_SEGMENT = struct.Struct("<IBBxx")  # gref, first_sect, last_sect
_INDIRECT = struct.Struct(
    "<BBHxxxxQQHxx8I"
)  # operation, indirect_op, nr_segments, id, sector, handle, grefs
_DISCARD = struct.Struct("<BBHxxxxQQQ")  # operation, flag, handle, id, sector_number, nr_sectors
_RESPONSE = struct.Struct("<QBxh")  # id, operation, status

OP_READ, OP_WRITE, OP_WRITE_BARRIER, OP_FLUSH_DISKCACHE, OP_DISCARD, OP_INDIRECT = 0, 1, 2, 3, 5, 6
RSP_OKAY, RSP_ERROR, RSP_EOPNOTSUPP = 0, -1, -2


def ring_size(order: int) -> int:
    """``RING_SIZE`` of a ring of ``2**order`` pages (entries, a power of two)."""
    n = ((PAGE_SIZE << order) - HEADER) // ENTRY
    return 1 << (n.bit_length() - 1)


@dataclass(frozen=True)
class Segment:
    gref: int
    first_sect: int
    last_sect: int


@dataclass(frozen=True)
class Request:
    """A request as read from its slot.

    Attributes:
        indirect_op, indirect_grefs: for ``BLKIF_OP_INDIRECT`` (segments then come from
            the indirect pages).
        nr_sectors: for ``BLKIF_OP_DISCARD``.
    """

    operation: int
    nr_segments: int
    id: int
    sector_number: int
    segments: tuple[Segment, ...] = ()
    indirect_op: int = 0
    indirect_grefs: tuple[int, ...] = ()
    nr_sectors: int = 0


class _Pages:
    """Several pages read and written as one contiguous buffer (slices and
    ``struct``-style packing at offsets go through :meth:`get` and :meth:`put`)."""

    def __init__(self, pages: list[bytearray | memoryview]) -> None:
        self.pages = pages

    def __len__(self) -> int:
        return PAGE_SIZE * len(self.pages)

    def get(self, off: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            page, at = divmod(off, PAGE_SIZE)
            chunk = min(n, PAGE_SIZE - at)
            out += self.pages[page][at : at + chunk]
            off, n = off + chunk, n - chunk
        return bytes(out)

    def put(self, off: int, data: bytes) -> None:
        done = 0
        while done < len(data):
            page, at = divmod(off + done, PAGE_SIZE)
            chunk = min(len(data) - done, PAGE_SIZE - at)
            self.pages[page][at : at + chunk] = data[done : done + chunk]
            done += chunk

    def __getitem__(self, key: slice) -> bytes:
        start, stop, _ = key.indices(len(self))
        return self.get(start, stop - start)

    def __setitem__(self, key: slice, data: bytes) -> None:
        start, _, _ = key.indices(len(self))
        self.put(start, bytes(data))


class SharedRing:
    """A view of the shared ring memory: ``memory`` is the ring's pages, contiguous, or
    a list of its ``2**order`` pages in ``ring-ref`` order (a back end's mapping of the
    grants: each page may live anywhere; an entry may straddle two of them)."""

    def __init__(
        self,
        memory: bytearray | memoryview | list[bytearray | memoryview],
        order: int = 0,
    ) -> None:
        if isinstance(memory, list):
            if len(memory) != 1 << order or any(len(p) != PAGE_SIZE for p in memory):
                raise ValueError(f"a ring of order {order} needs {1 << order} pages")
            pages = memory
            memory = pages[0] if len(pages) == 1 else _Pages(pages)  # type: ignore[assignment]
        if len(memory) != PAGE_SIZE << order:
            raise ValueError(f"a ring of order {order} needs {PAGE_SIZE << order} bytes")
        self.memory: Any = memory
        self.order = order
        self.size = ring_size(order)

    @classmethod
    def init(cls, memory: bytearray, order: int = 0) -> SharedRing:
        """``SHARED_RING_INIT``: indices 0, event indices 1."""
        ring = cls(memory, order)
        memory[:HEADER] = bytes(HEADER)
        _INDEXES.pack_into(memory, 0, 0, 1, 0, 1)
        return ring

    # ---- the shared indices
    def indexes(self) -> tuple[int, int, int, int]:
        """``(req_prod, req_event, rsp_prod, rsp_event)``."""
        values = _INDEXES.unpack(bytes(self.memory[0:16]))
        return values[0], values[1], values[2], values[3]

    def set_index(self, name: str, value: int) -> None:
        offset = {"req_prod": 0, "req_event": 4, "rsp_prod": 8, "rsp_event": 12}[name]
        self.memory[offset : offset + 4] = struct.pack("<I", value & U32)

    def _slot(self, idx: int) -> int:
        return HEADER + (idx & (self.size - 1)) * ENTRY

    # ---- requests
    def write_request(self, idx: int, req: Request) -> None:
        off = self._slot(idx)
        entry = bytearray(ENTRY)
        if req.operation == OP_INDIRECT:
            grefs = (*req.indirect_grefs, *(0,) * (MAX_INDIRECT_PAGES - len(req.indirect_grefs)))
            _INDIRECT.pack_into(
                entry,
                0,
                req.operation,
                req.indirect_op,
                req.nr_segments,
                req.id,
                req.sector_number,
                0,
                *grefs,
            )
            self.memory[off : off + ENTRY] = entry
            return
        if req.operation == OP_DISCARD:
            _DISCARD.pack_into(
                entry, 0, req.operation, 0, 0, req.id, req.sector_number, req.nr_sectors
            )
            self.memory[off : off + ENTRY] = entry
            return
        _REQUEST.pack_into(entry, 0, req.operation, req.nr_segments, 0, req.id, req.sector_number)
        for i, seg in enumerate(req.segments[:MAX_SEGMENTS]):
            _SEGMENT.pack_into(entry, 24 + 8 * i, seg.gref, seg.first_sect, seg.last_sect)
        self.memory[off : off + ENTRY] = entry

    def read_request(self, idx: int) -> Request:
        """The request in slot ``idx``, as the front end wrote it (a copy: the other end
        cannot change it under the reader, ``RING_COPY_REQUEST``)."""
        off = self._slot(idx)
        raw = bytes(self.memory[off : off + ENTRY])
        op = raw[0]
        if op == OP_INDIRECT:
            fields = _INDIRECT.unpack_from(raw)
            grefs = fields[6:]
            # the pages named: blkif.h, "The number of indirect pages to use is determined
            # by the number of segments an indirect request contains": ceil(segments /
            # 512); the entries after them are not read (they may hold old bytes)
            used = -(-fields[2] // SEGMENTS_PER_INDIRECT_PAGE)
            return Request(
                op,
                fields[2],
                fields[3],
                fields[4],
                indirect_op=fields[1],
                indirect_grefs=tuple(grefs[: min(used, MAX_INDIRECT_PAGES)]),
            )
        if op == OP_DISCARD:
            _, _, _, rid, sector, count = _DISCARD.unpack_from(raw)
            return Request(op, 0, rid, sector, nr_sectors=count)
        op, nseg, _, rid, sector = _REQUEST.unpack_from(raw)
        segs = tuple(
            Segment(*_SEGMENT.unpack_from(raw, 24 + 8 * i)) for i in range(min(nseg, MAX_SEGMENTS))
        )
        return Request(op, nseg, rid, sector, segs)

    # ---- responses
    def write_response(self, idx: int, rid: int, operation: int, status: int) -> None:
        off = self._slot(idx)
        self.memory[off : off + _RESPONSE.size] = _RESPONSE.pack(rid, operation, status)

    def read_response(self, idx: int) -> tuple[int, int, int]:
        """``(id, operation, status)`` of the response in slot ``idx``."""
        off = self._slot(idx)
        rid, op, status = _RESPONSE.unpack(bytes(self.memory[off : off + _RESPONSE.size]))
        return rid, op, status


def notify_needed(old: int, new: int, event: int) -> bool:
    """``RING_PUSH_*_AND_CHECK_NOTIFY``'s test, on 32-bit values."""
    return ((new - event) & U32) < ((new - old) & U32)


def indirect_segments(pages: list[bytes], count: int) -> tuple[Segment, ...]:
    """The first ``count`` ``struct blkif_request_segment`` of an indirect request's
    pages (512 to a page)."""
    segs = []
    for i in range(count):
        page, slot = divmod(i, SEGMENTS_PER_INDIRECT_PAGE)
        if page >= len(pages):
            break
        segs.append(Segment(*_SEGMENT.unpack_from(pages[page], 8 * slot)))
    return tuple(segs)
