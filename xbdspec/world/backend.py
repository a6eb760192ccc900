"""The back end the harness plays: a RAM disk served as blkback serves it.

It reads the front end's requests from the shared ring as the front end wrote them,
through the grants the front end gave (a page the request must write has to be granted
writable), checks each against blkif.h's content rules, does the I/O on the RAM disk,
and answers with any status the protocol allows, in any order the harness picks.
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
    OP_READ,
    OP_WRITE,
    OP_WRITE_BARRIER,
    RSP_EOPNOTSUPP,
    RSP_ERROR,
    RSP_OKAY,
    U32,
    Request,
    SharedRing,
    notify_needed,
)
from .xenstore import Xenstore

SECTOR = 512


@dataclass
class BackendConfig:
    """What the back end offers and how it answers."""

    sectors: int = 64
    max_ring_page_order: int = 0
    feature_flush: bool = True
    feature_barrier: bool = False
    feature_discard: bool = False
    feature_persistent: bool = False
    max_indirect_segments: int = 0

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
class RamDiskBackend:
    """blkback over a RAM disk, driven step by step by the harness.

    Attributes:
        taken: requests consumed and not yet answered, in ring order.
        problems: what the back end found wrong with the front end's requests (a
            harness violation each).
    """

    store: Xenstore
    grants: GrantTable
    front: str
    back: str
    config: BackendConfig = field(default_factory=BackendConfig)
    on_event: Callable[[str, dict[str, object]], None] | None = None
    notify_front: Callable[[], None] | None = None
    disk: bytearray = field(default_factory=bytearray)
    ring: SharedRing | None = None
    req_cons: int = 0
    rsp_prod_pvt: int = 0
    taken: list[Served] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.disk:
            self.disk = bytearray(self.config.sectors * SECTOR)

    def _emit(self, name: str, **params: object) -> None:
        if self.on_event is not None:
            self.on_event(name, params)

    def state(self) -> int:
        return int(self.store.get(f"{self.back}/state", "0") or 0)

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
        self.store.write("backend", f"{self.back}/max-ring-page-order", str(c.max_ring_page_order))
        self.store.write("backend", f"{self.back}/state", "2")

    def frontend_changed(self) -> None:
        """blkback's frontend_changed: follow the front end's state."""
        fe = int(self.store.get(f"{self.front}/state", "0") or 0)
        be = self.state()
        if fe in (3, 4) and be in (2, 3):
            self._connect()
        elif fe == 5 and be in (1, 2, 3, 4):
            self.store.write("backend", f"{self.back}/state", "5")
        elif fe == 6 and be != 6:
            self.ring = None
            self.store.write("backend", f"{self.back}/state", "6")
        elif fe == 1 and be == 6:
            self.store.write("backend", f"{self.back}/state", "2")

    def _connect(self) -> None:
        ref = self.store.get(f"{self.front}/ring-ref")
        if (
            ref is None
            or not ref.isdigit()
            or self.store.get(f"{self.front}/event-channel") is None
        ):
            self.problems.append("the front end is Initialised without ring-ref and event-channel")
            return
        try:
            grant = self.grants.map(int(ref), writable=True)
        except GrantError as exc:
            self.problems.append(f"the ring page: {exc}")
            return
        self.ring = SharedRing(grant.page)
        self.req_cons = self.rsp_prod_pvt = 0
        c = self.config
        tid = self.store.transaction_start()
        for key, value in (
            ("feature-flush-cache", int(c.feature_flush)),
            ("feature-barrier", int(c.feature_barrier)),
            ("feature-discard", int(c.feature_discard)),
            ("feature-persistent", int(c.feature_persistent)),
            ("sectors", c.sectors),
            ("info", 0),
            ("sector-size", SECTOR),
        ):
            self.store.write("backend", f"{self.back}/{key}", str(value), tid)
        self.store.transaction_end("backend", tid)
        self.store.write("backend", f"{self.back}/state", "4")

    # ---- the ring
    def consume(self) -> int:
        """Take every published request off the ring (``RING_COPY_REQUEST``)."""
        if self.ring is None:
            return 0
        req_prod = self.ring.indexes()[0]
        count = 0
        while self.req_cons != req_prod and len(self.taken) < self.ring.size:
            req = self.ring.read_request(self.req_cons)
            self._emit("backend_consume", id=req.id, index=self.req_cons)
            self.taken.append(Served(self.req_cons, req, self._perform(req)))
            self.req_cons = (self.req_cons + 1) & U32
            count += 1
        return count

    def _perform(self, req: Request) -> int:
        broken = broken_rules(
            REQUEST_RULES,
            ContentRequest(
                req.operation,
                req.nr_segments,
                tuple((s.first_sect, s.last_sect) for s in req.segments),
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
        if req.operation in (OP_FLUSH_DISKCACHE, OP_WRITE_BARRIER, OP_DISCARD):
            if req.operation == OP_WRITE_BARRIER and not self.config.feature_barrier:
                return RSP_EOPNOTSUPP
            if req.operation != OP_WRITE_BARRIER:
                return RSP_OKAY
        if req.operation not in (OP_READ, OP_WRITE, OP_WRITE_BARRIER):
            return RSP_ERROR
        sector = req.sector_number
        for seg in req.segments:
            try:
                grant = self.grants.map(seg.gref, writable=req.operation == OP_READ)
            except GrantError as exc:
                self.problems.append(f"request {req.id}: {exc}")
                return RSP_ERROR
            try:
                length = (seg.last_sect - seg.first_sect + 1) * SECTOR
                start, page_off = sector * SECTOR, seg.first_sect * SECTOR
                if start + length > len(self.disk):
                    return RSP_ERROR
                if req.operation == OP_READ:
                    grant.page[page_off : page_off + length] = self.disk[start : start + length]
                else:
                    self.disk[start : start + length] = grant.page[page_off : page_off + length]
                sector += seg.last_sect - seg.first_sect + 1
            finally:
                self.grants.unmap(seg.gref)
        return RSP_OKAY

    def respond(self, reverse: bool = False) -> int:
        """Answer every request taken (in ring order, or the reverse: any order is
        legal), push, and notify when ``rsp_event`` asks for it; then the final check."""
        if self.ring is None:
            return 0
        order = list(reversed(self.taken)) if reverse else list(self.taken)
        self.taken.clear()
        for served in order:
            self.ring.write_response(
                self.rsp_prod_pvt, served.request.id, served.request.operation, served.status
            )
            self.rsp_prod_pvt = (self.rsp_prod_pvt + 1) & U32
            self._emit("backend_respond", id=served.request.id)
        if order:
            _, _, old, rsp_event = self.ring.indexes()
            self.ring.set_index("rsp_prod", self.rsp_prod_pvt)
            notify = notify_needed(old, self.rsp_prod_pvt, rsp_event)
            self._emit("backend_push_responses", notify=notify)
            if notify and self.notify_front is not None:
                self.notify_front()
        # RING_FINAL_CHECK_FOR_REQUESTS
        self.ring.set_index("req_event", self.req_cons + 1)
        self._emit("backend_final_check")
        return len(order)
