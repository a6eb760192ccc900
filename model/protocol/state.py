"""The protocol model's state: what either end and the tool stack can see of a vbd.

Every field is something on the wire: a xenstore node (or a fact about a group of
nodes), a field of the shared ring page, a private ring index the other end learns of
through the shared ones, an event channel's pending bit, or a grant.  No driver's
internal state appears.

Abstractions, stated once:

* **One ring.**  With several queues (``multi-queue-num-queues``) each queue has its
  own ring, event channel and ids; the rules are the same for each, so the model
  follows queue 0.  The keys of every queue are modelled (``fe_queues``,
  ``fe_toplevel``).
* **Ids.**  Request ids are ``0 .. ids-1``; a front end may use any 64-bit value,
  and only their distinctness among requests in flight matters.
* **Responses.**  The order of the responses on the ring is not kept: a response
  published is one the front end may take at any time, in any order (blkif.h matches
  responses to requests by id; any order is legal).
* **Values.**  Keys whose value only needs to be present (``ring-ref``,
  ``event-channel``, ``protocol``) are booleans; ring orders and queue counts are
  small integers bounded by the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..declaration import Field, boolean, enumeration, integer, u32
from ..expr import u32_add
from ..vocabulary import XenbusState
from .vocabulary import Operation, ReqStage, ToolstackPhase


@dataclass(frozen=True)
class ProtocolSizes:
    """The bounds the protocol model is instantiated with.

    Attributes:
        ids: request ids the front end uses (at least one per request in flight);
            more ids than ring slots, so that only ``RING_FULL`` bounds the ring.
        ring_slots: ``RING_SIZE`` of a one-page ring (32 for blkif on x86-64; small
            here so that ``RING_FULL`` is reached).  A ring of ``2**order`` pages has
            ``ring_slots << order`` slots.
        max_order: the largest ``max-ring-page-order`` a back end offers.
        max_queues: the largest ``multi-queue-max-queues`` a back end offers.
        ring_base: the value the ring indices start from (0 in ``SHARED_RING_INIT``;
            a base just below 2**32 makes every run cross the wrap-around).
    """

    ids: int = 3
    ring_slots: int = 2
    max_order: int = 1
    max_queues: int = 2
    ring_base: int = 0xFFFF_FFFE


def fields(k: ProtocolSizes) -> list[Field]:
    """The state's fields for sizes ``k``, in order."""
    x = enumeration(XenbusState)
    n = k.ids
    return [
        # ---- xenbus: the two state nodes and the tool stack's part
        Field("fe_state", x, "the front end's `state` node", "xenbus"),
        Field("be_state", x, "the back end's `state` node", "xenbus"),
        Field(
            "ts_phase",
            enumeration(ToolstackPhase),
            "the tool stack's part: `online` = 1 or `online` = 0",
            "toolstack",
        ),
        # ---- what the back end offers (its transport parameters and features)
        Field(
            "be_max_order",
            integer(0, k.max_order),
            "`max-ring-page-order` (0 when absent; `max-ring-pages` is the same offer "
            "in the other scheme)",
            "backend",
        ),
        Field(
            "be_max_queues",
            integer(1, k.max_queues),
            "`multi-queue-max-queues` (1 when absent)",
            "backend",
        ),
        Field("be_barrier", boolean(), "`feature-barrier` is 1", "backend"),
        Field("be_flush", boolean(), "`feature-flush-cache` is 1", "backend"),
        Field("be_discard", boolean(), "`feature-discard` is 1", "backend"),
        Field("be_indirect", boolean(), "`feature-max-indirect-segments` is present", "backend"),
        Field("be_persistent", boolean(), "the back end's `feature-persistent` is 1", "backend"),
        # ---- what the front end published (its transport parameters)
        Field(
            "fe_transport",
            boolean(),
            "the front end's transport keys are complete for this connection: a ring "
            "reference per page and an event channel, per queue",
            "frontend",
        ),
        Field(
            "fe_order",
            integer(0, k.max_order),
            "`ring-page-order` (0 when absent; `num-ring-pages` must agree)",
            "frontend",
        ),
        Field(
            "fe_queues",
            integer(1, k.max_queues),
            "`multi-queue-num-queues` (1 when absent)",
            "frontend",
        ),
        Field(
            "fe_toplevel",
            boolean(),
            "the top-level `ring-ref`/`ring-refN` and `event-channel` keys are written "
            "(rather than under `queue-N/`)",
            "frontend",
        ),
        Field("fe_persistent", boolean(), "the front end's `feature-persistent` is 1", "frontend"),
        # ---- the shared ring of queue 0 (ring.h)
        Field("req_prod_pvt", u32(), "the front end's private `req_prod_pvt`", "ring"),
        Field("req_prod", u32(), "`sring->req_prod`", "ring"),
        Field(
            "req_event",
            u32(),
            "`sring->req_event`: the back end wants a notification when req_prod passes it",
            "ring",
        ),
        Field("req_cons", u32(), "the back end's private `req_cons`", "ring"),
        Field("rsp_prod_pvt", u32(), "the back end's private `rsp_prod_pvt`", "ring"),
        Field("rsp_prod", u32(), "`sring->rsp_prod`", "ring"),
        Field(
            "rsp_event",
            u32(),
            "`sring->rsp_event`: the front end wants a notification when rsp_prod passes it",
            "ring",
        ),
        Field("rsp_cons", u32(), "the front end's private `rsp_cons`", "ring"),
        Field(
            "evt_to_back",
            boolean(),
            "the event channel has a notification for the back end",
            "ring",
        ),
        Field(
            "evt_to_front",
            boolean(),
            "the event channel has a notification for the front end",
            "ring",
        ),
        Field(
            "be_waiting",
            boolean(),
            "the back end did its final check and sleeps until notified",
            "ring",
        ),
        Field(
            "fe_waiting",
            boolean(),
            "the front end did its final check (or has the ring fresh) and waits to be notified",
            "ring",
        ),
        # ---- requests and grants, by id
        Field(
            "req_stage", enumeration(ReqStage), "where the request with this id is", "request", n
        ),
        Field(
            "req_op",
            enumeration(Operation),
            "the operation of this id's request (READ when no request carries the id)",
            "request",
            n,
        ),
        Field(
            "gnt_live",
            boolean(),
            "the front end grants the back end the pages of this id's request",
            "request",
            n,
        ),
    ]


def fresh_ring(k: ProtocolSizes, base: Any) -> dict[str, Any]:
    """The ring as ``SHARED_RING_INIT`` and ``FRONT_RING_INIT`` leave it, from ``base``.

    ``req_event`` and ``rsp_event`` are one past the indices, so the first request and
    the first response are notified; the front end counts as waiting for its first
    response."""
    return {
        "req_prod_pvt": base,
        "req_prod": base,
        "req_event": u32_add(base, 1),
        "req_cons": base,
        "rsp_prod_pvt": base,
        "rsp_prod": base,
        "rsp_event": u32_add(base, 1),
        "rsp_cons": base,
        "evt_to_back": False,
        "evt_to_front": False,
        "be_waiting": False,
        "fe_waiting": True,
    }


def offers_default() -> dict[str, Any]:
    """The back end's offers when none of its keys is present (blkif.h's defaults)."""
    return {
        "be_max_order": 0,
        "be_max_queues": 1,
        "be_barrier": False,
        "be_flush": False,
        "be_discard": False,
        "be_indirect": False,
        "be_persistent": False,
    }


def transport_default() -> dict[str, Any]:
    """The front end's transport keys before it writes any."""
    return {
        "fe_transport": False,
        "fe_order": 0,
        "fe_queues": 1,
        "fe_toplevel": False,
        "fe_persistent": False,
    }


def initial(k: ProtocolSizes, ring_base: Any) -> dict[str, Any]:
    """The tool stack has created both directories, both ends Initialising, ``online``
    = 1, no key of either end written, nothing in flight."""
    return {
        "fe_state": XenbusState.Initialising,
        "be_state": XenbusState.Initialising,
        "ts_phase": ToolstackPhase.ATTACHED,
        **offers_default(),
        **transport_default(),
        **fresh_ring(k, ring_base),
        "req_stage": (ReqStage.IDLE,) * k.ids,
        "req_op": (Operation.READ,) * k.ids,
        "gnt_live": (False,) * k.ids,
    }
