"""The protocol's obligations: what every front end and back end together keep true.

Each is stated on the protocol model and proved there (inductively, transition by
transition); a driver model inherits them through its refinement.  Names follow the
project's scheme: bare noun phrases for what users care about, ``Aux...`` for the
invariants that make the others inductive.
"""

from __future__ import annotations

from typing import Any

from ..declaration import Invariant, Progress, StepProperty
from ..expr import (
    all_of,
    any_of,
    count_true,
    implies,
    negate,
    one_of,
    u32_add,
    u32_le,
    u32_of,
    u32_sub,
)
from ..vocabulary import XenbusState
from . import quotes as q
from .ring import RING_PEER_STATES, offered, outstanding, ring_size
from .vocabulary import ON_RING, Operation, ReqStage

X = XenbusState


def ring_bounds(s: Any, k: Any) -> Any:
    """At most ``RING_SIZE`` requests are outstanding: ``req_prod_pvt - rsp_cons`` never
    exceeds the ring's size.

    A front end past it overwrites a slot whose response it has not read.  ring.h's
    ``RING_FULL`` allows ``RING_SIZE`` outstanding; its N.B. says the macros are fine
    "in 1-for-1 request-response situations where the requestor (front end) never has
    more than RING_SIZE()-1 outstanding requests", a margin no front end keeps (FreeBSD,
    Linux and NetBSD all fill the ring to ``RING_FULL``) and that blkif's 1-for-1
    responses do not need: the model states ``RING_FULL``'s bound.
    """
    return u32_le(outstanding(s), u32_of(ring_size(s, k)))


def no_lost_wakeup(s: Any, k: Any) -> Any:
    """An end that sleeps after its final check is notified of everything the other
    end pushes afterwards: nothing waits on the ring while its reader sleeps
    un-notified.

    This is what ``RING_FINAL_CHECK_FOR_*`` and ``RING_PUSH_*_AND_CHECK_NOTIFY``
    achieve together; blkif.h requires front ends to set ``rsp_event`` and back ends
    to set ``req_event`` that way.
    """
    return all_of(
        # the front end sleeps: every response pushed since is notified
        implies(all_of(s.fe_waiting, s.rsp_prod != s.rsp_cons), s.evt_to_front),
        # the back end sleeps: every request pushed since is notified
        implies(all_of(s.be_waiting, s.req_prod != s.req_cons), s.evt_to_back),
    )


def grants_outlive_requests(s: Any, k: Any) -> Any:
    """A request's pages stay granted while the request is on the ring: a grant is
    ended only after its response was taken.

    The back end may read or write a page until it answers; a grant ended earlier
    makes its access fail (or, with the page reused, reach another's data).
    """
    return all_of(*(implies(one_of(s.req_stage[i], ON_RING), s.gnt_live[i]) for i in range(k.ids)))


def feature_soundness(s: Any, k: Any) -> Any:
    """A request with an optional operation is on the ring only while the back end's
    feature key for it is 1 (barrier, flush, discard, indirect).

    blkif.h: a feature key of 1 "indicates that the backend can process requests
    containing" the opcode; without it the back end is not obliged to.
    """
    return all_of(
        *(
            implies(
                all_of(one_of(s.req_stage[i], ON_RING), s.req_op[i] == op),
                offered(s, op),
            )
            for i in range(k.ids)
            for op in (
                Operation.WRITE_BARRIER,
                Operation.FLUSH_DISKCACHE,
                Operation.DISCARD,
                Operation.INDIRECT,
            )
        )
    )


def published_before_initialised(s: Any, k: Any) -> Any:
    """A front end Initialised or Connected has its transport keys published.

    The back end reads them when it sees Initialised; blkif.h's front end publishes
    "transport parameters that will be in effect during this connection" before
    Initialised (or, in one transaction, with it).
    """
    return implies(one_of(s.fe_state, (X.Initialised, X.Connected)), s.fe_transport)


def requests_belong_to_transport(s: Any, k: Any) -> Any:
    """Every request on the ring was written on the ring the front end published for
    this connection; when the ring goes away its requests are owed, not on it.
    """
    return all_of(*(implies(one_of(s.req_stage[i], ON_RING), s.fe_transport) for i in range(k.ids)))


def aux_ring_accounting(s: Any, k: Any) -> Any:
    """The indices count the requests at each stage: what lies between two indices is
    exactly the ids at the stage they delimit (modulo 2**32)."""

    def count(stage: ReqStage) -> Any:
        return u32_of(count_true(*(st == stage for st in s.req_stage)))

    return all_of(
        u32_sub(s.req_prod_pvt, s.req_prod) == count(ReqStage.PRIVATE),
        u32_sub(s.req_prod, s.req_cons) == count(ReqStage.PUBLISHED),
        u32_sub(s.req_cons, s.rsp_prod_pvt) == count(ReqStage.CONSUMED),
        u32_sub(s.rsp_prod_pvt, s.rsp_prod) == count(ReqStage.RESP_PRIVATE),
        u32_sub(s.rsp_prod, s.rsp_cons) == count(ReqStage.RESP_PUBLISHED),
    )


def aux_waiting(s: Any, k: Any) -> Any:
    """An end that waits has its event index one past what it consumed."""
    return all_of(
        implies(s.fe_waiting, s.rsp_event == u32_add(s.rsp_cons, 1)),
        implies(s.be_waiting, s.req_event == u32_add(s.req_cons, 1)),
    )


def aux_ring_in_use(s: Any, k: Any) -> Any:
    """Requests are on the ring only once both ends got as far as Connected on it (they
    may have closed since, or the nodes been removed)."""
    past_connected = (X.Connected, X.Closing, X.Closed, X.Unknown)
    return all_of(
        *(
            implies(
                one_of(s.req_stage[i], ON_RING),
                all_of(one_of(s.fe_state, past_connected), one_of(s.be_state, past_connected)),
            )
            for i in range(k.ids)
        )
    )


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "RingBounds", ring_bounds, ring_bounds.__doc__ or "", "ring.h RING_FULL", quote=q.RING_FULL
    ),
    Invariant(
        "NoLostWakeup",
        no_lost_wakeup,
        no_lost_wakeup.__doc__ or "",
        "ring.h notification hold-off; blkif.h notifications",
        quote=q.FRONT_RSP_EVENT,
    ),
    Invariant(
        "GrantsOutliveRequests",
        grants_outlive_requests,
        grants_outlive_requests.__doc__ or "",
        "blkif.h segments (gref); response matched by id",
        quote=q.RESPONSE_ID,
    ),
    Invariant(
        "FeatureSoundness",
        feature_soundness,
        feature_soundness.__doc__ or "",
        "blkif.h feature-barrier, feature-flush-cache, feature-discard, BLKIF_OP_INDIRECT",
        quote=q.FEATURE_BARRIER,
    ),
    Invariant(
        "PublishedBeforeInitialised",
        published_before_initialised,
        published_before_initialised.__doc__ or "",
        "blkif.h STATE DIAGRAMS",
        quote=q.FRONTEND_INITIALISED,
    ),
    Invariant(
        "RequestsBelongToTransport",
        requests_belong_to_transport,
        requests_belong_to_transport.__doc__ or "",
        "blkif.h STATE DIAGRAMS; ring.h",
        quote=q.FRONTEND_INITIALISED,
    ),
    Invariant(
        "AuxRingAccounting",
        aux_ring_accounting,
        aux_ring_accounting.__doc__ or "",
        "ring.h",
        auxiliary=True,
    ),
    Invariant("AuxWaiting", aux_waiting, aux_waiting.__doc__ or "", "ring.h", auxiliary=True),
    Invariant(
        "AuxRingInUse",
        aux_ring_in_use,
        aux_ring_in_use.__doc__ or "",
        "blkif.h STATE DIAGRAMS",
        auxiliary=True,
    ),
)


# --------------------------------------------------------------------------- step properties


def backend_connected_after_publish(s: Any, t: Any, k: Any) -> Any:
    """The back end goes to Connected only once the front end's transport keys are
    published: it connects to the ring they name."""
    return implies(all_of(s.be_state != X.Connected, t.be_state == X.Connected), t.fe_transport)


def transport_params_stable(s: Any, t: Any, k: Any) -> Any:
    """The front end's transport parameters do not change while it stays Connected:
    they are "in effect during this connection"."""
    stays = all_of(s.fe_state == X.Connected, t.fe_state == X.Connected)
    same = all_of(
        t.fe_transport == s.fe_transport,
        t.fe_order == s.fe_order,
        t.fe_queues == s.fe_queues,
        t.fe_toplevel == s.fe_toplevel,
    )
    return implies(stays, same)


def io_needs_connection(s: Any, t: Any, k: Any) -> Any:
    """A request is written only while the front end is Connected (or closing after
    it, or its directory removed), on a published transport, to a back end on the ring:
    Connected, Closing after it, or with its directory removed (never Closed)."""
    written = any_of(
        *(
            all_of(s.req_stage[i] != ReqStage.PRIVATE, t.req_stage[i] == ReqStage.PRIVATE)
            for i in range(k.ids)
        )
    )
    return implies(
        written,
        all_of(
            one_of(s.fe_state, (X.Connected, X.Closing, X.Unknown)),
            one_of(s.be_state, RING_PEER_STATES),
            s.fe_transport,
        ),
    )


def no_lost_io(s: Any, t: Any, k: Any) -> Any:
    """No step drops a request: an id leaves flight only when the front end takes its
    response, or gives up (with an error to its user) a request owed from a ring that
    went away.  Reconnects and resumes keep what was in flight as owed."""
    return all_of(
        *(
            implies(
                all_of(s.req_stage[i] != ReqStage.IDLE, t.req_stage[i] == ReqStage.IDLE),
                one_of(s.req_stage[i], (ReqStage.RESP_PUBLISHED, ReqStage.CARRIED)),
            )
            for i in range(k.ids)
        )
    )


def answered_once(s: Any, t: Any, k: Any) -> Any:
    """The back end answers each request it took once: a response is written only for
    a request taken and not yet answered."""
    return all_of(
        *(
            implies(
                all_of(
                    s.req_stage[i] != ReqStage.RESP_PRIVATE, t.req_stage[i] == ReqStage.RESP_PRIVATE
                ),
                s.req_stage[i] == ReqStage.CONSUMED,
            )
            for i in range(k.ids)
        )
    )


STEP_PROPERTIES: tuple[StepProperty, ...] = (
    StepProperty(
        "BackendConnectedAfterPublish",
        backend_connected_after_publish,
        backend_connected_after_publish.__doc__ or "",
        "blkif.h STATE DIAGRAMS",
        quote=q.BACKEND_CONNECTED,
    ),
    StepProperty(
        "TransportParamsStable",
        transport_params_stable,
        transport_params_stable.__doc__ or "",
        "blkif.h STATE DIAGRAMS",
        quote=q.FRONTEND_INITIALISED,
    ),
    StepProperty(
        "IONeedsConnection",
        io_needs_connection,
        io_needs_connection.__doc__ or "",
        "blkif.h STATE DIAGRAMS",
        quote=q.FRONTEND_CONNECTED,
    ),
    StepProperty(
        "NoLostIO", no_lost_io, no_lost_io.__doc__ or "", "blkif.h; ring.h", quote=q.RESPONSE_ID
    ),
    StepProperty(
        "AnsweredOnce", answered_once, answered_once.__doc__ or "", "blkif.h", quote=q.RESPONSE_ID
    ),
)


# --------------------------------------------------------------------------- progress

#: The steps every participant takes eventually when it can (the explorer's fairness).
FAIRNESS = (
    "frontend_push_requests",
    "frontend_service_ring",
    "backend_consume",
    "backend_respond",
    "backend_push_responses",
    "backend_wake",
)

PROGRESS: tuple[Progress, ...] = (
    Progress(
        "NoUnpublishedRequest",
        lambda s, k: s.req_prod != s.req_prod_pvt,
        lambda s, k: s.req_prod == s.req_prod_pvt,
        "A request written is eventually pushed: the back end sees only what req_prod covers.",
        "ring.h RING_PUSH_REQUESTS",
        FAIRNESS,
    ),
    Progress(
        "EveryRequestAnswered",
        lambda s, k: any_of(*(one_of(st, ON_RING) for st in s.req_stage)),
        lambda s, k: negate(any_of(*(one_of(st, ON_RING) for st in s.req_stage))),
        "Every request on the ring is eventually answered and its response taken.",
        "blkif.h (responses matched by id)",
        FAIRNESS,
    ),
)
