"""The protocol-level harness: a front end's whole world, and the protocol model
watching it.

The implementation under test is a front end.  It sees only what a front end sees
(:class:`FrontendEnv`): xenstore, the grant table, the event channel, pages of memory
for its ring and its data, and the block layer that gives it bios and takes their
completions.  Everything else is the harness's: the tool stack, a back end serving a RAM
disk (:mod:`.backend`), and the choice of what happens next (:data:`EVENTS`).

After every event the harness checks what the front end did against the protocol model
(:class:`~xbdspec.traces.protocol.ProtocolChecker`): its xenstore commits, the requests
it pushed as they stand in the ring page (ids, operations, segments, the grants they
name and their access modes), its notifications, the responses it took (its bios'
completions, with the data checked against the RAM disk) and the grants it ended.  A
step the protocol does not allow is a :class:`Violation` naming the event; at the end,
a bio never completed or a grant never ended is one too.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from xbdspec.model.protocol import ProtocolSizes
from xbdspec.model.protocol.vocabulary import Operation, ReqStage
from xbdspec.model.vocabulary import XenbusState

from xbdspec.errors import XbdspecError
from xbdspec.traces.protocol import Commit, ProtocolChecker

from .backend import SECTOR, BackendConfig, RamDiskBackend
from .grants import PAGE_SIZE, GrantError, GrantTable
from .ring import (
    OP_DISCARD,
    OP_INDIRECT,
    OP_READ,
    OP_WRITE,
    RSP_ERROR,
    RSP_OKAY,
    U32,
    SharedRing,
    notify_needed,
    ring_size,
)
from .xenstore import Xenstore

FRONT = "/local/domain/5/device/vbd/768"
BACK = "/local/domain/0/backend/vbd/5/768"
#: Request ids the model follows: more than a ring holds, so that RING_FULL, not the
#: ids, bounds what is outstanding.
MAX_IDS = 48


class Violation(XbdspecError):
    """The front end did something the protocol does not allow.

    Attributes:
        event: the index of the harness event during which it happened.
        rule: what was broken, in words.
    """

    def __init__(self, event: int, label: str, rule: str) -> None:
        super().__init__(f"event {event} ({label}): {rule}")
        self.event = event
        self.rule = rule


class ImplementationFailure(Violation):
    """The implementation failed instead of answering: a child over the stdio protocol
    (:mod:`.stdio`) crashed, hung, sent a malformed message, or said its call failed.

    It is a divergence of the event it happened in, like a protocol violation: a
    campaign shrinks it (``rule`` says what failed in words that stay the same from run
    to run, numbers aside) and writes its replay.

    Attributes:
        kind: ``crash``, ``hang``, ``malformed`` or ``failed``.
        detail: what else is known and may differ between runs (the end of the child's
            stderr, the message at fault); in the message, not in ``rule``.
    """

    def __init__(
        self, event: int, label: str, rule: str, kind: str = "failed", detail: str = ""
    ) -> None:
        super().__init__(event, label, rule)
        self.label = label
        self.kind = kind
        self.detail = detail
        if detail:
            self.args = (f"{self.args[0]}\n{detail}",)

    def at(self, event: int, label: str) -> ImplementationFailure:
        """The same failure, as a divergence of harness event ``event``."""
        return ImplementationFailure(event, label, self.rule, self.kind, self.detail)


@dataclass(frozen=True)
class Bio:
    """What the block layer asks: read or write ``sectors`` 512-byte sectors at
    ``sector`` (``data`` for a write), or a flush."""

    id: int
    op: str
    sector: int = 0
    sectors: int = 1
    data: bytes = b""


class Frontend(Protocol):
    """What an implementation offers the harness: the entry points a front end has."""

    def otherend_changed(self) -> None:
        """A watch fired on the back end's directory."""

    def interrupt(self) -> None:
        """The event channel has a notification for the front end."""

    def submit(self, bio: Bio) -> None:
        """The block layer hands over a bio."""

    def shutdown(self) -> None:
        """The guest shuts the device down."""

    # Optional: ``resume()``, the guest was saved and restored (or migrated): the
    # harness's ``resume`` event calls it after the tool stack recreated the device.
    # Optional: ``removed()``, the device's own directory is gone (the tool stack's
    # forced removal): the guest's bus deletes the device (FreeBSD's
    # ``xenbusb_verify_device``, Linux's ``xenbus_dev_changed``); the block layer keeps
    # giving bios to a front end that has it.


class FrontendEnv:
    """The front end's view of the world.

    Attributes:
        front, back: the two directories' paths.
    """

    def __init__(self, world: World) -> None:
        self._world = world
        self.front = FRONT
        self.back = BACK

    # xenstore
    def read(self, path: str) -> str | None:
        return self._world.store.get(path)

    def write(self, path: str, value: str, tid: int = 0) -> None:
        self._world.store.write("frontend", path, value, tid)

    def remove(self, path: str, tid: int = 0) -> None:
        self._world.store.rm("frontend", path, tid)

    def exists(self, path: str) -> bool:
        """``xs_exists``: a node at ``path`` or below it (FreeBSD's
        ``xenbusb_verify_device`` asks it of the device's own directory)."""
        return self._world.store.get(path) is not None or bool(self._world.store.paths_under(path))

    def transaction_start(self) -> int:
        return self._world.store.transaction_start()

    def transaction_end(self, tid: int, abort: bool = False) -> None:
        """Commit (``EAGAIN`` when it conflicts: retry) or abort a transaction."""
        self._world.store.transaction_end("frontend", tid, commit=not abort)

    # memory, grants, the event channel
    def alloc_page(self) -> bytearray:
        return bytearray(PAGE_SIZE)

    def grant(self, page: bytearray | memoryview, readonly: bool) -> int:
        return self._world.grants.grant(page, readonly)

    def grant_ref(self, ref: int, page: bytearray | memoryview, readonly: bool) -> None:
        """Grant ``page`` under a reference the front end chose (Linux claims references
        from its own pool: ``gnttab_claim_grant_reference``)."""
        self._world.grants.grant_ref(ref, page, readonly)

    def grant_mapped(self, ref: int) -> bool:
        """Whether the back end still has the grant mapped (``gnttab_try_end_foreign_access``
        fails then)."""
        grant = self._world.grants.grants.get(ref)
        return grant is not None and grant.mapped > 0

    def end_grant(self, ref: int) -> None:
        self._world.observed_end_grant(ref)
        self._world.grants.end(ref)

    def alloc_evtchn(self) -> int:
        """An event channel bound to the back end's domain (``xenbus_alloc_evtchn``): a
        fresh port, the value to publish as ``event-channel``.  (A front end may also
        publish a port it chose; the back end binds whatever is published.)"""
        self._world.next_port += 1
        return self._world.next_port

    def notify(self, port: int | None = None) -> None:
        """Notify the back end on ``port`` (None: the only event channel, queue 0's)."""
        self._world.observed_notify(port)

    # the block layer
    def complete(self, bio_id: int, ok: bool, data: bytes = b"") -> None:
        self._world.observed_completion(bio_id, ok, data)


@dataclass
class _InFlight:
    model_id: int
    bio: int | None
    grefs: tuple[int, ...]
    #: what the back end read from the disk for it (a read)
    data: bytes = b""
    #: the status the back end answered it with (None: not answered yet)
    status: int | None = None
    #: the first sector it moves
    sector: int = 0


@dataclass
class QueueView:
    """What the harness follows of one queue's ring, with its own protocol state.

    The protocol model follows one ring (queue 0; every queue obeys the same rules):
    each queue has its own :class:`ProtocolChecker`, which sees every xenstore commit
    (the handshake is shared) and only its own ring's steps.

    Attributes:
        in_flight: request id on the ring -> what it is.
        answered_grants: grant of an answered request -> its id.
    """

    queue: int
    checker: ProtocolChecker
    in_flight: dict[int, _InFlight] = field(default_factory=dict)
    answered_grants: dict[int, int] = field(default_factory=dict)
    seen_req_prod: int = 0
    taken: list[int] = field(default_factory=list)
    notified: bool = False
    backend_notified: bool = False
    #: the back end misbehaved on this ring (:meth:`World._event_backend_hostile`): its
    #: state is no longer the protocol's; only the safety rules are checked
    hostile: bool = False
    #: requests that were in flight on a ring that went away (a resume), by model id:
    #: owed again, re-issued or failed
    carried: dict[int, _InFlight] = field(default_factory=dict)


@dataclass
class World:
    """The world of one front end, with the protocol model watching.

    Attributes:
        events: the harness events run so far, as ``(name, params)``.
    """

    make_frontend: Callable[[FrontendEnv], Frontend]
    config: BackendConfig = field(default_factory=BackendConfig)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: what the harness compared with the protocol model, by kind of observation
    compared: Counter[str] = field(default_factory=Counter)
    #: the protocol-level trace of what the harness saw (xenstore commits and ring
    #: steps), in the format ``xbdspec check`` reads (:func:`trace_lines`)
    trace: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = Xenstore(on_commit=self._on_commit)
        self.grants = GrantTable()
        #: request ids the model follows: more than the largest ring offered holds, so
        #: that RING_FULL, not the ids, bounds what is outstanding
        self.ids = max(MAX_IDS, ring_size(self.config.max_ring_page_order) + 16)
        self.sizes = sizes = ProtocolSizes(
            ids=self.ids,
            ring_slots=32,
            max_order=max(4, self.config.max_ring_page_order),
            max_queues=max(4, self.config.max_queues),
            ring_base=0,
        )
        self.queues = [
            QueueView(q, ProtocolChecker(sizes)) for q in range(max(1, self.config.max_queues))
        ]
        #: queue 0's protocol state: the model's ring
        self.checker = self.queues[0].checker
        self.backend = RamDiskBackend(
            self.store,
            self.grants,
            FRONT,
            BACK,
            self.config,
            on_event=self._on_backend,
            notify_front=self._notify_front,
        )
        self.notified_other: list[int | None] = []
        #: the last event-channel port handed out (:meth:`FrontendEnv.alloc_evtchn`)
        self.next_port = 16
        self.front_pending = False
        self.front_watch_pending = False
        self.back_watch_pending = False
        self.bios: dict[int, Bio] = {}
        self.completed: dict[int, int] = {}
        self.ended: list[int] = []
        #: what the taken pieces of a bio still outstanding read: bio -> sector -> data
        self.pieces_read: dict[int, dict[int, bytes]] = {}
        #: where the next piece of a split bio starts: bio -> sector
        self.piece_end: dict[int, int] = {}
        #: grants that named indirect pages (segment descriptors, not data): a front end
        #: may keep them granted and reuse them for every indirect request (FreeBSD does)
        self.indirect_pages: set[int] = set()
        #: when each bio was submitted and completed, on one clock (:meth:`_tick`)
        self.submitted_at: dict[int, int] = {}
        self.completed_at: dict[int, int] = {}
        self._clock = 0
        #: whether the back end has been Connected (bios are owed completions from then)
        self.connected_once = False
        #: bios outstanding when the tool stack detached the device
        self.detached_with: set[int] = set()
        #: the back end left the ring (Closed directly, or its directory removed): what
        #: the front end holds is owed nothing more (:meth:`_event_backend_close`)
        self.backend_left = False
        #: the rings the back end had mapped when it left: the front end's pages, which
        #: it may go on writing (each queue's)
        self.left_rings: dict[int, SharedRing] = {}
        #: their event channels: port -> queue
        self.left_ports: dict[int, int] = {}
        #: the tool stack removed the front end's directory (:meth:`_event_toolstack_remove`)
        self.front_removed = False
        #: bios outstanding while the world was quiet and connected: the front end had
        #: every chance to send them and take their responses
        self.owed: set[int] = set()
        self.frontend = self.make_frontend(FrontendEnv(self))
        self._event = 0
        self._label = "start"
        self._violation: str | None = None

    # ---- what the harness sees happen
    def _fail(self, rule: str) -> None:
        if self._violation is None:
            self._violation = rule

    def _on_commit(self, who: str, writes: dict[str, str | None]) -> None:
        rel: dict[str, str] = {}
        removed: list[str] = []
        for path, value in writes.items():
            for prefix, side in ((FRONT, "front"), (BACK, "back")):
                if path == prefix or path.startswith(prefix + "/"):
                    key = side if path == prefix else f"{side}/{path[len(prefix) + 1 :]}"
                    if value is None:
                        removed.append(key)
                    else:
                        rel[key] = value
        if path_touches_back(writes) and who == "frontend":
            self._fail("the front end writes in the back end's directory")
        if (rel or removed) and self._violation is None:
            commit = Commit(who, rel, tuple(removed), f"event {self._event}")
            self.compared["xenstore commits"] += 1
            line: dict[str, Any] = {"by": who, "writes": rel, "event": self._event}
            if removed:
                line["remove"] = removed
            self.trace.append(line)
            for view in self.queues:
                if not view.checker.check(commit):
                    self._fail(view.checker.report.violation)
                    break
        if writes.get(f"{BACK}/state") == "4":
            self.connected_once = True
        if any(p.startswith(BACK) for p in writes):
            self.front_watch_pending = True
        if any(p.startswith(FRONT) for p in writes):
            self.back_watch_pending = True

    def _record(self, steps: list[tuple[str, dict[str, Any]]], what: str, queue: int) -> str:
        """Write ring steps into the protocol trace (not checked here); their label."""
        if queue:
            what = f"queue {queue}: {what}"
        self.trace.append(
            {
                "by": "frontend" if steps[0][0].startswith("frontend") else "backend",
                "queue": queue,
                "steps": [[n, _json_params(p)] for n, p in steps],
                "what": what,
                "event": self._event,
            }
        )
        return what

    def _step(self, steps: list[tuple[str, dict[str, Any]]], what: str, queue: int = 0) -> None:
        if self._violation is not None:
            return  # the trace ends at the violation (the harness's own, or the model's)
        view = self.queues[queue]
        if view.hostile:
            return  # the ring left the protocol (a hostile back end): safety checks only
        self.compared["ring steps"] += len(steps)
        what = self._record(steps, what, queue)
        if not view.checker.take(steps, f"event {self._event}", what):
            self._fail(view.checker.report.violation)

    def _on_backend(self, name: str, params: dict[str, object]) -> None:
        queue = int(params.get("queue", 0))  # type: ignore[call-overload]
        view = self.queues[queue]
        if name == "backend_read":
            read = view.in_flight.get(int(params["id"]))  # type: ignore[call-overload]
            if read is not None:
                read.data = bytes(params["data"])  # type: ignore[call-overload]
            return
        if name in ("backend_consume", "backend_respond"):
            entry = view.in_flight.get(int(params["id"]))  # type: ignore[call-overload]
            if entry is None:
                self._fail(
                    f"the back end found request id {params['id']} on queue {queue}'s ring, "
                    "which no push published"
                )
                return
            if name == "backend_respond" and "status" in params:
                entry.status = int(params["status"])  # type: ignore[call-overload]
            extra = {"push": False, "notify": False} if name == "backend_respond" else {}
            self._step([(name, {"id": entry.model_id, **extra})], name, queue)
        elif name == "backend_push_responses":
            self._step([(name, {"notify": bool(params["notify"])})], name, queue)
        else:
            self._step([(name, {})], name, queue)

    def _notify_front(self, queue: int = 0) -> None:
        self.front_pending = True

    def observed_notify(self, port: int | None) -> None:
        self.compared["notifications"] += 1
        if port is None:
            self.queues[0].notified = True
            return
        queue = self.backend.queue_of_port(port)
        if queue is None:
            queue = self.left_ports.get(port)  # a ring the back end left: still its port
        if queue is None:
            self.notified_other.append(port)  # a port no connected ring has: harmless
        else:
            self.queues[queue].notified = True

    def observed_end_grant(self, ref: int) -> None:
        self.compared["grants ended"] += 1
        self.ended.append(ref)

    def observed_completion(self, bio_id: int, ok: bool, data: bytes) -> None:
        bio = self.bios.get(bio_id)
        if bio is None:
            self._fail(
                f"the front end completes bio {bio_id}, which the block layer never submitted"
            )
            return
        if bio_id in self.completed:
            self._fail(
                f"the front end completes bio {bio_id} twice (each request is answered once)"
            )
            return
        carrying = self._carrying(bio_id)
        if not ok and carrying:
            # a bio failed whose request is on a ring the back end left: given up
            for view, _ in carrying:
                self._abandon(view)
            carrying = self._carrying(bio_id)
        if not carrying and self._reattribute(bio_id):
            carrying = self._carrying(bio_id)
        if not carrying:
            owed = [
                (view, m)
                for view in self.queues
                for m, e in view.carried.items()
                if e.bio == bio_id
            ]
            if owed and not ok:
                # given up: the block layer gets an error for a request of a ring that
                # went away (frontend_fail_carried)
                for view, m in owed:
                    del view.carried[m]
                    self._step(
                        [("frontend_fail_carried", {"id": m})],
                        f"the front end fails bio {bio_id}, owed from a ring that went away",
                        view.queue,
                    )
                self.completed[bio_id] = 0
                self.compared["completions"] += 1
                return
            if owed:
                self._fail(
                    f"the front end completes bio {bio_id} as done, but its request was "
                    "carried across the resume and never issued again (nothing answered it)"
                )
                return
            if not ok:
                # the front end declines the bio without sending it (too large, the
                # device gone, an operation it does not do): its choice; the block layer
                # gets an error, and nothing crossed the ring
                self.completed[bio_id] = 0
                self.completed_at[bio_id] = self._tick()
                self.compared["bios failed without a request"] += 1
                return
            if bio.op == "flush" and not self._offers_flush():
                # a device with no cache to flush: the front end (or its block layer)
                # completes the flush itself; nothing crosses the ring
                self.completed[bio_id] = int(ok)
                self.completed_at[bio_id] = self._tick()
                self.compared["completions"] += 1
                return
            self._fail(
                f"the front end completes bio {bio_id}, which no request on the ring carries"
            )
            return
        unchecked = False
        for view, rid in carrying:
            if view.hostile:
                if rid in self.backend.repeated:
                    # a duplicate answer to an id the front end has reused since: it
                    # cannot tell it from the answer to its new request; nothing to check
                    self.compared["completions after a duplicate, unchecked"] += 1
                    unchecked = True
                    continue
                if self._forged_response_names(rid):
                    # the forged response was in a slot the front end then filled with a
                    # request: read as a response, those bytes name this request, and the
                    # front end cannot tell them from an answer (it checks the id, the
                    # operation and rsp_prod against the ring's size, all of which pass)
                    self.compared["completions by a forged response overwritten, unchecked"] += 1
                    unchecked = True
                    continue
                if ok and view.in_flight[rid].status is None:
                    self._fail(
                        f"the front end completes bio {bio_id} as done, but the back end "
                        f"never answered request {rid} (queue {view.queue}; after a hostile "
                        "response, a response that names no request it sent proves nothing)"
                    )
                    return
                continue
            state = next(iter(view.checker.states))
            if state.req_stage[view.in_flight[rid].model_id] != ReqStage.RESP_PUBLISHED:
                self._fail(
                    f"the front end completes bio {bio_id} before the back end answered "
                    f"request {rid} (queue {view.queue})"
                )
                return
        statuses = {view.in_flight[rid].status for view, rid in carrying}
        if ok and statuses == {RSP_ERROR}:
            self._fail(
                f"the front end completes bio {bio_id} ({bio.op}) as done, but the back end "
                'answered it with BLKIF_RSP_ERROR (blkif.h: "Operation failed for some '
                'unspecified reason (-EIO)")'
            )
            return
        self.completed[bio_id] = int(ok)
        self.completed_at[bio_id] = self._tick()
        self.compared["completions"] += 1
        for view, rid in carrying:
            view.taken.append(rid)
        if unchecked:
            return
        if ok and bio.op == "read":
            # what the back end read when it performed the request(s): a write in flight
            # at the same time may have changed the disk since (any order is legal)
            # a bio split into requests: their data in sector order (pieces taken before)
            pieces = dict(self.pieces_read.pop(bio_id, {}))
            pieces.update(
                {view.in_flight[rid].sector: view.in_flight[rid].data for view, rid in carrying}
            )
            parts = [pieces[k] for k in sorted(pieces)]
            expected = b"".join(parts)[: bio.sectors * SECTOR]
            self.compared["read data compared"] += 1
            if data != expected:
                self._fail(f"bio {bio_id} read data that is not what the disk holds")
        if ok and bio.op in WRITES:
            self._check_written(bio, [view.in_flight[rid] for view, rid in carrying])

    def _forged_response_names(self, rid: int) -> bool:
        """Whether a forged response the back end wrote ahead of the front end's
        requests (:attr:`RamDiskBackend.forged_ahead`) now reads as an answer to ``rid``:
        ring.h's slots hold a request or a response, so the front end's request written
        there later is what it reads back as the response."""
        if not self.backend.forged_ahead or not self.backend.rings:
            return False
        ring = self.backend.rings[0].ring
        return any(ring.read_response(index)[0] == rid for index in self.backend.forged_ahead)

    def _offers_flush(self) -> bool:
        return any(
            self.store.get(f"{BACK}/{key}") == "1"
            for key in ("feature-flush-cache", "feature-barrier")
        )

    def _check_written(self, bio: Bio, requests: list[_InFlight]) -> None:
        """A write the front end completed as done is on the disk: every sector of it
        that no other write (or discard) outstanding at the same time also touched holds
        the bio's data (writes in flight together may land in any order)."""
        start, end = bio.sector, bio.sector + bio.sectors
        others = [
            b
            for b in self.bios.values()
            if b.id != bio.id
            and b.op in (*WRITES, "discard")
            and b.sector < end
            and start < b.sector + b.sectors
            and self._concurrent(b.id, bio.id)
        ]
        disk = self.backend.disk
        self.compared["written data compared"] += 1
        for sector in range(start, min(end, len(disk) // SECTOR)):
            if any(o.sector <= sector < o.sector + o.sectors for o in others):
                continue
            offset = (sector - start) * SECTOR
            if disk[sector * SECTOR : (sector + 1) * SECTOR] != bio.data[offset : offset + SECTOR]:
                statuses = sorted({r.status for r in requests if r.status is not None})
                said = ", ".join(STATUS_NAMES.get(st, str(st)) for st in statuses) or "nothing"
                self._fail(
                    f"the front end completes bio {bio.id} ({bio.op} of {bio.sectors} sectors "
                    f"at {bio.sector}) as done, but sector {sector} does not hold its data: the "
                    f"back end answered its request(s) with {said}"
                )
                return

    def _concurrent(self, a: int, b: int) -> bool:
        """Whether bios ``a`` and ``b`` were outstanding at the same time (so either may
        land last)."""
        sa, sb = self.submitted_at[a], self.submitted_at[b]
        ca, cb = self.completed_at.get(a), self.completed_at.get(b)
        return not ((ca is not None and ca <= sb) or (cb is not None and cb <= sa))

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    # ---- after every call into the front end
    def _carrying(self, bio_id: int) -> list[tuple[QueueView, int]]:
        return [
            (view, rid)
            for view in self.queues
            for rid, e in view.in_flight.items()
            if e.bio == bio_id
        ]

    def _reattribute(self, bio_id: int) -> bool:
        """A request names no bio, only an operation and a sector: when two bios
        outstanding have the same, the harness's first guess (the oldest bio) may be
        the wrong one.  Completing ``bio_id``, which no request carries, while a request
        carries its twin (same operation, same sector) settles the guess: the request
        was ``bio_id``'s.  True when it re-attributed one."""
        bio = self.bios[bio_id]
        for view in self.queues:
            for entry in view.in_flight.values():
                other = self.bios.get(entry.bio) if entry.bio is not None else None
                if (
                    other is not None
                    and other.id != bio_id
                    and other.id not in self.completed
                    and (other.op, other.sector, other.sectors) == (bio.op, bio.sector, bio.sectors)
                ):
                    twin = other.id
                    for v in self.queues:
                        for r, e in v.in_flight.items():
                            if e.bio == twin:
                                v.in_flight[r] = dataclasses.replace(e, bio=bio_id)
                    return True
        return False

    def _after_frontend(self) -> None:
        ended = list(self.ended)
        self.ended.clear()
        rings = {r.queue: r.ring for r in self.backend.rings}
        if rings:
            self.left_rings.clear()
            self.left_ports.clear()
        # a ring the back end left is still the front end's: what it writes there is
        # read (and judged) as before
        rings = {**self.left_rings, **rings}
        for view in self.queues:
            ring = rings.get(view.queue)
            # inside one call the front end may take responses and push new requests;
            # taking first is the order that frees ring slots, so a legal call is legal.
            # Grants are ended with no ring connected too (a resume frees the old ring's).
            self._took(view, ring, ended)
            if ring is not None:
                self._pushed(view, ring)
        for view in self.queues:
            view.notified = False
        self.notified_other.clear()

    @property
    def in_flight(self) -> dict[int, _InFlight]:
        """Queue 0's requests in flight."""
        return self.queues[0].in_flight

    @property
    def seen_req_prod(self) -> int:
        return self.queues[0].seen_req_prod

    def _pushed(self, view: QueueView, ring: SharedRing) -> None:
        req_prod, req_event, _, _ = ring.indexes()
        old = view.seen_req_prod
        q = view.queue
        if req_prod == old:
            return
        steps: list[tuple[str, dict[str, Any]]] = []
        idx = old
        while idx != req_prod:
            req = ring.read_request(idx)
            real_op = req.indirect_op if req.operation == OP_INDIRECT else req.operation
            has_data = req.nr_segments > 0
            length = self._request_sectors(req)
            model_id = self._model_id(
                view, req.id, self._bio_of(real_op, req.sector_number, has_data, length)
            )
            if model_id is None:
                again = view.in_flight.get(req.id)
                if again is not None and req.operation in {int(o) for o in Operation}:
                    # in the trace as the step it is: a request under the id of one in
                    # flight, which the protocol model refuses (``xbdspec check`` sees it)
                    steps.append(
                        (
                            "frontend_write_request",
                            {
                                "id": again.model_id,
                                "op": Operation(req.operation),
                                "push": False,
                                "notify": False,
                            },
                        )
                    )
                    self._record(steps, f"the front end writes request id {req.id} again", q)
                self._fail(
                    f"request id {req.id} is reused while it is in flight (ids are unique "
                    "among outstanding requests)"
                )
                return
            op = req.operation if req.operation in {int(o) for o in Operation} else None
            if op is None:
                self._fail(
                    f"request {req.id} has operation {req.operation}, which blkif.h does not define"
                )
                return
            bio = self._bio_of(real_op, req.sector_number, has_data, length)
            self.indirect_pages.update(req.indirect_grefs)
            for ref in req.indirect_grefs:
                if ref not in self.grants.grants:
                    self._fail(
                        f"request {req.id} names indirect page grant {ref}, which is not granted"
                    )
                    return
            segments = self.backend.segments(req) or ()
            grefs = (*req.indirect_grefs, *(s.gref for s in segments))
            view.in_flight[req.id] = _InFlight(model_id, bio, grefs, sector=req.sector_number)
            if bio is not None and length is not None:
                self.piece_end[bio] = max(self.piece_end.get(bio, 0), req.sector_number + length)
            self.compared["requests read from the ring"] += 1
            for seg in segments:
                if seg.gref not in self.grants.grants:
                    self._fail(f"request {req.id} names grant {seg.gref}, which is not granted")
                    return
            steps.append(
                (
                    "frontend_write_request",
                    {"id": model_id, "op": Operation(op), "push": False, "notify": False},
                )
            )
            idx = (idx + 1) & U32
        steps.append(("frontend_push_requests", {"notify": view.notified}))
        view.seen_req_prod = req_prod
        needed = notify_needed(old, req_prod, req_event)
        what = "the front end pushes requests" + (
            " without notifying the back end, which ring.h says needs it"
            if needed and not view.notified
            else ""
        )
        self._step(steps, what, q)
        if view.notified:
            view.backend_notified = True

    def _model_id(self, view: QueueView, rid: int, bio: int | None = None) -> int | None:
        if rid in view.in_flight:
            return None
        if bio is not None:
            # a request carried across a resume, issued again: the model's same request
            again = next((m for m, e in view.carried.items() if e.bio == bio), None)
            if again is not None:
                del view.carried[again]
                return again
        used = {e.model_id for e in view.in_flight.values()} | set(view.carried)
        for candidate in range(self.ids):
            if candidate not in used:
                return candidate
        return None

    def _request_sectors(self, req: Any) -> int | None:
        """How many sectors a request moves: its segments' (its indirect pages' for an
        indirect one), a discard's ``nr_sectors``; None when unknown."""
        if req.operation == OP_DISCARD:
            return int(req.nr_sectors)
        segments = self.backend.segments(req)
        if not segments:
            return None
        return sum(s.last_sect - s.first_sect + 1 for s in segments)

    def _bio_of(
        self, op: int, sector: int, has_data: bool = True, length: int | None = None
    ) -> int | None:
        """The bio a request is most likely for: a request names no bio, only an
        operation, a sector and (through its segments) a length.  The oldest outstanding
        bio of the same kind starting at that sector whose length is the request's; else
        one longer than it (the request is the bio's first part: a front end may split a
        bio); else the oldest of the same kind there.  A flush or barrier with data is a
        write with FUA (or an ordered write); without, a flush."""
        carried = {e.bio for view in self.queues for e in view.in_flight.values()}
        if op in (OP_READ, OP_WRITE):
            # a FUA write goes as a plain write to a device that has no volatile cache
            # or no FUA (the block layer strips the flag or flushes after it)
            kinds: tuple[str, ...] = ("read",) if op == OP_READ else ("write", "fua")
        elif op == OP_DISCARD:
            kinds = ("discard",)
        elif has_data:
            kinds = ("fua", "write")
        else:
            kinds = ("flush",)
        candidates = [
            bio
            for bio in self.bios.values()
            if bio.id not in self.completed
            and bio.id not in carried
            and bio.op in kinds
            and (bio.op == "flush" or bio.sector == sector)
        ]
        if length is not None:
            exact = next((b for b in candidates if b.sectors == length), None)
            longer = next((b for b in candidates if b.sectors > length), None)
            chosen = exact or longer
            if chosen is not None:
                return chosen.id
        if candidates:
            return candidates[0].id
        # a later piece of a split bio: inside an outstanding bio of the kind, after a
        # piece already on the ring
        for bio in self.bios.values():
            if (
                bio.id not in self.completed
                and bio.op in kinds
                and self.piece_end.get(bio.id) == sector
                and sector < bio.sector + bio.sectors
            ):
                return bio.id
        return None

    def _abandon(self, view: QueueView, taken: Iterable[int] = ()) -> None:
        """The front end gives up a ring the back end left (Closed, or its directory
        gone: the model's ``frontend_abandon_ring``): every request on it is owed,
        failed or issued again later (but those whose responses it ``taken`` in the same
        call: they are off the ring).  Nothing happens while the back end is on it."""
        keep = set(taken)
        if view.hostile or not set(view.in_flight) - keep:
            return
        state = next(iter(view.checker.states))
        if state.be_state not in (XenbusState.Closed, XenbusState.Unknown):
            return
        self._step(
            [("frontend_abandon_ring", {})],
            "the front end gives up the ring its back end left",
            view.queue,
        )
        for rid in [r for r in view.in_flight if r not in keep]:
            entry = view.in_flight.pop(rid)
            view.carried[entry.model_id] = entry
        view.taken = [r for r in view.taken if r in keep]
        view.backend_notified = False  # the ring starts afresh: nothing pending

    def _took(self, view: QueueView, ring: SharedRing | None, ended: list[int]) -> None:
        taken = list(dict.fromkeys(view.taken))
        view.taken.clear()
        if not view.hostile:
            # a grant ended of a request whose response is published: the front end took
            # that response (a piece of a bio still outstanding: its bio completes later)
            state = next(iter(view.checker.states))
            for ref in ended:
                owner = next((r for r, e in view.in_flight.items() if ref in e.grefs), None)
                if (
                    owner is not None
                    and owner not in taken
                    and state.req_stage[view.in_flight[owner].model_id] == ReqStage.RESP_PUBLISHED
                ):
                    taken.append(owner)
        if ring is not None:
            self._took_responses(view, ring, taken)
        self._ended_grants(view, taken, ended)

    def _took_responses(self, view: QueueView, ring: SharedRing, taken: list[int]) -> None:
        _, _, _rsp_prod, rsp_event = ring.indexes()
        state = next(iter(view.checker.states))
        take = [False] * self.ids
        for rid in taken:
            take[view.in_flight[rid].model_id] = True
        cons = (state.rsp_cons + len(taken)) & U32
        rearm = rsp_event == (cons + 1) & U32 and (taken or rsp_event != state.rsp_event)
        if taken or rearm:
            self._step(
                [
                    (
                        "frontend_service_ring",
                        {"take": tuple(take), "end_grants": False, "rearm": bool(rearm)},
                    )
                ],
                "the front end takes responses" + (" and waits for more" if rearm else ""),
                view.queue,
            )

    def _ended_grants(self, view: QueueView, taken: list[int], ended: list[int]) -> None:
        for ref in ended:
            owner = next((rid for rid, e in view.in_flight.items() if ref in e.grefs), None)
            if owner is not None and owner not in taken:
                # a grant ended of a request on a ring the back end left: given up
                self._abandon(view, taken)
            gone = next((m for m, e in view.carried.items() if ref in e.grefs), None)
            if gone is not None:
                entry = view.carried[gone]
                left = tuple(g for g in entry.grefs if g != ref)
                view.carried[gone] = dataclasses.replace(entry, grefs=left)
                if not left:  # the model's grant bit is the request's pages, all of them
                    self._step(
                        [("frontend_end_grant", {"id": gone})],
                        f"the front end ends the grants of a request carried across the "
                        f"resume (the last: {ref})",
                        view.queue,
                    )
                continue
            owner = next((rid for rid, e in view.in_flight.items() if ref in e.grefs), None)
            if owner is not None and owner not in taken:
                model = view.in_flight[owner].model_id
                self._step(
                    [("frontend_end_grant", {"id": model})],
                    f"the front end ends grant {ref}",
                    view.queue,
                )
            view.answered_grants.pop(ref, None)
            for rid in taken:
                entry = view.in_flight[rid]
                if ref in entry.grefs:
                    view.in_flight[rid] = dataclasses.replace(
                        entry, grefs=tuple(g for g in entry.grefs if g != ref)
                    )
        for rid in taken:
            entry = view.in_flight[rid]
            for ref in entry.grefs:
                view.answered_grants[ref] = rid
            if entry.bio is not None and entry.bio not in self.completed:
                # a piece of a bio still outstanding: what it read, for the bio's check
                self.pieces_read.setdefault(entry.bio, {})[entry.sector] = entry.data
            del view.in_flight[rid]

    # ---- the harness's events
    def run(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one harness event; raise :class:`Violation` when the front end broke the
        protocol during it."""
        params = dict(params or {})
        self._event += 1
        self._label = name + (json.dumps(_short(params), sort_keys=True) if params else "")
        self.events.append((name, params))
        handler = getattr(self, f"_event_{name}", None)
        if handler is None or name not in EVENTS:
            raise XbdspecError(f"no harness event {name!r}; events: {', '.join(EVENTS)}")
        check_params(name, params)
        try:
            handler(**params)
        except GrantError as exc:
            self._fail(str(exc))
        except ImplementationFailure as exc:
            # the child failed (stdio): a divergence of this event, unless the event
            # already broke a rule before it (the first thing wrong is the one reported)
            if self._violation is None:
                raise exc.at(self._event, self._label) from None
        if self.backend.problems:
            self._fail(self.backend.problems[0])
        if self._violation is not None:
            raise Violation(self._event, self._label, self._violation)

    def _front(self, call: Callable[[], None]) -> None:
        """Call into the front end, then read what it did.  An exception out of the
        front end (a Python error, a driver's ``BUG()``) is its failure: a violation of
        the event, like a crash of a child over stdio."""
        try:
            call()
        except (Violation, GrantError):
            raise
        except Exception as exc:  # any failure of the implementation
            self._fail(f"the front end failed: {type(exc).__name__}: {str(exc)[:300]}")
            return
        self._after_frontend()

    def _event_attach(self) -> None:
        tid = self.store.transaction_start()
        for path, value in (
            (f"{BACK}/frontend", FRONT),
            (f"{BACK}/online", "1"),
            (f"{BACK}/state", "1"),
            (f"{FRONT}/backend", BACK),
            (f"{FRONT}/backend-id", "0"),
            (f"{FRONT}/virtual-device", FRONT.rsplit("/", 1)[-1]),
            (f"{FRONT}/device-type", "disk"),
            (f"{FRONT}/state", "1"),
        ):
            self.store.write("toolstack", path, value, tid)
        self.store.transaction_end("toolstack", tid)

    def _event_backend_probe(self) -> None:
        self.backend.probe()

    def _event_deliver_front_watch(self) -> None:
        if self.front_watch_pending:
            self.front_watch_pending = False
            self._front(self.frontend.otherend_changed)

    def _event_deliver_back_watch(self) -> None:
        if self.back_watch_pending:
            self.back_watch_pending = False
            self.backend.frontend_changed()

    def _event_submit(
        self, id: int, op: str, sector: int = 0, sectors: int = 1, data: str = ""
    ) -> None:
        bio = Bio(id, op, sector, sectors, bytes.fromhex(data))
        if id in self.bios:
            raise XbdspecError(f"bio {id} was submitted already: each bio has its own id")
        accepts = getattr(self.frontend, "accepts", None)
        if callable(accepts) and not accepts(op):
            self.compared["bios the block layer kept"] += 1
            return  # the device says it cannot take it: the block layer never sends it
        if self.front_removed and not callable(getattr(self.frontend, "removed", None)):
            # the guest's bus deleted the device (the harness cannot tell this front end):
            # its disk is gone, the block layer sends it nothing
            self.compared["bios the block layer kept"] += 1
            return
        self.bios[id] = bio
        self.submitted_at[id] = self._tick()
        self._front(lambda: self.frontend.submit(bio))

    def _event_submit_many(self, count: int, op: str = "write", first_id: int = 1000) -> None:
        """The block layer hands over ``count`` one-sector bios in a row."""
        for i in range(count):
            self._event_submit(
                first_id + i,
                op,
                sector=i % 32,
                sectors=1,
                data="5a" * SECTOR if op == "write" else "",
            )

    def _event_serve(self, reverse: bool = False) -> None:
        for view in self.queues:
            if self.backend_left and not self.backend.rings:
                break  # a back end that left the ring takes no notification
            if view.backend_notified:
                view.backend_notified = False
                self._step(
                    [("backend_wake", {})], "the back end takes its notification", view.queue
                )
        if self.backend.consume():
            self.backend.respond(reverse)

    def _event_interrupt(self) -> None:
        if self.front_pending:
            self.front_pending = False
            self._front(self.frontend.interrupt)

    def _event_detach(self) -> None:
        self.detached_with |= {
            b for b in self.bios if b not in self.completed and b not in self.owed
        }
        tid = self.store.transaction_start()
        self.store.write("toolstack", f"{BACK}/online", "0", tid)
        self.store.write("toolstack", f"{BACK}/state", "5", tid)
        self.store.transaction_end("toolstack", tid)

    def _leave(self) -> None:
        """The back end leaves the ring: its rings stay readable (the front end's own
        pages), what is outstanding is owed nothing more."""
        if self.backend.rings:
            self.left_rings = {r.queue: r.ring for r in self.backend.rings}
            self.left_ports = {r.port: r.queue for r in self.backend.rings}
        self.backend_left = True
        self.backend.disconnect()

    def _tell_front(self) -> None:
        """The front end's watch on the back end fires now, within the event: a
        request written between the back end's change and the watch is a race no
        front end can avoid (the protocol model, which has no watches, would refuse
        it after a Closed), so the harness does not make it."""
        self.front_watch_pending = False
        self._front(self.frontend.otherend_changed)

    def _event_backend_close(self) -> None:
        """The back end goes to Closed directly, from wherever it is (xenbus.h's
        states allow it; blkif.h's back end connects to the ring on its way to
        Connected and has left it once Closed): it unmaps the ring and answers
        nothing more.  The front end is told at once."""
        if self.backend.removed or self.backend.state() in (0, 6):
            return
        self._leave()
        self.backend.close()
        self._tell_front()

    def _event_backend_gone(self) -> None:
        """The back end's directory disappears (a driver domain destroyed, the tool
        stack cleaning up): the back end has unmapped the ring; the tool stack removes
        the directory in one transaction; the front end's watch fires (its state node
        reads as absent: Unknown to Linux, Closed to FreeBSD)."""
        if self.backend.removed or not self.store.paths_under(BACK):
            return
        self._leave()
        self.backend.removed = True
        self.store.rm("toolstack", BACK)
        self._tell_front()

    def _event_toolstack_remove(self) -> None:
        """The tool stack removes the device by force (``xl block-detach --force``, or
        a time-out of the detach): the back end lets go, both directories go in one
        transaction, without Closing.  The guest's bus deletes the device: the front
        end's ``removed`` entry point, when it has one (else the block layer sends it
        nothing more)."""
        if self.backend.removed or not self.store.paths_under(FRONT):
            return
        self._leave()
        self.backend.removed = True
        tid = self.store.transaction_start()
        self.store.rm("toolstack", BACK, tid)
        self.store.rm("toolstack", FRONT, tid)
        self.store.transaction_end("toolstack", tid)
        self.front_removed = True
        self.front_watch_pending = self.back_watch_pending = False
        removed = getattr(self.frontend, "removed", None)
        if callable(removed):
            self._front(removed)

    def _event_resume(self) -> None:
        """The guest is saved and restored, or migrated: the old back end and its rings
        are gone (nothing it had mapped stays mapped); every request in flight is
        carried, owed again; the tool stack recreates both directories in one
        transaction (the nodes it writes at attach, both states Initialising, nothing
        either end published), a new back end with the same disk probes (InitWait), and
        the front end's ``resume`` runs (Linux ``blkfront_resume``, after
        ``xenbus_dev_resume`` set its state to Initialising)."""
        resume = getattr(self.frontend, "resume", None)
        if not callable(resume):
            raise XbdspecError("this front end has no resume entry point: no resume event")
        self.backend.disconnect()
        for grant in self.grants.grants.values():
            grant.mapped = 0  # the new host's back end has mapped nothing
        for view in self.queues:
            for entry in view.in_flight.values():
                view.carried[entry.model_id] = entry
            view.in_flight.clear()
            view.taken.clear()
            view.seen_req_prod = 0
            view.notified = view.backend_notified = False
        self.front_pending = False
        self.connected_once = False
        self.left_rings = {}
        self.left_ports = {}
        kept = {
            f"{BACK}/frontend",
            f"{BACK}/online",
            f"{FRONT}/backend",
            f"{FRONT}/backend-id",
            f"{FRONT}/virtual-device",
            f"{FRONT}/device-type",
        }
        tid = self.store.transaction_start()
        for path in sorted(self.store.paths_under(FRONT) + self.store.paths_under(BACK)):
            if path not in kept and path not in (f"{FRONT}/state", f"{BACK}/state"):
                self.store.rm("toolstack", path, tid)
        self.store.write("toolstack", f"{BACK}/online", "1", tid)
        self.store.write("toolstack", f"{BACK}/state", "1", tid)
        self.store.write("toolstack", f"{FRONT}/state", "1", tid)
        self.store.transaction_end("toolstack", tid)
        self.backend = RamDiskBackend(
            self.store,
            self.grants,
            FRONT,
            BACK,
            self.config,
            on_event=self._on_backend,
            notify_front=self._notify_front,
            disk=self.backend.disk,
        )
        self.backend.probe()
        self.front_watch_pending = self.back_watch_pending = False
        self._front(resume)

    def _event_backend_hostile(self, kind: str) -> None:
        """The back end misbehaves on queue 0's ring (:meth:`RamDiskBackend.hostile`):
        a hostile or broken back end, which blkif.h does not rule out and XSA-376 is
        about.  The ring is no longer in any protocol state: from here on the harness
        checks the front end's safety only: it completes no bio the back end did not
        answer, nothing twice, and it does not crash; it may give the ring up (its
        outstanding bios are owed nothing)."""
        if kind not in HOSTILE:
            raise XbdspecError(f"no hostile back-end action {kind!r}: {', '.join(HOSTILE)}")
        answered = self.backend.hostile(kind, frozenset(self.queues[0].in_flight))
        if answered is not None:
            view = self.queues[0]
            view.hostile = True
            self.compared["hostile responses"] += 1
            for rid in answered:  # answered, with the wrong operation: performed
                if rid in view.in_flight:
                    view.in_flight[rid].status = RSP_OKAY

    def _event_settle(self, rounds: int = 8) -> None:
        """Deliver watches, serve the ring and deliver interrupts until nothing moves."""
        for _ in range(rounds):
            before = (
                self.store.generation,
                tuple(v.seen_req_prod for v in self.queues),
                len(self.completed),
                self.front_pending,
            )
            self._event_deliver_back_watch()
            self._event_deliver_front_watch()
            self._event_serve()
            self._event_interrupt()
            if self._violation is not None:
                return
            if before == (
                self.store.generation,
                tuple(v.seen_req_prod for v in self.queues),
                len(self.completed),
                self.front_pending,
            ):
                if self.connected_once:
                    self.owed |= {b for b in self.bios if b not in self.completed}
                return

    def finish(self) -> None:
        """The end of a program: the world settles (watches, the back end's service,
        interrupts, until nothing moves); then every bio submitted completed and every
        data grant of an answered request ended (without feature-persistent; a grant of
        an indirect page may be kept for the next request), or a violation.  The grant
        rule is the harness's, not a sentence of blkif.h: a data grant kept after its
        response is a leak (the grant table runs out), the tutorial's ``never-ends-grants``.

        A bio is owed a completion only once the back end has been Connected (before,
        the front end cannot send it: the block layer waits), and not when the tool
        stack detached the device before the world was ever quiet with the bio
        outstanding (what a front end does with I/O in flight at a detach is its own
        choice: Linux fails it, others wait); a bio still outstanding when the world
        was quiet had every chance."""
        self._event += 1
        self._label = "the end"
        self._event_settle(rounds=64)
        if self._violation is not None:
            raise Violation(self._event, self._label, self._violation)
        # after a hostile back end the front end may give the device up, and a back end
        # that left the ring answers nothing: nothing is owed
        gave_up = any(view.hostile for view in self.queues) or self.backend_left
        missing = [
            b
            for b in self.bios
            if b not in self.completed
            and b not in self.detached_with
            and self.connected_once
            and not gave_up
        ]
        if missing:
            self._fail(
                f"bio {missing[0]} was never completed (the front end never published it, "
                "or never took its response)"
            )
        persistent = self.store.get(f"{FRONT}/feature-persistent") == "1"
        answered = {
            ref: rid
            for view in self.queues
            for ref, rid in view.answered_grants.items()
            if ref not in self.indirect_pages
        }
        if not persistent and answered:
            ref, rid = next(iter(answered.items()))
            self._fail(
                f"request {rid} was answered but its grant {ref} was never ended "
                "(the front end did not write feature-persistent)"
            )
        if self._violation is not None:
            raise Violation(self._event, self._label, self._violation)


def _short(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for a label: long strings (a write's data) cut to their first bytes."""
    return {
        k: (v[:16] + f"...({len(v) // 2} bytes)" if isinstance(v, str) and len(v) > 32 else v)
        for k, v in params.items()
    }


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A step's parameters as JSON values: enums by name, tuples as lists."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, enum.Enum):
            value = value.name
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def trace_lines(world: World, header: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The protocol-level trace the harness recorded, as JSON lines ``xbdspec check``
    reads: a header naming the sizes the world's checkers used, then every xenstore
    commit (``by``, ``writes``, ``remove``) and every group of ring steps (``by``,
    ``queue``, ``steps``), each with the harness event it happened in."""
    sizes = world.sizes
    head: dict[str, Any] = {
        "xbdspec_trace": 2,
        "kind": "protocol",
        "source": "xbdspec.world harness",
        "sizes": {
            "ids": sizes.ids,
            "ring_slots": sizes.ring_slots,
            "max_order": sizes.max_order,
            "max_queues": sizes.max_queues,
            "ring_base": sizes.ring_base,
        },
        "front": FRONT,
        "back": BACK,
    }
    head.update(header or {})
    return [head, *world.trace]


def path_touches_back(writes: Mapping[str, str | None]) -> bool:
    return any(p.startswith(BACK) for p in writes)


#: Each event's parameters: name -> (type, smallest, largest); a whole number's bounds,
#: a string's length (``data``: hex of at most what one bio carries).
EVENT_PARAMS: dict[str, dict[str, tuple[type, int, int]]] = {
    "submit": {
        "id": (int, 0, 1 << 31),
        "op": (str, 1, 8),
        "sector": (int, 0, 1 << 40),
        "sectors": (int, 1, 4096),
        "data": (str, 0, 2 * 4096 * SECTOR),
    },
    "submit_many": {"count": (int, 1, 4096), "op": (str, 1, 8), "first_id": (int, 0, 1 << 31)},
    "serve": {"reverse": (bool, 0, 1)},
    "settle": {"rounds": (int, 1, 1024)},
    "backend_hostile": {"kind": (str, 1, 16)},
}
#: What a bio may ask: ``fua`` is a write that must be on stable storage when it
#: completes (REQ_FUA); ``discard`` frees its sectors (their contents are then undefined).
BIO_OPS = ("read", "write", "flush", "fua", "discard")
#: The bios that write data.
WRITES = ("write", "fua")
STATUS_NAMES = {0: "BLKIF_RSP_OKAY", -1: "BLKIF_RSP_ERROR", -2: "BLKIF_RSP_EOPNOTSUPP"}


def check_params(name: str, params: Mapping[str, Any]) -> None:
    """Refuse an event's parameters that are not its own or out of their bounds (a
    replay file is input: it may be hostile)."""
    allowed = EVENT_PARAMS.get(name, {})
    for key, value in params.items():
        spec = allowed.get(key)
        if spec is None:
            raise XbdspecError(f"the event {name} takes no parameter {str(key)[:40]!r}")
        kind, low, high = spec
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        else:
            ok = isinstance(value, str) and low <= len(value) <= high
        if not ok:
            raise XbdspecError(f"the event {name}'s {key} = {str(value)[:40]} is out of bounds")
    if "op" in params and params["op"] not in BIO_OPS:
        raise XbdspecError(f"a bio's op is one of {', '.join(BIO_OPS)}")
    if name == "submit" and ("id" not in params or "op" not in params):
        raise XbdspecError("the event submit needs a bio's id and op")
    data = params.get("data")
    if isinstance(data, str):
        try:
            bytes.fromhex(data)
        except ValueError:
            raise XbdspecError("a bio's data is hex") from None


#: The harness's events, by name.
EVENTS = (
    "attach",
    "backend_probe",
    "deliver_front_watch",
    "deliver_back_watch",
    "submit",
    "submit_many",
    "serve",
    "interrupt",
    "detach",
    "resume",
    "backend_hostile",
    "backend_close",
    "backend_gone",
    "toolstack_remove",
    "settle",
)
#: The events of the back end's end going away (:meth:`World._event_backend_close`,
#: ``_event_backend_gone``, ``_event_toolstack_remove``).
GONE = ("backend_close", "backend_gone", "toolstack_remove")
#: What a hostile back end may do (:meth:`World._event_backend_hostile`).
HOSTILE = ("unknown-id", "duplicate", "wrong-op", "overrun")


def run_program(
    make_frontend: Callable[[FrontendEnv], Frontend],
    program: Iterable[tuple[str, Mapping[str, Any]]],
    config: BackendConfig | None = None,
    keep: list[World] | None = None,
) -> World:
    """Run a program of harness events, then the end-of-program checks (``keep``
    receives the world, also when the program ends in a violation)."""
    world = World(make_frontend, config or BackendConfig())
    if keep is not None:
        keep.append(world)
    for name, params in program:
        world.run(name, params)
    world.finish()
    return world


def shrink(
    make_frontend: Callable[[FrontendEnv], Frontend],
    program: list[tuple[str, Mapping[str, Any]]],
    config: BackendConfig | None = None,
    same: Callable[[Violation], bool] | None = None,
) -> list[tuple[str, Mapping[str, Any]]]:
    """A shortest program (one event removed at a time) that still shows the same
    violation: ``same`` decides (by default, the same rule text, numbers aside)."""
    signature: str | None = None

    def key(v: Violation) -> str:
        return "".join(ch for ch in v.rule if not ch.isdigit())

    def fails(p: list[tuple[str, Mapping[str, Any]]]) -> bool:
        nonlocal signature
        try:
            run_program(make_frontend, p, config)
        except XbdspecError as v:
            if not isinstance(v, Violation):
                return False  # another failure (the program no longer makes sense)
            if signature is None:
                signature = key(v)
                return True
            return same(v) if same is not None else key(v) == signature
        return False

    if not fails(program):
        raise XbdspecError("the program shows no violation: nothing to shrink")
    current = list(program)
    changed = True
    while changed:
        changed = False
        for i in range(len(current)):
            candidate = current[:i] + current[i + 1 :]
            if fails(candidate):
                current = candidate
                changed = True
                break
    return current
