"""A block back end that follows ``blkif.h``, serving a RAM disk through the grant table.

The back end publishes its features and goes to ``InitWait``; when the front end reaches
``Initialised`` it reads the transport keys (``ring-page-order``/``num-ring-pages``,
``ring-ref``/``ring-refN``, ``event-channel``, ``protocol``), maps the ring through the
grants, publishes the device properties and goes to ``Connected``.  Requests are consumed
into :attr:`Backend.pending` by :meth:`Backend.fetch`; each is answered when the test says
(:meth:`Backend.respond`), in any order, with the real outcome of the I/O or a status the
test forces.  Sector numbers are in 512-byte units (current ``blkif.h``).

Every value the back end writes can be replaced by a raw string, or removed, through
:attr:`BackendConfig.overrides`: that is how tests feed hostile values to the front end.

:attr:`BackendConfig.profile` chooses how strictly requests are checked.  The default,
``PERMISSIVE``, serves whatever it can express on the RAM disk (the seed's documented
behaviour is stated against it).  ``LINUX_BLKBACK`` refuses, with ``BLKIF_RSP_ERROR``,
what Linux 6.1's blkback refuses before it submits any I/O
(``drivers/block/xen-blkback/blkback.c``: ``dispatch_rw_block_io``,
``xen_blkbk_parse_indirect``, ``xen_vbd_translate``; Debian's ``linux-source-6.1``
6.1.192): an indirect request whose ``indirect_op`` is neither READ nor WRITE (so an
indirect WRITE_BARRIER), a read or write with no segment, more than 11 direct or 256
(``MAX_INDIRECT_SEGMENTS``) indirect segments, a segment past the page or with
``last_sect < first_sect``, a write to a read-only disk, I/O past the end of the disk, I/O
whose start sector or segment lengths are not multiples of the logical block size
(``sector-size``), a grant it cannot map; it checks the whole request before it touches
the disk, answers an operation it does not know with ``BLKIF_RSP_EOPNOTSUPP``
(``dispatch_other_io``) and echoes ``indirect_op``, not ``BLKIF_OP_INDIRECT``, in the
response (``make_response(ring, id, req_operation, ...)``).

``QEMU_QDISK`` is QEMU's qdisk (``hw/block/xen-block.c``, ``hw/block/dataplane/
xen-block.c``; :meth:`BackendConfig.qemu_qdisk` gives what it advertises: no
``feature-barrier``, no ``feature-max-indirect-segments``, ``feature-flush-cache`` 1,
``max-ring-page-order`` 4, and ``sectors``, ``info`` and ``sector-size`` written with the
features, before InitWait).  Where it differs from blkback: it knows only READ, WRITE,
FLUSH_DISKCACHE and DISCARD, so a WRITE_BARRIER or an INDIRECT request is an "unknown
operation" answered with ``BLKIF_RSP_ERROR`` (not EOPNOTSUPP); a read or write with no
segment is served (a transfer of nothing); it checks no alignment; it counts
``sector_number`` and the segments' sectors in units of the ``sector-size`` it
advertises (``request->start = sector_number * sector_size``), and it refuses to connect
(staying InitWait, the error only logged) to a front end that has not written
``feature-large-sector-size`` = 1 when that size is not 512 (``xen_block_connect``); it
echoes the ring's ``operation``; and it follows a front end's Closed from any state
(``xen_block_frontend_changed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from .cint import kernel_sscanf_int
from .constants import (
    BLKIF_MAX_SEGMENTS_PER_REQUEST,
    BLKIF_OP_DISCARD,
    BLKIF_OP_FLUSH_DISKCACHE,
    BLKIF_OP_INDIRECT,
    BLKIF_OP_READ,
    BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER,
    BLKIF_RSP_EOPNOTSUPP,
    BLKIF_RSP_ERROR,
    BLKIF_RSP_OKAY,
    PAGE_SIZE,
    VDISK_READONLY,
    XBD_MAX_SEGMENTS_PER_PAGE,
    XenbusState,
)
from .memory import KernelBuffer
from .ring import (
    BACK_RING_ATTACH,
    INDIRECT_REQUEST,
    REQUEST_HEADER,
    RESPONSE,
    RING_FINAL_CHECK_FOR_REQUESTS,
    RING_HAS_UNCONSUMED_REQUESTS,
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY,
    SEGMENT,
    BackRing,
    SharedRing,
    slot_offset,
)

if TYPE_CHECKING:
    from .platform import Platform

SECTOR = 512
#: Linux blkback's ``MAX_INDIRECT_SEGMENTS`` (``drivers/block/xen-blkback/common.h``).
LINUX_MAX_INDIRECT_SEGMENTS = 256


class BackendProfile(Enum):
    """How strictly the simulated back end checks the requests it is given."""

    #: serve whatever the RAM disk can express (the default)
    PERMISSIVE = "permissive"
    #: refuse what Linux 6.1's blkback refuses (see the module docstring)
    LINUX_BLKBACK = "linux-blkback-6.1"
    #: QEMU's qdisk (``hw/block/dataplane/xen-block.c``; see the module docstring)
    QEMU_QDISK = "qemu-qdisk"


#: Every key the back end writes under its own node (features, limits, disk properties):
#: what a fresh back end (resume on another host) no longer has.
BACKEND_KEYS: tuple[str, ...] = (
    "feature-barrier",
    "feature-flush-cache",
    "feature-max-indirect-segments",
    "max-ring-page-order",
    "max-ring-pages",
    "sectors",
    "info",
    "sector-size",
    "physical-sector-size",
)


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """What the back end advertises.

    Attributes:
        sectors: disk size in 512-byte sectors (also the RAM disk's size).
        sector_size / physical_sector_size / info: the ``Connected`` properties
            (``physical_sector_size`` ``None`` = key not written).
        barrier / flush: ``feature-barrier`` / ``feature-flush-cache`` ("1" or "0").
        max_indirect_segments, max_ring_page_order, max_ring_pages: written when not None.
        overrides: key -> raw value written instead (``None`` removes the key).
        profile: how strictly requests are checked (:class:`BackendProfile`).
    """

    sectors: int = 16384
    sector_size: int = 512
    physical_sector_size: int | None = None
    info: int = 0
    barrier: bool = True
    flush: bool = True
    max_indirect_segments: int | None = None
    max_ring_page_order: int | None = None
    max_ring_pages: int | None = None
    overrides: dict[str, str | None] = field(default_factory=dict)
    profile: BackendProfile = BackendProfile.PERMISSIVE

    @classmethod
    def qemu_qdisk(cls, **changes: object) -> BackendConfig:
        """What QEMU's qdisk advertises (``xen_block_realize``): flush, no barrier, no
        indirect segments, ``max-ring-page-order`` 4; ``changes`` override fields."""
        fields: dict[str, object] = {
            "barrier": False,
            "flush": True,
            "max_indirect_segments": None,
            "max_ring_page_order": 4,
            "profile": BackendProfile.QEMU_QDISK,
        }
        fields.update(changes)
        return cls(**fields)  # type: ignore[arg-type]

    def initwait_keys(self) -> dict[str, str | None]:
        """The keys written before ``InitWait`` (qdisk: the disk's properties too)."""
        keys: dict[str, str | None] = {
            "feature-barrier": "1" if self.barrier else "0",
            "feature-flush-cache": "1" if self.flush else "0",
        }
        if self.max_indirect_segments is not None:
            keys["feature-max-indirect-segments"] = str(self.max_indirect_segments)
        if self.max_ring_page_order is not None:
            keys["max-ring-page-order"] = str(self.max_ring_page_order)
        if self.max_ring_pages is not None:
            keys["max-ring-pages"] = str(self.max_ring_pages)
        connect = self.connected_keys_plain()
        if self.profile is BackendProfile.QEMU_QDISK:
            keys.update(self.connected_keys())
        for key, value in self.overrides.items():
            if key not in connect:
                keys[key] = value
        return keys

    def connected_keys_plain(self) -> dict[str, str | None]:
        keys: dict[str, str | None] = {
            "sectors": str(self.sectors),
            "info": str(self.info),
            "sector-size": str(self.sector_size),
        }
        if self.physical_sector_size is not None:
            keys["physical-sector-size"] = str(self.physical_sector_size)
        return keys

    def connected_keys(self) -> dict[str, str | None]:
        """The keys written before ``Connected`` (after overrides)."""
        keys = self.connected_keys_plain()
        for key, value in self.overrides.items():
            if key in keys or key in ("sectors", "info", "sector-size", "physical-sector-size"):
                keys[key] = value
        return keys


@dataclass(slots=True, eq=False)
class BackendRequest:
    """A request the back end consumed from the ring and has not answered yet.

    Attributes:
        id: the request's ``id`` (echoed in the response).
        operation: the ring operation (``BLKIF_OP_INDIRECT`` for indirect requests).
        io_op: the operation to perform (``indirect_op`` for indirect requests).
        sector_number, nr_segments, handle: as read from the ring.
        segments: ``(gref, first_sect, last_sect)`` per segment.
        malformed: why the request cannot be served (answered with ERROR), if so.
    """

    id: int
    operation: int
    io_op: int
    sector_number: int
    nr_segments: int
    handle: int
    segments: list[tuple[int, int, int]]
    malformed: str = ""


@dataclass(slots=True, eq=False)
class Backend:
    """The back end of one virtual block device (``blkback``)."""

    platform: Platform
    path: str
    front_path: str
    domid: int
    front_domid: int
    config: BackendConfig
    disk: bytearray = field(default_factory=bytearray)
    state: int = XenbusState.Initialising
    ring: BackRing | None = None
    ring_pages: int = 0
    event_channel: int = -1
    protocol: str = ""
    pending: list[BackendRequest] = field(default_factory=list)
    served: int = 0
    errors: list[str] = field(default_factory=list)
    #: why each request the strict profile refused was refused, in order
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.disk:
            self.disk = bytearray(self.config.sectors * SECTOR)

    # ------------------------------------------------------------------ xenbus side
    def _write(self, key: str, value: str | None) -> None:
        path = f"{self.path}/{key}"
        if value is None:
            self.platform.xenstore.remove(path)
        else:
            self.platform.xenstore.write(path, value)

    def set_state(self, state: int) -> None:
        """Write the back end's ``state`` key."""
        self.state = state
        self._write("state", str(int(state)))

    def start(self) -> None:
        """Publish the features and limits, then go to ``InitWait``."""
        for key, value in self.config.initwait_keys().items():
            self._write(key, value)
        self.set_state(XenbusState.InitWait)

    def reset(self, config: BackendConfig | None = None) -> None:
        """A fresh back end (resume on another host): features may differ; in-flight
        requests are gone; the state restarts at ``Initialising``."""
        if config is not None:
            self.config = config
        for key in BACKEND_KEYS:
            self.platform.xenstore.remove(f"{self.path}/{key}")
        self.ring = None
        self.pending = []
        self.set_state(XenbusState.Initialising)

    def unplug(self) -> None:
        """The tool stack asks for hot-unplug: the back end goes to ``Closing``."""
        self.set_state(XenbusState.Closing)

    def _front(self, key: str) -> str | None:
        return self.platform.xenstore.read(f"{self.front_path}/{key}")

    def _front_uint(self, key: str) -> int | None:
        text = self._front(key)
        if text is None:
            return None
        result = kernel_sscanf_int(text, "u")
        return result.value if result.returned == 1 else None

    def on_frontend_changed(self) -> None:
        """The watch on the front end's ``state`` fired: react to its current value."""
        text = self._front("state")
        result = kernel_sscanf_int(text or "", "d")
        front_state = result.value if result.returned == 1 else XenbusState.Closed
        if front_state in (XenbusState.Initialised, XenbusState.Connected):
            if self.state in (XenbusState.InitWait, XenbusState.Initialising):
                self.connect_ring()
        elif front_state == XenbusState.Closing:
            if self.state not in (XenbusState.Closing, XenbusState.Closed):
                self.set_state(XenbusState.Closing)
        elif front_state == XenbusState.Closed and (
            self.state == XenbusState.Closing or (self.qdisk and self.state != XenbusState.Closed)
        ):
            self.ring = None
            self.set_state(XenbusState.Closed)

    def _fail(self, message: str) -> None:
        self.errors.append(message)
        self.set_state(XenbusState.Closing)

    def connect_ring(self) -> None:
        """Read the transport keys, map the ring, publish the properties, ``Connected``."""
        if (
            self.qdisk
            and self.config.sector_size != SECTOR
            and self._front_uint("feature-large-sector-size") != 1
        ):
            # xen_block_connect: error_setg, reported; the back end stays where it is
            self.errors.append(f"logical_block_size != {SECTOR} not supported by frontend")
            return
        order = self._front_uint("ring-page-order")
        pages = 1 << order if order is not None and order < 16 else None
        if pages is None:
            pages = self._front_uint("num-ring-pages") or 1
        refs: list[int] = []
        if pages == 1:
            ref = self._front_uint("ring-ref")
            if ref is None:
                ref = self._front_uint("ring-ref0")
            if ref is None:
                self._fail("reading ring-ref")
                return
            refs.append(ref)
        else:
            for i in range(pages):
                ref = self._front_uint(f"ring-ref{i}")
                if ref is None:
                    self._fail(f"reading ring-ref{i}")
                    return
                refs.append(ref)
        port = self._front_uint("event-channel")
        if port is None:
            self._fail("reading event-channel")
            return
        self.protocol = self._front("protocol") or ""
        gnttab = self.platform.gnttab
        first = gnttab.map_grant(self.platform.mem, refs[0], self.domid, write=True)
        if first is None:
            self._fail("mapping ring-ref")
            return
        mem, base = first
        if base != 0:
            self._fail("ring-ref does not name the first page of the ring")
            return
        for i, ref in enumerate(refs):
            mapped = gnttab.map_grant(self.platform.mem, ref, self.domid, write=True)
            if mapped is None or mapped[0] is not mem or mapped[1] != base + i * PAGE_SIZE:
                self._fail(f"mapping ring-ref{i}")
                return
        page = KernelBuffer(mem, gnttab.frame[refs[0]], base, pages * PAGE_SIZE)
        ring = BackRing()
        BACK_RING_ATTACH(ring, SharedRing(page), pages * PAGE_SIZE)
        self.ring = ring
        self.ring_pages = pages
        self.event_channel = port
        for key, value in self.config.connected_keys().items():
            self._write(key, value)
        self.set_state(XenbusState.Connected)

    # ------------------------------------------------------------------ the data path
    def fetch(self) -> int:
        """Consume every published request into :attr:`pending`; returns how many."""
        ring = self.ring
        if ring is None or ring.sring is None:
            return 0
        count = 0
        while True:
            while RING_HAS_UNCONSUMED_REQUESTS(ring):
                self.pending.append(self._parse(ring, ring.req_cons))
                ring.req_cons = (ring.req_cons + 1) & 0xFFFF_FFFF
                count += 1
            if not RING_FINAL_CHECK_FOR_REQUESTS(ring):
                break
        return count

    def _parse(self, ring: BackRing, idx: int) -> BackendRequest:
        assert ring.sring is not None
        buf = ring.sring.buf
        offset = ring.sring.page.offset + slot_offset(ring.nr_ents, idx)
        operation = buf[offset]
        if operation == BLKIF_OP_INDIRECT:
            fields = INDIRECT_REQUEST.unpack_from(buf, offset)
            _, io_op, nr_segments, req_id, sector, handle = fields[:6]
            grefs = fields[6:]
            request = BackendRequest(req_id, operation, io_op, sector, nr_segments, handle, [])
            npages = (nr_segments + XBD_MAX_SEGMENTS_PER_PAGE - 1) // XBD_MAX_SEGMENTS_PER_PAGE
            if nr_segments == 0 or npages > len(grefs):
                request.malformed = f"indirect request with {nr_segments} segments"
                return request
            for page_index in range(npages):
                mapped = self.platform.gnttab.map_grant(
                    self.platform.mem, grefs[page_index], self.domid, write=False
                )
                if mapped is None:
                    request.malformed = f"cannot map indirect page {page_index}"
                    return request
                mem, base = mapped
                in_page = min(
                    XBD_MAX_SEGMENTS_PER_PAGE, nr_segments - page_index * XBD_MAX_SEGMENTS_PER_PAGE
                )
                for k in range(in_page):
                    request.segments.append(SEGMENT.unpack_from(mem, base + 8 * k))
            return request
        _, nr_segments, handle, req_id, sector = REQUEST_HEADER.unpack_from(buf, offset)
        request = BackendRequest(req_id, operation, operation, sector, nr_segments, handle, [])
        if nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST:
            request.malformed = f"direct request with {nr_segments} segments"
            return request
        base = offset + REQUEST_HEADER.size
        unpack = SEGMENT.unpack_from
        request.segments = [unpack(buf, base + 8 * k) for k in range(nr_segments)]
        return request

    @property
    def strict(self) -> bool:
        """Is the ``LINUX_BLKBACK`` profile on?"""
        return self.config.profile is BackendProfile.LINUX_BLKBACK

    @property
    def qdisk(self) -> bool:
        """Is the ``QEMU_QDISK`` profile on?"""
        return self.config.profile is BackendProfile.QEMU_QDISK

    def _qdisk_refusal(self, request: BackendRequest) -> str:
        """Why QEMU's qdisk answers ``request`` with ``BLKIF_RSP_ERROR`` before any I/O
        (``xen_block_parse_request``, in its order), or ``""``."""
        op = request.operation
        if op not in (BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_DISCARD):
            return f"unknown operation ({op})"
        if op == BLKIF_OP_DISCARD or (op == BLKIF_OP_FLUSH_DISKCACHE and not request.nr_segments):
            return ""
        if op != BLKIF_OP_READ and self.config.info & VDISK_READONLY:
            return "write req for ro device"
        if request.nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST or request.malformed:
            return "nr_segments too big"
        unit = self.config.sector_size
        size = 0
        for _, first, last in request.segments:
            if first > last:
                return "first > last sector"
            if last * unit >= PAGE_SIZE:
                return "page crossing"
            size += (last - first + 1) * unit
        if request.sector_number * unit + size > self.config.sectors * SECTOR:
            return "access beyond end of file"
        return ""

    def _perform_qdisk(self, request: BackendRequest) -> int:
        """``_perform`` under the ``QEMU_QDISK`` profile (sectors in ``sector-size`` units)."""
        reason = self._qdisk_refusal(request)
        if reason:
            self.refused.append(reason)
            return BLKIF_RSP_ERROR
        op = request.operation
        if op == BLKIF_OP_DISCARD:
            return BLKIF_RSP_OKAY  # not modelled: the RAM disk keeps its bytes
        reading = op == BLKIF_OP_READ
        unit = self.config.sector_size
        position = request.sector_number * unit
        for gref, first, last in request.segments:
            mapped = self.platform.gnttab.map_grant(
                self.platform.mem, gref, self.domid, write=reading
            )
            if mapped is None:
                self.refused.append(f"failed to copy data (grant {gref})")
                return BLKIF_RSP_ERROR
            mem, base = mapped
            start, nbytes = base + first * unit, (last - first + 1) * unit
            if reading:
                mem[start : start + nbytes] = self.disk[position : position + nbytes]
            else:
                self.disk[position : position + nbytes] = mem[start : start + nbytes]
            position += nbytes
        return BLKIF_RSP_OKAY

    def _logical_block_sectors(self) -> int:
        """``bdev_logical_block_size(bdev) >> 9``: the advertised ``sector-size`` in
        512-byte units (a real block device's is a power of two of at least 512; any
        other configured value, a hostile advertisement, checks against 512)."""
        size = self.config.sector_size
        if size >= SECTOR and size & (size - 1) == 0:
            return size // SECTOR
        return 1

    def _linux_refusal(self, request: BackendRequest) -> str:
        """Why Linux 6.1's blkback answers ``request`` with ``BLKIF_RSP_ERROR`` before any
        I/O (``dispatch_rw_block_io``, in its order), or ``""``."""
        op = request.io_op
        indirect = request.operation == BLKIF_OP_INDIRECT
        if indirect and op not in (BLKIF_OP_READ, BLKIF_OP_WRITE):
            return f"invalid indirect operation ({op})"
        nseg = request.nr_segments
        preflush = op in (BLKIF_OP_WRITE_BARRIER, BLKIF_OP_FLUSH_DISKCACHE)
        if (
            (nseg == 0 and not preflush)
            or (not indirect and nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST)
            or (indirect and nseg > LINUX_MAX_INDIRECT_SEGMENTS)
        ):
            return f"bad number of segments in request ({nseg})"
        if request.malformed:
            return request.malformed  # an indirect page it cannot map
        nr_sects = 0
        for _, first, last in request.segments:
            if last >= PAGE_SIZE // SECTOR or last < first:
                return f"segment [{first}, {last}] outside the page"
            nr_sects += last - first + 1
        if op != BLKIF_OP_READ and self.config.info & VDISK_READONLY:
            return "write to a read-only disk"
        end = request.sector_number + nr_sects
        if nr_sects and end > self.config.sectors:
            return f"access beyond the disk: [{request.sector_number}, {end})"
        mask = self._logical_block_sectors() - 1
        start = request.sector_number & 0xFFFF_FFFF  # (int)preq.sector_number
        for _, first, last in request.segments:
            if (start | (last - first + 1)) & mask:
                return "misaligned I/O request"
        return ""

    def _perform(self, request: BackendRequest) -> int:
        """Do the I/O of ``request`` against the RAM disk; the blkif status."""
        if self.strict:
            return self._perform_strict(request)
        if self.qdisk:
            return self._perform_qdisk(request)
        if request.malformed:
            return BLKIF_RSP_ERROR
        op = request.io_op
        if op == BLKIF_OP_FLUSH_DISKCACHE:
            return BLKIF_RSP_OKAY if self.config.flush else BLKIF_RSP_EOPNOTSUPP
        if op == BLKIF_OP_WRITE_BARRIER:
            if not self.config.barrier:
                return BLKIF_RSP_EOPNOTSUPP
        elif op not in (BLKIF_OP_READ, BLKIF_OP_WRITE):
            return BLKIF_RSP_ERROR
        reading = op == BLKIF_OP_READ
        disk = self.disk
        position = request.sector_number * SECTOR
        map_grant = self.platform.gnttab.map_grant
        mem_table = self.platform.mem
        for gref, first, last in request.segments:
            if last < first or last > 7:
                return BLKIF_RSP_ERROR
            nbytes = (last - first + 1) * SECTOR
            if position + nbytes > len(disk):
                return BLKIF_RSP_ERROR
            mapped = map_grant(mem_table, gref, self.domid, write=reading)
            if mapped is None:
                return BLKIF_RSP_ERROR
            mem, base = mapped
            start = base + first * SECTOR
            if reading:
                mem[start : start + nbytes] = disk[position : position + nbytes]
            else:
                disk[position : position + nbytes] = mem[start : start + nbytes]
            position += nbytes
        return BLKIF_RSP_OKAY

    def _perform_strict(self, request: BackendRequest) -> int:
        """``_perform`` under the ``LINUX_BLKBACK`` profile: the whole request is checked,
        and every grant mapped, before the disk is touched."""
        op = request.io_op
        if request.operation != BLKIF_OP_INDIRECT and op not in (
            BLKIF_OP_READ,
            BLKIF_OP_WRITE,
            BLKIF_OP_WRITE_BARRIER,
            BLKIF_OP_FLUSH_DISKCACHE,
        ):
            # dispatch_other_io (BLKIF_OP_DISCARD: no feature-discard advertised)
            self.refused.append(f"operation {op} not supported")
            return BLKIF_RSP_EOPNOTSUPP
        reason = self._linux_refusal(request)
        if reason:
            self.refused.append(reason)
            return BLKIF_RSP_ERROR
        reading = op == BLKIF_OP_READ
        mapped_segments: list[tuple[bytearray, int, int]] = []
        for gref, first, last in request.segments:
            mapped = self.platform.gnttab.map_grant(
                self.platform.mem, gref, self.domid, write=reading
            )
            if mapped is None:
                self.refused.append(f"cannot map grant {gref}")
                return BLKIF_RSP_ERROR
            mem, base = mapped
            mapped_segments.append((mem, base + first * SECTOR, (last - first + 1) * SECTOR))
        if op == BLKIF_OP_FLUSH_DISKCACHE and not self.config.flush:
            return BLKIF_RSP_EOPNOTSUPP
        if op == BLKIF_OP_WRITE_BARRIER and not self.config.barrier:
            return BLKIF_RSP_EOPNOTSUPP
        disk = self.disk
        position = request.sector_number * SECTOR
        for mem, start, nbytes in mapped_segments:
            if reading:
                mem[start : start + nbytes] = disk[position : position + nbytes]
            else:
                disk[position : position + nbytes] = mem[start : start + nbytes]
            position += nbytes
        return BLKIF_RSP_OKAY

    def _response_operation(self, request: BackendRequest) -> int:
        """The ``operation`` echoed in the response: the ring operation, or (Linux)
        ``indirect_op`` for an indirect request."""
        return request.io_op if self.strict else request.operation

    def respond(self, request: BackendRequest, status: int | None = None, push: bool = True) -> int:
        """Answer ``request`` (performing it unless ``status`` is forced); returns status."""
        if request in self.pending:
            self.pending.remove(request)
        if status is None:
            status = self._perform(request)
        self.served += 1
        self.write_response(request.id, self._response_operation(request), status)
        if push:
            self.push()
        return status

    def write_response(self, req_id: int, operation: int, status: int) -> None:
        """Put a response in the next slot (no push): also how a hostile back end lies."""
        ring = self.ring
        if ring is None or ring.sring is None:
            return
        offset = ring.sring.page.offset + slot_offset(ring.nr_ents, ring.rsp_prod_pvt)
        RESPONSE.pack_into(
            ring.sring.buf, offset, req_id & 0xFFFF_FFFF_FFFF_FFFF, operation & 0xFF, status
        )
        ring.rsp_prod_pvt = (ring.rsp_prod_pvt + 1) & 0xFFFF_FFFF

    def push(self) -> bool:
        """Publish responses; notify the front end if it asked (``rsp_event``)."""
        ring = self.ring
        if ring is None or ring.sring is None:
            return False
        notify = RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(ring)
        if notify:
            self.platform.evtchn.notify_frontend()
        return notify

    def respond_all(self, order: list[int] | None = None) -> int:
        """Answer every pending request (in ``order`` of indices if given); one push."""
        pending = self.pending
        if order is not None:
            pending = [pending[i] for i in order]
        self.pending = []
        perform = self._perform
        write_response = self.write_response
        operation = self._response_operation
        for request in pending:
            self.served += 1
            write_response(request.id, operation(request), perform(request))
        if pending:
            self.push()
        return len(pending)
