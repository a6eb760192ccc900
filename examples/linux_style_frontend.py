"""A small Linux-style block front end, written for the protocol-level harness as the
way to plug in an implementation (``docs/conformance.md``).

It does what Linux 6.1's ``xen-blkfront.c`` does on the wire, in a few lines each: it
negotiates on the back end's InitWait (``talk_to_blkback``), writing its keys in one
transaction and Initialised after it; connects on the back end's Connected
(``blkfront_connect``); sends every request at once, ordered writes included (no queue
freeze, no single-stepping); answers the back end's Closing with Closed directly
(``blkfront_closing``); takes responses by id in any order and ends each request's
grants as it completes it (``blkif_interrupt``, ``blkif_completion``).

``BROKEN`` names broken variants the harness must catch, each switched on by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xbdspec.world.harness import Bio, FrontendEnv
from xbdspec.world.ring import (
    OP_FLUSH_DISKCACHE,
    OP_READ,
    OP_WRITE,
    RSP_OKAY,
    U32,
    Request,
    Segment,
    SharedRing,
    notify_needed,
)

SECTOR = 512

#: The broken variants: each breaks one rule of the protocol.
BROKEN = (
    "never-publishes",  # writes requests but never moves req_prod
    "completes-twice",  # completes a request's bio twice
    "connected-too-early",  # writes Connected before the back end's Connected
    "overfills-ring",  # ignores RING_FULL
    "reuses-id",  # gives every request the same id
    "never-ends-grants",  # keeps every data grant (without feature-persistent)
    "misses-notification",  # pushes without notifying when ring.h says to
    "read-page-read-only",  # grants a READ's data page read-only to the back end
)


@dataclass
class _Shadow:
    bio: Bio
    grefs: list[int]
    page: bytearray


@dataclass
class LinuxStyleFrontend:
    """The front end; ``broken`` names the variant (empty: the correct one)."""

    env: FrontendEnv
    broken: str = ""
    state: int = 1
    ring: SharedRing | None = None
    req_prod_pvt: int = 0
    rsp_cons: int = 0
    shadows: dict[int, _Shadow] = field(default_factory=dict)
    waiting: list[Bio] = field(default_factory=list)
    next_id: int = 0
    flush: bool = False
    gave_up: bool = False

    def _state(self, value: int) -> None:
        self.state = value
        self.env.write(f"{self.env.front}/state", str(value))

    def otherend_changed(self) -> None:
        """``blkback_changed``."""
        be = int(self.env.read(f"{self.env.back}/state") or 0)
        if be == 2 and self.state == 1:
            self._talk_to_blkback()
            if self.broken == "connected-too-early":
                self._state(4)
        elif be == 4 and self.state == 3:
            self.flush = self.env.read(f"{self.env.back}/feature-flush-cache") == "1"
            self._state(4)
            self._kick()
        elif be in (5, 6) and self.state != 6:
            # Closing, or Closed unless it is Closed itself: blkfront_closing ->
            # xenbus_frontend_closed
            self._state(6)

    def _talk_to_blkback(self) -> None:
        page = self.env.alloc_page()
        self.ring = SharedRing.init(page)
        ref = self.env.grant(page, readonly=False)
        port = self.env.alloc_evtchn()  # xenbus_alloc_evtchn
        while True:
            tid = self.env.transaction_start()
            self.env.write(f"{self.env.front}/ring-ref", str(ref), tid)
            self.env.write(f"{self.env.front}/event-channel", str(port), tid)
            self.env.write(f"{self.env.front}/protocol", "x86_64-abi", tid)
            try:
                self.env.transaction_end(tid)
                break
            except Exception:  # EAGAIN: retry, as xenbus_transaction_end's callers do
                continue
        self._state(3)

    def submit(self, bio: Bio) -> None:
        """``blkif_queue_rq``."""
        self.waiting.append(bio)
        if self.state == 4 and not self.gave_up:
            self._kick()

    def _ring_full(self) -> bool:
        assert self.ring is not None
        return ((self.req_prod_pvt - self.rsp_cons) & U32) >= self.ring.size

    def _kick(self) -> None:
        assert self.ring is not None
        while self.waiting and (self.broken == "overfills-ring" or not self._ring_full()):
            self._queue(self.waiting.pop(0))
        self._flush_requests()

    def _queue(self, bio: Bio) -> None:
        assert self.ring is not None
        if bio.op == "flush" and not self.flush:
            # the back end has no cache to flush (no feature-flush-cache): nothing to send,
            # as Linux's block layer completes such a flush itself
            self.env.complete(bio.id, True, b"")
            return
        rid = 7 if self.broken == "reuses-id" else self.next_id
        self.next_id += 1
        page = self.env.alloc_page()
        grefs: list[int] = []
        segments: tuple[Segment, ...] = ()
        if bio.op == "flush":
            op = OP_FLUSH_DISKCACHE
        else:
            op = OP_READ if bio.op == "read" else OP_WRITE
            page[: len(bio.data)] = bio.data
            readonly = op == OP_WRITE or self.broken == "read-page-read-only"
            grefs.append(self.env.grant(page, readonly=readonly))
            segments = (Segment(grefs[0], 0, bio.sectors - 1),)
        self.ring.write_request(
            self.req_prod_pvt, Request(op, len(segments), rid, bio.sector, segments)
        )
        self.req_prod_pvt = (self.req_prod_pvt + 1) & U32
        self.shadows[rid] = _Shadow(bio, grefs, page)

    def _flush_requests(self) -> None:
        """``RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`` and ``notify_remote_via_irq``."""
        assert self.ring is not None
        if self.broken == "never-publishes":
            return
        old, req_event, _, _ = self.ring.indexes()
        if old == self.req_prod_pvt:
            return
        self.ring.set_index("req_prod", self.req_prod_pvt)
        if (
            notify_needed(old, self.req_prod_pvt, req_event)
            and self.broken != "misses-notification"
        ):
            self.env.notify()

    def interrupt(self) -> None:
        """``blkif_interrupt``: every response, then ``RING_FINAL_CHECK_FOR_RESPONSES``."""
        if self.ring is None or self.gave_up:
            return
        while True:
            rsp_prod = self.ring.indexes()[2]
            if ((rsp_prod - self.rsp_cons) & U32) > self.ring.size:
                # XSA-376: more responses than the ring holds; the back end is broken or
                # hostile: give the ring up (Linux disables the device) rather than read
                # slots that hold no response
                self.gave_up = True
                return
            while self.rsp_cons != rsp_prod:
                rid, _op, status = self.ring.read_response(self.rsp_cons)
                self.rsp_cons = (self.rsp_cons + 1) & U32
                shadow = self.shadows.pop(rid, None)
                if shadow is None:
                    continue  # XSA-376: an id not in flight is ignored
                self._complete(shadow, status == RSP_OKAY)
            self.ring.set_index("rsp_event", self.rsp_cons + 1)
            if self.ring.indexes()[2] == self.rsp_cons:
                break
        if self.state == 4:  # closed: the disk is dead, nothing more is sent
            self._kick()

    def _complete(self, shadow: _Shadow, ok: bool) -> None:
        if self.broken != "never-ends-grants":
            for ref in shadow.grefs:
                self.env.end_grant(ref)
        bio = shadow.bio
        data = bytes(shadow.page[: bio.sectors * SECTOR]) if bio.op == "read" else b""
        self.env.complete(bio.id, ok, data)
        if self.broken == "completes-twice":
            self.env.complete(bio.id, ok, data)

    def shutdown(self) -> None:
        self._state(5)

    def resume(self) -> None:
        """``blkfront_resume``: the old ring is gone; end every grant of the requests
        that were in flight on it (``blkif_free``), queue their bios again ahead of the
        waiting ones (``blkif_recover`` re-issues them once connected), and talk to the
        new back end at once (``talk_to_blkback``)."""
        carried = [shadow.bio for shadow in self.shadows.values()]
        for shadow in self.shadows.values():
            for ref in shadow.grefs:
                self.env.end_grant(ref)
        self.shadows.clear()
        self.waiting = carried + self.waiting
        self.ring = None
        self.gave_up = False  # a new ring, a new back end
        self.req_prod_pvt = self.rsp_cons = 0
        self.state = 1
        self._talk_to_blkback()
