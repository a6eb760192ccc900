"""The protocol model's own labels: a request's progress through the ring, the tool
stack's phase, the operations a request may carry, and the tolerated deviations."""

from __future__ import annotations

import enum


class ReqStage(enum.IntEnum):
    """Where the request with a given id is, as the two ends see it.

    The id is ``blkif_request.id``, echoed in ``blkif_response.id``; an id is *in
    flight* from the moment the front end writes a request with it until the front
    end takes its response.
    """

    IDLE = 0  # no request carries the id
    PRIVATE = 1  # written at req_prod_pvt; req_prod does not cover it yet
    PUBLISHED = 2  # req_prod covers it: the back end may read it
    CONSUMED = 3  # the back end has taken it (req_cons passed it)
    RESP_PRIVATE = 4  # the back end wrote its response at rsp_prod_pvt, not yet pushed
    RESP_PUBLISHED = 5  # rsp_prod covers the response: the front end may take it
    CARRIED = 6  # in flight when the ring went away (reconnect, resume): owed again


#: The stages of a request on the current ring: the back end may still read its
#: segments, so its grants must stay.
ON_RING = (
    ReqStage.PRIVATE,
    ReqStage.PUBLISHED,
    ReqStage.CONSUMED,
    ReqStage.RESP_PRIVATE,
    ReqStage.RESP_PUBLISHED,
)


class ToolstackPhase(enum.IntEnum):
    """The tool stack's part: the back end's ``online`` node.

    ``online`` is the tool stack's key (libxl writes it), not one of blkif.h's nodes.
    A removed directory shows as its end's ``state`` reading Unknown.
    """

    ATTACHED = 0  # online = 1
    UNPLUGGED = 1  # online = 0: the tool stack asked for the device to go


class Operation(enum.IntEnum):
    """``BLKIF_OP_*`` a request may carry (``blkif.h``, REQUEST CODES)."""

    READ = 0
    WRITE = 1
    WRITE_BARRIER = 2
    FLUSH_DISKCACHE = 3
    DISCARD = 5
    INDIRECT = 6


#: The front end writes Connected in the transaction that publishes its transport
#: keys, never writing Initialised (Mini-OS, MirageOS); Linux's blkback accepts it
#: (``frontend_changed`` connects the ring on Initialised or Connected).
CONNECTED_IN_KEY_TRANSACTION = "connected-in-key-transaction"

#: Every tolerated deviation, with what it is and who takes it.
DEVIATIONS: dict[str, str] = {
    CONNECTED_IN_KEY_TRANSACTION: (
        "The front end writes Connected in the same transaction as its transport keys, "
        "never Initialised (Mini-OS blkfront.c init_blkfront, MirageOS blkfront.ml). "
        "blkif.h's diagram has the front end reach Connected only after the back end's "
        "Connected; Linux's blkback connects the ring when it sees the front end "
        "Initialised or Connected (xen-blkback/xenbus.c frontend_changed), so the path "
        "works with it."
    ),
}
