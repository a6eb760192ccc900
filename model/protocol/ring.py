"""The shared ring as ring.h and blkif.h state it: requests and responses by id,
the producer and consumer indices, notifications, and the grants of a request's pages.

The indices are free-running 32-bit values (``RING_IDX``); every difference is taken
modulo 2**32, as the macros do.  A step that does several things only one end can see
(writing a request at ``req_prod_pvt`` and pushing, or taking several responses and
doing the final check) is one step here: the other end cannot tell it from the same
things done one at a time, and the finer-grained ways are steps too.
"""

from __future__ import annotations

import itertools
from typing import Any

from ..declaration import Param, TransitionTable
from ..draft import Draft
from ..expr import (
    all_of,
    any_of,
    count_true,
    implies,
    ite,
    negate,
    one_of,
    u32_add,
    u32_lt,
    u32_of,
    u32_sub,
)
from ..vocabulary import XenbusState
from . import quotes as q
from .handshake import carry_in_flight
from .state import ProtocolSizes
from .vocabulary import ON_RING, Operation, ReqStage

table = TransitionTable()
step = table.step
X = XenbusState
ALL_STATES = tuple(X)

#: The back end's states in which a front end may put requests on the ring: Connected
#: (blkif.h: "o Connect to the request ring and event channel." before
#: XenbusStateConnected), Closing after it (the device "is being closed", the ring is
#: still served), and Unknown (its directory removed: the headers say nothing of it).
#: Not Closed: the back end has left the ring.
RING_PEER_STATES = (X.Connected, X.Closing, X.Unknown)
#: The back end's states in which it has left the ring for good: Closed, or its
#: directory removed.
RING_GONE_STATES = (X.Closed, X.Unknown)


def ring_size(s: Any, k: ProtocolSizes) -> Any:
    """``RING_SIZE``: the slots of a ring of ``2**fe_order`` pages."""
    size: Any = k.ring_slots
    for order in range(1, k.max_order + 1):
        size = ite(s.fe_order == order, k.ring_slots << order, size)
    return size


def outstanding(s: Any) -> Any:
    """``req_prod_pvt - rsp_cons``: the requests written whose responses the front end
    has not taken (what ``RING_FREE_REQUESTS`` subtracts from the size)."""
    return u32_sub(s.req_prod_pvt, s.rsp_cons)


def notify_needed(old: Any, new: Any, event: Any) -> Any:
    """``RING_PUSH_*_AND_CHECK_NOTIFY``: ``(RING_IDX)(new - event) < (RING_IDX)(new - old)``."""
    return u32_lt(u32_sub(new, event), u32_sub(new, old))


def offered(s: Any, op: Operation) -> Any:
    """Whether the back end's keys allow requests with ``op``."""
    return {
        Operation.READ: True,
        Operation.WRITE: True,
        Operation.WRITE_BARRIER: s.be_barrier,
        Operation.FLUSH_DISKCACHE: s.be_flush,
        Operation.DISCARD: s.be_discard,
        Operation.INDIRECT: s.be_indirect,
    }[op]


def notification_rule(needed: Any, push: Any, notify: Any) -> list[tuple[str, Any]]:
    """A push notifies when ring.h says the other end needs it; nothing else does."""
    return [
        (
            "a push notifies the other end when RING_PUSH_*_AND_CHECK_NOTIFY says it is needed",
            implies(all_of(push, needed), notify),
        ),
        ("a notification goes with a push", implies(notify, push)),
    ]


ID = Param("id", lambda k: range(k.ids), "the request's id (blkif_request.id)")
OP = Param("op", tuple(Operation), "the request's operation")
PUSH = Param("push", (False, True), "the step also pushes (RING_PUSH_*)")
NOTIFY = Param("notify", (False, True), "the step notifies the other end's event channel")
TAKE = Param(
    "take",
    lambda k: tuple(itertools.product((False, True), repeat=k.ids)),
    "for each id, whether its response is taken",
)
END_GRANTS = Param("end_grants", (False, True), "the grants of the requests answered are ended")
REARM = Param(
    "rearm", (False, True), "RING_FINAL_CHECK_FOR_RESPONSES: rsp_event set, then the front waits"
)


def push_requests(d: Draft, notify: Any) -> None:
    """``RING_PUSH_REQUESTS``: every request written so far becomes visible."""
    d.req_prod = d.req_prod_pvt
    d.req_stage = tuple(ite(st == ReqStage.PRIVATE, ReqStage.PUBLISHED, st) for st in d.req_stage)
    d.evt_to_back = any_of(d.evt_to_back, notify)


def push_responses(d: Draft, notify: Any) -> None:
    """``RING_PUSH_RESPONSES``: every response written so far becomes visible."""
    d.rsp_prod = d.rsp_prod_pvt
    d.req_stage = tuple(
        ite(st == ReqStage.RESP_PRIVATE, ReqStage.RESP_PUBLISHED, st) for st in d.req_stage
    )
    d.evt_to_front = any_of(d.evt_to_front, notify)


# --------------------------------------------------------------------------- the front end


@step(
    event="frontend_write_request",
    component="frontend",
    source=[X.Connected, X.Closing, X.Unknown],
    params=[ID, OP, PUSH, NOTIFY],
    seed="ring.h RING_FULL, RING_PUSH_REQUESTS_AND_CHECK_NOTIFY; blkif.h features",
    quote=q.RING_FULL,
)
class FrontendWriteRequest:
    """The front end grants the request's pages and writes a request with an id not
    in flight at ``req_prod_pvt``, if the ring is not full and the back end offered the
    operation; with ``push`` it publishes every request written so far.

    The back end must be on the ring (:data:`RING_PEER_STATES`): blkif.h's back end
    connects to the ring on its way to Connected, and a Closed back end has left it.
    A removed directory (its ``state`` reads Unknown) does not stop a request, the back
    end's nor the front end's own: the headers say nothing of a removed node (Linux's
    blkfront ignores the back end's Unknown and goes on, and sends what it had queued
    until its bus removes the device), so a request then is unanswered, not refused."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        k = p.k
        new = u32_add(s.req_prod_pvt, 1)
        return [
            ("the transport is published", s.fe_transport),
            (
                "the back end is connected to the ring (Connected, or Closing after it; "
                "not Closed)",
                one_of(s.be_state, RING_PEER_STATES),
            ),
            (
                "the id is not in flight (ids are unique among outstanding requests)",
                one_of(s.req_stage[p.id], (ReqStage.IDLE, ReqStage.CARRIED)),
            ),
            (
                "the ring is not RING_FULL: at most RING_SIZE requests outstanding",
                u32_lt(outstanding(s), u32_of(ring_size(s, k))),
            ),
            ("the back end offered the operation (its feature key is 1)", offered(s, p.op)),
            *notification_rule(notify_needed(s.req_prod, new, s.req_event), p.push, p.notify),
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.req_prod_pvt = u32_add(s.req_prod_pvt, 1)
        d.set_at("req_stage", p.id, ReqStage.PRIVATE)
        d.set_at("req_op", p.id, p.op)
        d.set_at("gnt_live", p.id, True)
        if p.push:
            push_requests(d, p.notify)
        return d.changes


@step(
    event="frontend_push_requests",
    component="frontend",
    source=ALL_STATES,
    params=[NOTIFY],
    seed="ring.h RING_PUSH_REQUESTS_AND_CHECK_NOTIFY",
    quote=q.PUSH_AND_NOTIFY,
)
class FrontendPushRequests:
    """The front end publishes the requests it wrote (``req_prod = req_prod_pvt``)
    and notifies the back end when ``req_event`` asks for it."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            ("requests were written since the last push", s.req_prod != s.req_prod_pvt),
            *notification_rule(
                notify_needed(s.req_prod, s.req_prod_pvt, s.req_event), True, p.notify
            ),
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        push_requests(d, p.notify)
        return d.changes


@step(
    event="frontend_service_ring",
    component="frontend",
    source=ALL_STATES,
    params=[TAKE, END_GRANTS, REARM],
    seed="ring.h RING_FINAL_CHECK_FOR_RESPONSES; blkif.h (responses matched by id)",
    quote=q.FRONT_RSP_EVENT,
)
class FrontendServiceRing:
    """The front end runs its response handler: it takes the notification, takes the
    published responses it chooses (in any order: each names its request by id),
    perhaps ends their grants, and with ``rearm`` does the final check: with no
    response left it sets ``rsp_event = rsp_cons + 1`` and waits."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        taken = count_true(*p.take)
        return [
            (
                "every response taken is published (rsp_prod covers it)",
                all_of(
                    *(
                        implies(t, s.req_stage[i] == ReqStage.RESP_PUBLISHED)
                        for i, t in enumerate(p.take)
                    )
                ),
            ),
            (
                "the final check finds no response left on the ring",
                implies(p.rearm, u32_add(s.rsp_cons, u32_of(taken)) == s.rsp_prod),
            ),
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        cons = u32_add(s.rsp_cons, u32_of(count_true(*p.take)))
        for i, t in enumerate(p.take):
            if t:
                d.set_at("req_stage", i, ReqStage.IDLE)
                d.set_at("req_op", i, Operation.READ)
                if p.end_grants:
                    d.set_at("gnt_live", i, False)
        d.rsp_cons = cons
        d.evt_to_front = False
        d.fe_waiting = p.rearm
        if p.rearm:
            d.rsp_event = u32_add(cons, 1)
        return d.changes


@step(
    event="frontend_end_grant",
    component="frontend",
    source=ALL_STATES,
    params=[ID],
    seed="blkif.h segments; grant_table.h (gnttab_end_foreign_access)",
    quote=q.RESPONSE_ID,
)
class FrontendEndGrant:
    """The front end ends the grants of an id's pages: only once the back end can no
    longer use them (its response was taken, or the ring is gone)."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            ("the id's pages are granted", s.gnt_live[p.id]),
            (
                "the id's request is not on the ring (its response was taken)",
                negate(one_of(s.req_stage[p.id], ON_RING)),
            ),
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.set_at("gnt_live", p.id, False)
        return d.changes


@step(
    event="frontend_fail_carried",
    component="frontend",
    source=ALL_STATES,
    params=[ID],
    seed="blkif.h (each request answered once); Linux blkif_recover",
    quote=q.RESPONSE_ID,
)
class FrontendFailCarried:
    """The front end gives up a request it owes from a ring that went away: the block
    layer gets an error for it, once.  (Re-issuing it is ``frontend_write_request``.)"""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            ("the id is owed from a ring that went away", s.req_stage[p.id] == ReqStage.CARRIED)
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.set_at("req_stage", p.id, ReqStage.IDLE)
        d.set_at("req_op", p.id, Operation.READ)
        return d.changes


@step(
    event="frontend_abandon_ring",
    component="frontend",
    source=ALL_STATES,
    seed="xenbus.h Closed; blkif.h STATE DIAGRAMS; Linux blkif_free, FreeBSD's fix of "
    "backend-closed-ignored",
    quote=q.BACKEND_CONNECTED,
)
class FrontendAbandonRing:
    """The back end is Closed or its directory is gone: it has left the ring and will
    answer nothing on it, so the front end gives the ring up.  Every request on it is
    owed again (``CARRIED``: failed to its user with ``frontend_fail_carried``, or
    issued again on a new connection) and its grants may be ended; the indices start
    afresh, as on a reconnect.

    blkif.h's back end connects to the ring on its way to Connected and nothing in
    blkif.h, ring.h or xenbus.h answers a request once it has left; Linux's
    ``blkif_free`` (at ``blkfront_remove``) ends the grants of the requests still on
    the ring, and FreeBSD's fix of ``backend-closed-ignored`` fails their bios."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            (
                "the back end has left the ring (Closed, or its directory removed)",
                one_of(s.be_state, RING_GONE_STATES),
            )
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return carry_in_flight(s, p.k)


# --------------------------------------------------------------------------- the back end


@step(
    event="backend_consume",
    component="backend",
    source=ALL_STATES,
    params=[ID],
    seed="ring.h RING_COPY_REQUEST; back end's req_cons",
    quote=q.PUSH_BEFORE_INDEX,
)
class BackendConsume:
    """The back end takes a published request off the ring (``req_cons`` passes it)."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            (
                "the request is published (req_prod covers it)",
                s.req_stage[p.id] == ReqStage.PUBLISHED,
            ),
            ("req_cons is behind req_prod", s.req_cons != s.req_prod),
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.set_at("req_stage", p.id, ReqStage.CONSUMED)
        d.req_cons = u32_add(s.req_cons, 1)
        d.be_waiting = False
        return d.changes


@step(
    event="backend_respond",
    component="backend",
    source=ALL_STATES,
    params=[ID, PUSH, NOTIFY],
    seed="ring.h RING_PUSH_RESPONSES_AND_CHECK_NOTIFY; blkif.h STATUS RETURN CODES",
    quote=q.EOPNOTSUPP,
)
class BackendRespond:
    """The back end writes the response to a request it took, with any status
    (OKAY, ERROR, or EOPNOTSUPP at any time) and in any order; with ``push`` it
    publishes every response written so far and notifies when ``rsp_event`` asks."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        new = u32_add(s.rsp_prod_pvt, 1)
        return [
            ("the back end took the request", s.req_stage[p.id] == ReqStage.CONSUMED),
            *notification_rule(notify_needed(s.rsp_prod, new, s.rsp_event), p.push, p.notify),
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.set_at("req_stage", p.id, ReqStage.RESP_PRIVATE)
        d.rsp_prod_pvt = u32_add(s.rsp_prod_pvt, 1)
        if p.push:
            push_responses(d, p.notify)
        return d.changes


@step(
    event="backend_push_responses",
    component="backend",
    source=ALL_STATES,
    params=[NOTIFY],
    seed="ring.h RING_PUSH_RESPONSES_AND_CHECK_NOTIFY",
    quote=q.PUSH_AND_NOTIFY,
)
class BackendPushResponses:
    """The back end publishes the responses it wrote and notifies when asked."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            ("responses were written since the last push", s.rsp_prod != s.rsp_prod_pvt),
            *notification_rule(
                notify_needed(s.rsp_prod, s.rsp_prod_pvt, s.rsp_event), True, p.notify
            ),
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        push_responses(d, p.notify)
        return d.changes


@step(
    event="backend_final_check",
    component="backend",
    source=ALL_STATES,
    seed="ring.h RING_FINAL_CHECK_FOR_REQUESTS; blkif.h (back ends must set req_event)",
    quote=q.BACK_REQ_EVENT,
)
class BackendFinalCheck:
    """The back end, with no request left, sets ``req_event = req_cons + 1`` and sleeps
    until notified."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [("no request is left unconsumed", s.req_cons == s.req_prod)]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"req_event": u32_add(s.req_cons, 1), "be_waiting": True}


@step(
    event="backend_wake",
    component="backend",
    source=ALL_STATES,
    seed="event channel: the back end takes a notification",
    quote=q.FINAL_CHECK,
)
class BackendWake:
    """The back end takes a notification and looks at the ring again."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [("a notification is pending for the back end", s.evt_to_back)]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"evt_to_back": False, "be_waiting": False}
