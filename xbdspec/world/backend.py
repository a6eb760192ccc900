"""The back end the harness plays: a RAM disk served as blkback or QEMU's qdisk serves it.

It reads the front end's requests from the shared ring as the front end wrote them,
through the grants the front end gave (a page the request must write has to be granted
writable), checks each against blkif.h's content rules, does the I/O on the RAM disk,
and answers with any status the protocol allows, in any order the harness picks.

:attr:`BackendConfig.profile` says whose behaviour it has where real back ends differ
(both are what blkif.h allows; a front end must cope with either):

``blkback`` (:data:`BLKBACK`), Linux 6.1's ``drivers/block/xen-blkback`` (Debian's
``linux-source-6.1``): features and the device's properties written in one transaction
just before Connected (``connect``); a read or write with no segment answered
``BLKIF_RSP_ERROR`` ("bad number of segments", ``dispatch_rw_block_io``); a flush or
barrier the device refuses answered ``BLKIF_RSP_EOPNOTSUPP`` and the feature key
rewritten to 0 (``end_block_io_op``: ``xen_blkbk_flush_diskcache(XBT_NIL, be, 0)``,
``xen_blkbk_barrier(XBT_NIL, be, 0)``); an indirect request answered with its
``indirect_op`` (``make_response(ring, id, pending_req->operation, ...)``).

``qdisk`` (:data:`QDISK`), QEMU's ``hw/block/xen-block.c`` and
``hw/block/dataplane/xen-block.c``, as ``reference/backend.py``'s ``QEMU_QDISK`` profile
reads them: ``feature-flush-cache`` 1, no ``feature-barrier``, no
``feature-max-indirect-segments``, no ``feature-persistent``, and ``sectors``, ``info``
and ``sector-size`` written with the features before InitWait (``xen_block_realize``);
only READ, WRITE, FLUSH_DISKCACHE and DISCARD known, any other operation (a
WRITE_BARRIER, an INDIRECT request) an "unknown operation" answered
``BLKIF_RSP_ERROR`` (``xen_block_parse_request``); a read or write with no segment
served (a transfer of nothing); a failed flush answered ``BLKIF_RSP_ERROR`` (qdisk has
no EOPNOTSUPP) with no key rewritten; the response's ``operation`` copied from the
request.  Both follow the front end's state alike (reconnect on Initialising after
Closed, Closing, Closed from any state: blkback's ``frontend_changed``, QEMU's
``xen_block_frontend_changed`` and ``xen_device_frontend_changed``).

Besides, either back end may leave the ring at any time (:meth:`RamDiskBackend.close`:
Closed directly, which xenbus.h's states allow) or lose its directory (the tool stack
or a driver domain going away); the harness's environment events do that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from xbdspec.model.protocol.content import REQUEST_RULES, Offers, broken_rules
from xbdspec.model.protocol.content import Request as ContentRequest

from .grants import GrantError, GrantTable
from .ring import (
    OP_DISCARD,
    OP_FLUSH_DISKCACHE,
    OP_INDIRECT,
    OP_READ,
    OP_WRITE,
    OP_WRITE_BARRIER,
    RSP_EOPNOTSUPP,
    RSP_ERROR,
    RSP_OKAY,
    U32,
    Request,
    Segment,
    SharedRing,
    indirect_segments,
    notify_needed,
)
from .xenstore import Xenstore

SECTOR = 512
#: ``VDISK_READONLY`` (blkif.h): the disk cannot be written
VDISK_READONLY = 0x4
#: Linux 6.1's blkback (see the module docstring).
BLKBACK = "blkback"
#: QEMU's qdisk (see the module docstring).
QDISK = "qdisk"
PROFILES = (BLKBACK, QDISK)


@dataclass
class BackendConfig:
    """What the back end offers and how it answers.

    ``profile`` is :data:`BLKBACK` or :data:`QDISK`; under ``qdisk`` the features are
    what QEMU advertises whatever the other fields say (``feature-flush-cache`` 1; no
    ``feature-barrier``, indirect segments or ``feature-persistent``), and responses
    copy the request's ``operation``; a flush the device refuses (``eopnotsupp_flush``)
    is a failed one there (``error_flush``: qdisk has no EOPNOTSUPP).  The ring order,
    queues, discard and the other answers forced stay as given."""

    #: whose behaviour the back end has where real back ends differ (:data:`PROFILES`)
    profile: str = BLKBACK
    sectors: int = 64
    #: the ``info`` key (``VDISK_*`` bits); with ``VDISK_READONLY`` both profiles refuse
    #: what would write the disk with BLKIF_RSP_ERROR (blkback's ``xen_vbd_translate``:
    #: any operation but a read, an empty flush and a discard included; qdisk's "write
    #: req for ro device": not a discard nor an empty flush, which it answers before)
    info: int = 0
    max_ring_page_order: int = 0
    max_queues: int = 1
    feature_flush: bool = True
    feature_barrier: bool = False
    feature_discard: bool = False
    feature_persistent: bool = False
    max_indirect_segments: int = 0
    #: answer an indirect request with ``operation`` = BLKIF_OP_INDIRECT, copied from the
    #: request as blkif.h's comment says ("copied from request"), instead of its
    #: ``indirect_op`` as Linux's blkback does
    echo_indirect_op: bool = False
    #: answer every BLKIF_OP_FLUSH_DISKCACHE / WRITE_BARRIER / DISCARD request with
    #: BLKIF_RSP_EOPNOTSUPP, without performing it (blkif.h: "Requests of this type may
    #: still be returned at any time with the BLKIF_RSP_EOPNOTSUPP result code"); blkback
    #: does so when the device below refuses the operation
    eopnotsupp_flush: bool = False
    eopnotsupp_barrier: bool = False
    eopnotsupp_discard: bool = False
    #: answer every empty BLKIF_OP_FLUSH_DISKCACHE with BLKIF_RSP_ERROR: the device failed
    #: to write its cache back (blkback: the flush bio ended with an I/O error)
    error_flush: bool = False

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(
                f"no back-end profile {self.profile!r}; profiles: {', '.join(PROFILES)}"
            )
        if self.profile == QDISK:
            # xen_block_realize writes feature-flush-cache 1 and none of the others;
            # qdisk echoes the operation
            self.feature_flush = True
            self.feature_barrier = False
            self.feature_persistent = False
            self.max_indirect_segments = 0
            self.echo_indirect_op = True
            if self.eopnotsupp_flush:
                # qdisk has no EOPNOTSUPP: a flush the device refuses is a failed one
                self.eopnotsupp_flush = False
                self.error_flush = True

    @property
    def qdisk(self) -> bool:
        """Whether the back end behaves as QEMU's qdisk."""
        return self.profile == QDISK

    def offers(self) -> Offers:
        return Offers(
            barrier=self.feature_barrier,
            flush=self.feature_flush,
            discard=self.feature_discard,
            max_indirect_segments=self.max_indirect_segments,
        )


@dataclass
class Served:
    """A request the back end took, with what it read."""

    index: int
    request: Request
    status: int = RSP_OKAY


@dataclass
class BackRing:
    """One queue's ring as the back end maps it (``struct xen_blkif_ring``).

    Attributes:
        queue: the queue's number (0 with one queue).
        refs: the grants of its pages, mapped while the ring is connected.
        port: its ``event-channel``.
        taken: requests consumed and not yet answered, in ring order.
    """

    queue: int
    ring: SharedRing
    refs: tuple[int, ...]
    port: int
    req_cons: int = 0
    rsp_prod_pvt: int = 0
    taken: list[Served] = field(default_factory=list)
    #: the back end misbehaved on it (:meth:`RamDiskBackend.hostile`): served no more
    broken: bool = False


@dataclass
class RamDiskBackend:
    """blkback over a RAM disk, driven step by step by the harness.

    It offers ``max-ring-page-order`` and ``multi-queue-max-queues``, and connects to what
    the front end published (``connect_ring``/``read_per_ring_refs``): ``ring-page-order``
    or ``num-ring-pages``, ``ring-ref`` (one page) or ``ring-ref0..N``, at the top level
    for one queue or under ``queue-N/`` for ``multi-queue-num-queues`` = N > 1.

    Attributes:
        rings: the connected rings, one per queue (empty when not connected).
        problems: what the back end found wrong with the front end's requests (a
            harness violation each).
    """

    store: Xenstore
    grants: GrantTable
    front: str
    back: str
    config: BackendConfig = field(default_factory=BackendConfig)
    on_event: Callable[[str, dict[str, object]], None] | None = None
    notify_front: Callable[[int], None] | None = None
    disk: bytearray = field(default_factory=bytearray)
    rings: list[BackRing] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: what the last read request performed read from the disk
    last_read: bytes = b""
    #: the last responses written, ``(id, operation)`` (a hostile duplicate's source)
    answered: list[tuple[int, int]] = field(default_factory=list)
    #: ids a hostile duplicate answered again (a front end may have reused them since)
    repeated: tuple[int, ...] = ()
    #: ring indexes (queue 0) of forged responses written into slots the front end had
    #: not filled: its next request there overwrites the response, so the response it
    #: reads at that index is its own request's bytes, which may name a request in flight
    forged_ahead: tuple[int, ...] = ()
    #: its directory was removed: it does nothing more
    removed: bool = False

    def __post_init__(self) -> None:
        if not self.disk:
            self.disk = bytearray(self.config.sectors * SECTOR)

    @property
    def ring(self) -> SharedRing | None:
        """Queue 0's ring."""
        return self.rings[0].ring if self.rings else None

    @property
    def taken(self) -> list[Served]:
        return [s for r in self.rings for s in r.taken]

    def _emit(self, name: str, **params: object) -> None:
        if self.on_event is not None:
            self.on_event(name, params)

    def state(self) -> int:
        # xenbus_read_driver_state: XenbusStateUnknown (0) when it is not a number
        return _decimal(self.store.get(f"{self.back}/state")) or 0

    # ---- the handshake
    def probe(self) -> None:
        """xen_blkbk_probe: limits and features, then InitWait (separate writes)."""
        c = self.config
        if c.max_indirect_segments:
            self.store.write(
                "backend",
                f"{self.back}/feature-max-indirect-segments",
                str(c.max_indirect_segments),
            )
        if c.max_queues > 1:
            self.store.write("backend", f"{self.back}/multi-queue-max-queues", str(c.max_queues))
        self.store.write("backend", f"{self.back}/max-ring-page-order", str(c.max_ring_page_order))
        if c.qdisk:
            # xen_block_realize: the features and the device's properties, before
            # InitWait (xen_device_backend_printf, one write each)
            for key, value in self._features_and_properties():
                self.store.write("backend", f"{self.back}/{key}", str(value))
        self.store.write("backend", f"{self.back}/state", "2")

    def _features_and_properties(self) -> list[tuple[str, int]]:
        """The keys ``connect`` (blkback) or ``xen_block_realize`` (qdisk) writes."""
        c = self.config
        keys: list[tuple[str, int]] = [("feature-flush-cache", int(c.feature_flush))]
        if not c.qdisk:
            keys.append(("feature-barrier", int(c.feature_barrier)))
        keys.append(("feature-discard", int(c.feature_discard)))
        if c.feature_discard:
            # the device's discard granularity and alignment
            keys += [("discard-granularity", SECTOR), ("discard-alignment", 0)]
        if not c.qdisk:
            keys.append(("feature-persistent", int(c.feature_persistent)))
        keys += [("sectors", c.sectors), ("info", c.info), ("sector-size", SECTOR)]
        return keys

    def frontend_changed(self) -> None:
        """blkback's frontend_changed (qdisk's xen_block_frontend_changed alike):
        follow the front end's state."""
        if self.removed:
            return
        raw = self.store.get(f"{self.front}/state")
        fe = _decimal(raw)
        if fe is None:
            if raw is not None:
                self.problems.append(f"the front end's state = {raw[:40]!r} is not a number")
            fe = 0
        be = self.state()
        if fe in (3, 4) and be in (2, 3):
            self._connect()
        elif fe == 5 and be in (1, 2, 3, 4):
            self.store.write("backend", f"{self.back}/state", "5")
        elif fe == 6 and be != 6:
            self.disconnect()
            self.store.write("backend", f"{self.back}/state", "6")
        elif fe == 1 and be == 6:
            self.store.write("backend", f"{self.back}/state", "2")

    def disconnect(self) -> None:
        """``xen_blkif_disconnect``: unmap every ring."""
        for r in self.rings:
            for ref in r.refs:
                self.grants.unmap(ref)
        self.rings = []

    def close(self) -> None:
        """The back end leaves the ring and goes to Closed directly, from wherever it
        is (xenbus.h's states allow it; a back end torn down on an error it cannot
        report, or whose device went away): what it took is never answered."""
        self.disconnect()
        self.store.write("backend", f"{self.back}/state", "6")

    def _number(self, key: str) -> int | None:
        value = self.store.get(f"{self.front}/{key}")
        if value is None:
            return None
        number = _decimal(value)
        if number is None:
            self.problems.append(f"the front end's {key} = {value[:40]!r} is not a number")
        return number

    def _transport(self) -> tuple[int, int] | None:
        """``connect_ring``: the ring order and the queue count published."""
        c = self.config
        queues = self._number("multi-queue-num-queues") or 1
        if queues > max(c.max_queues, 1):
            self.problems.append(
                f"the front end asks for {queues} queues; the back end offers {c.max_queues}"
            )
            return None
        order = self._number("ring-page-order")
        pages = self._number("num-ring-pages")
        if order is None and pages is not None:
            if pages & (pages - 1) or pages == 0:
                self.problems.append(f"num-ring-pages = {pages} is not a power of two")
                return None
            order = pages.bit_length() - 1
        order = order or 0
        if order > c.max_ring_page_order:
            self.problems.append(
                f"the front end's ring-page-order {order} is above the back end's "
                f"max-ring-page-order {c.max_ring_page_order}"
            )
            return None
        return order, queues

    def _connect(self) -> None:
        transport = self._transport()
        if transport is None:
            return
        order, queues = transport
        rings: list[BackRing] = []
        for q in range(queues):
            prefix = f"{self.front}/" + ("" if queues == 1 else f"queue-{q}/")
            keys = ["ring-ref"] if order == 0 else [f"ring-ref{i}" for i in range(1 << order)]
            values = [self.store.get(prefix + k) for k in keys]
            port = self.store.get(prefix + "event-channel")
            if any(_decimal(v) is None for v in values) or port is None:
                self.problems.append(
                    f"the front end is Initialised without {prefix}{keys[0]}.. and event-channel"
                )
                break
            pages = []
            refs: list[int] = []
            try:
                for v in values:
                    assert v is not None
                    pages.append(self.grants.map(int(v), writable=True).page)
                    refs.append(int(v))
            except GrantError as exc:
                for ref in refs:
                    self.grants.unmap(ref)
                self.problems.append(f"queue {q}'s ring page: {exc}")
                break
            port_number = _decimal(port)
            port_number = -1 if port_number is None else port_number
            rings.append(BackRing(q, SharedRing(pages, order), tuple(refs), port_number))
        if len(rings) != queues:
            for r in rings:
                for ref in r.refs:
                    self.grants.unmap(ref)
            return
        self.disconnect()
        self.rings = rings
        if not self.config.qdisk:
            # blkback's connect: features and properties in one transaction
            tid = self.store.transaction_start()
            for key, value in self._features_and_properties():
                self.store.write("backend", f"{self.back}/{key}", str(value), tid)
            self.store.transaction_end("backend", tid)
        self.store.write("backend", f"{self.back}/state", "4")

    def queue_of_port(self, port: int) -> int | None:
        return next((r.queue for r in self.rings if r.port == port), None)

    # ---- the ring
    def consume(self) -> int:
        """Take every published request off every ring (``RING_COPY_REQUEST``)."""
        count = 0
        for r in self.rings:
            if r.broken:
                continue
            req_prod = r.ring.indexes()[0]
            while r.req_cons != req_prod and len(r.taken) < r.ring.size:
                req = r.ring.read_request(r.req_cons)
                self._emit("backend_consume", id=req.id, index=r.req_cons, queue=r.queue)
                self.last_read = b""
                r.taken.append(Served(r.req_cons, req, self._perform(req)))
                if self.last_read:
                    self._emit("backend_read", id=req.id, queue=r.queue, data=self.last_read)
                r.req_cons = (r.req_cons + 1) & U32
                count += 1
        return count

    def segments(self, req: Request, mapped: bool = False) -> tuple[Segment, ...] | None:
        """The request's segments: its own, or those of its indirect pages, read through
        their grants (None when a grant does not allow it; the problem is recorded when
        ``mapped``, the back end's own reading)."""
        if req.operation != OP_INDIRECT:
            return req.segments
        pages: list[bytes] = []
        for ref in req.indirect_grefs:
            if mapped:
                try:
                    pages.append(bytes(self.grants.map(ref, writable=False).page))
                except GrantError as exc:
                    self.problems.append(f"request {req.id}'s indirect page: {exc}")
                    return None
                self.grants.unmap(ref)
            else:
                grant = self.grants.grants.get(ref)
                if grant is None:
                    return None
                pages.append(bytes(grant.page))
        return indirect_segments(pages, req.nr_segments)

    def _perform(self, req: Request) -> int:
        segments = self.segments(req, mapped=True)
        if segments is None:
            return RSP_ERROR
        broken = broken_rules(
            REQUEST_RULES,
            ContentRequest(
                req.operation,
                req.nr_segments,
                tuple((s.first_sect, s.last_sect) for s in segments),
                req.indirect_op,
                len(req.indirect_grefs),
            ),
            self.config.offers(),
        )
        if broken:
            self.problems.append(
                f"request {req.id} breaks " + ", ".join(f"{r.name} ({r.doc})" for r in broken)
            )
            return RSP_ERROR
        op = req.indirect_op if req.operation == OP_INDIRECT else req.operation
        c = self.config
        if c.qdisk and req.operation not in (OP_READ, OP_WRITE, OP_FLUSH_DISKCACHE, OP_DISCARD):
            return RSP_ERROR  # xen_block_parse_request: "unknown operation"
        if not c.qdisk and op in (OP_READ, OP_WRITE) and not segments:
            return RSP_ERROR  # dispatch_rw_block_io: "bad number of segments in request"
        if c.info & VDISK_READONLY and op != OP_READ:
            if not c.qdisk:
                return RSP_ERROR  # xen_vbd_translate(.., REQ_OP_WRITE): "access denied"
            if c.qdisk and op != OP_DISCARD and (op != OP_FLUSH_DISKCACHE or segments):
                return RSP_ERROR  # xen_block_parse_request: "write req for ro device"
        refused = {
            OP_FLUSH_DISKCACHE: c.eopnotsupp_flush or not c.feature_flush,
            OP_WRITE_BARRIER: c.eopnotsupp_barrier or not c.feature_barrier,
            OP_DISCARD: c.eopnotsupp_discard or not c.feature_discard,
        }
        if refused.get(op, False):
            # not performed: a flush's or barrier's data not written
            if c.qdisk:
                return RSP_ERROR  # qdisk: the flush failed; it has no EOPNOTSUPP
            feature = {
                OP_FLUSH_DISKCACHE: "feature-flush-cache",
                OP_WRITE_BARRIER: "feature-barrier",
            }
            if op in feature and self.store.get(f"{self.back}/{feature[op]}") == "1":
                # end_block_io_op: xen_blkbk_flush_diskcache / xen_blkbk_barrier(.., 0)
                self.store.write("backend", f"{self.back}/{feature[op]}", "0")
            return RSP_EOPNOTSUPP
        if op == OP_FLUSH_DISKCACHE and c.error_flush and not segments:
            return RSP_ERROR
        if op == OP_DISCARD:
            return RSP_OKAY  # what a discarded sector reads afterwards is unspecified
        if op not in (OP_READ, OP_WRITE, OP_WRITE_BARRIER, OP_FLUSH_DISKCACHE):
            return RSP_ERROR
        # a flush or a barrier with segments carries a write (blkback: REQ_OP_WRITE with
        # REQ_PREFLUSH; Linux sends a FUA write so); an empty one has nothing to write
        sector = req.sector_number
        for seg in segments:
            try:
                grant = self.grants.map(seg.gref, writable=op == OP_READ)
            except GrantError as exc:
                self.problems.append(f"request {req.id}: {exc}")
                return RSP_ERROR
            try:
                length = (seg.last_sect - seg.first_sect + 1) * SECTOR
                start, page_off = sector * SECTOR, seg.first_sect * SECTOR
                if start + length > len(self.disk):
                    return RSP_ERROR
                if op == OP_READ:
                    grant.page[page_off : page_off + length] = self.disk[start : start + length]
                    self.last_read += bytes(self.disk[start : start + length])
                else:
                    self.disk[start : start + length] = grant.page[page_off : page_off + length]
                sector += seg.last_sect - seg.first_sect + 1
            finally:
                self.grants.unmap(seg.gref)
        return RSP_OKAY

    def hostile(self, kind: str, in_flight: frozenset[int] = frozenset()) -> tuple[int, ...] | None:
        """Misbehave on queue 0's ring as a hostile or broken back end may (the cases
        Linux's XSA-376 checks guard against), and notify: ``unknown-id``, a response
        naming no request; ``duplicate``, a request answered a second time;
        ``wrong-op``, a taken request answered with another operation;
        ``overrun``, ``rsp_prod`` moved past every request the front end pushed.
        The ids of the requests in flight it answered (with the wrong operation: the
        request was performed); None when it did nothing (no ring connected, nothing to
        answer twice or to take)."""
        if not self.rings:
            return None
        r = self.rings[0]
        answered: tuple[int, ...] = ()
        if kind == "overrun":
            r.rsp_prod_pvt = (r.rsp_prod_pvt + r.ring.size + 3) & U32
        else:
            if kind == "unknown-id":
                rid, op = 0xDEAD_BEEF_0BAD, OP_READ
            elif kind == "duplicate" and any(a not in in_flight for a, _ in self.answered):
                # an id answered before and not in flight again (a reused id's second
                # answer is indistinguishable from the first answer to its new request)
                rid, op = next(x for x in reversed(self.answered) if x[0] not in in_flight)
                self.repeated = (*self.repeated, rid)
            elif kind == "wrong-op" and (r.taken or self.consume()) and r.taken:
                served = r.taken.pop(0)
                rid = served.request.id
                op = OP_DISCARD if served.request.operation != OP_DISCARD else OP_READ
                answered = (rid,)
            else:
                return None
            req_prod = r.ring.indexes()[0]
            if kind != "wrong-op" and (r.rsp_prod_pvt - req_prod) & U32 < 1 << 31:
                # at or past req_prod: a slot that holds no request yet (ring.h: requests
                # and responses share each slot, the union of blkif.h's two structs)
                self.forged_ahead = (*self.forged_ahead, r.rsp_prod_pvt)
            r.ring.write_response(r.rsp_prod_pvt, rid, op, RSP_OKAY)
            r.rsp_prod_pvt = (r.rsp_prod_pvt + 1) & U32
        r.ring.set_index("rsp_prod", r.rsp_prod_pvt)
        # a response written over slots the front end may have filled since: the ring
        # is no longer one the back end can serve; it stops (its requests go unanswered)
        r.broken = True
        r.taken.clear()
        if self.notify_front is not None:
            self.notify_front(r.queue)
        return answered

    def respond(self, reverse: bool = False) -> int:
        """Answer every request taken on every ring (in ring order, or the reverse: any
        order is legal), push, and notify each ring's event channel when its
        ``rsp_event`` asks for it; then the final check."""
        count = 0
        for r in self.rings:
            order = list(reversed(r.taken)) if reverse else list(r.taken)
            r.taken.clear()
            for served in order:
                req = served.request
                op = req.operation
                if op == OP_INDIRECT and not self.config.echo_indirect_op:
                    op = req.indirect_op  # blkback's pending_req->operation
                r.ring.write_response(r.rsp_prod_pvt, req.id, op, served.status)
                self.answered = [*self.answered[-63:], (req.id, op)]
                r.rsp_prod_pvt = (r.rsp_prod_pvt + 1) & U32
                self._emit(
                    "backend_respond", id=served.request.id, queue=r.queue, status=served.status
                )
            if not order:
                continue
            _, _, old, rsp_event = r.ring.indexes()
            r.ring.set_index("rsp_prod", r.rsp_prod_pvt)
            notify = notify_needed(old, r.rsp_prod_pvt, rsp_event)
            self._emit("backend_push_responses", notify=notify, queue=r.queue)
            if notify and self.notify_front is not None:
                self.notify_front(r.queue)
            # RING_FINAL_CHECK_FOR_REQUESTS
            r.ring.set_index("req_event", r.req_cons + 1)
            self._emit("backend_final_check", queue=r.queue)
            count += len(order)
        return count


def _decimal(value: str | None) -> int | None:
    """``value`` as xenstore's unsigned decimal (ASCII digits, at most 20 of them), or
    None: a node the other end wrote is untrusted ('²' is a digit to ``str.isdigit``
    and no number to ``int``)."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 20:
        return None
    return int(value)
