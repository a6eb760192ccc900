"""The header sentences the protocol model rests on, verbatim from Xen 4.17.

Every rule of :mod:`xbdspec.model.protocol` names one of these.  The text is copied
from Debian's ``libxen-dev`` (4.17.7), ``/usr/include/xen/io/{blkif,ring,xenbus}.h``,
which are Xen's ``xen/include/public/io/`` headers; a test reads the installed headers,
when present, and checks that each quote still stands in them word for word.
"""

from __future__ import annotations

from ..declaration import Quote

BLKIF = "xen/include/public/io/blkif.h"
RING = "xen/include/public/io/ring.h"
XENBUS = "xen/include/public/io/xenbus.h"

# --------------------------------------------------------------------------- xenbus.h

XENBUS_STATES = Quote(
    XENBUS,
    "enum xenbus_state",
    "The state of either end of the Xenbus, i.e. the current communication status of "
    "initialisation across the bus. States here imply nothing about the state of the "
    "connection between the driver and the kernel's device layers.",
)
CLOSING = Quote(
    XENBUS,
    "enum xenbus_state",
    "Closing: The device is being closed due to an error or an unplug event.",
)

# --------------------------------------------------------------------------- blkif.h, start-up

TOOLSTACK_CREATES = Quote(
    BLKIF,
    "STATE DIAGRAMS",
    "Tool stack creates front and back nodes with state XenbusStateInitialising.",
)
BACKEND_INITWAIT = Quote(
    BLKIF,
    "STATE DIAGRAMS",
    "o Open and validate backend device. o Publish backend features and transport "
    "parameters. | | V XenbusStateInitWait",
)
FRONTEND_INITIALISED = Quote(
    BLKIF,
    "STATE DIAGRAMS",
    "o Query backend features and transport parameters. o Allocate and initialize the "
    "request ring. o Publish transport parameters that will be in effect during this "
    "connection. | | V XenbusStateInitialised",
)
BACKEND_CONNECTED = Quote(
    BLKIF,
    "STATE DIAGRAMS",
    "o Query frontend transport parameters. o Connect to the request ring and event "
    "channel. o Publish backend device properties. | | V XenbusStateConnected",
)
FRONTEND_CONNECTED = Quote(
    BLKIF,
    "STATE DIAGRAMS",
    "o Query backend device properties. o Finalize OS virtual device instance. | | V "
    "XenbusStateConnected",
)
FRONTEND_SHORTCUT = Quote(
    BLKIF,
    "STATE DIAGRAMS",
    "A frontend may transition to XenbusStateInitialised without waiting for the backend "
    "to enter XenbusStateInitWait. In this case, default transport parameters are in "
    "effect and any transport parameters published by the frontend must contain their "
    "default values.",
)
BACKEND_SHORTCUT = Quote(
    BLKIF,
    "STATE DIAGRAMS",
    "A backend may transition to XenbusStateInitialised, bypassing XenbusStateInitWait, "
    "without waiting for the frontend to first enter the XenbusStateInitialised state. "
    "In this case, default transport parameters are in effect and any transport "
    "parameters published by the backend must contain their default values.",
)
TOLERATE_PATHS = Quote(
    BLKIF,
    "STATE DIAGRAMS",
    "Drivers that support optional features and/or transport parameter negotiation must "
    "tolerate these additional state transition paths. In general this means performing "
    "the work of any skipped state transition, if it has not already been performed, in "
    "addition to the work associated with entry into the current state.",
)

# --------------------------------------------------------------------------- blkif.h, keys

INFO_BITS = Quote(
    BLKIF,
    "Backend Device Properties: info",
    "A collection of bit flags describing attributes of the backing device. The VDISK_* "
    "macros define the meaning of each bit location.",
)

DEFAULTS = Quote(
    BLKIF,
    "Feature and Parameter Negotiation",
    "Any specified default value is in effect if the corresponding XenBus node is not "
    "present in the XenStore.",
)
RING_PAGE_ORDER = Quote(
    BLKIF,
    "Frontend XenBus Nodes: ring-page-order",
    "Maximum Value: MAX(ffs(max-ring-pages) - 1, max-ring-page-order)",
)
BOTH_SCHEMES = Quote(
    BLKIF,
    "Notes (3)",
    "For full interoperability, block front and backends should publish identical ring "
    "parameters, adjusted for unit differences, to the XenStore nodes used in both "
    "schemes.",
)
SINGLE_PAGE_REF = Quote(
    BLKIF,
    "Notes (6)",
    "When there is only a single page allocated to the request ring, 'ring-ref' is used "
    "to communicate the grant reference for this page to the backend. When using a "
    "multi-page ring, the 'ring-ref' node is not created. Instead 'ring-ref0' - "
    "'ring-refN' are used.",
)
MULTI_QUEUE = Quote(
    BLKIF,
    "Multiple hardware queues/rings",
    "Frontends that are aware of this feature and wish to use it can write the key "
    '"multi-queue-num-queues" with the number they wish to use, which must be greater '
    "than zero, and no more than the value reported by the backend in "
    '"multi-queue-max-queues".',
)
NO_TOPLEVEL_WITH_QUEUES = Quote(
    BLKIF,
    "Multiple hardware queues/rings",
    "Frontends requesting two or more queues must not write the toplevel event-channel "
    "and ring-ref keys, instead writing those keys under sub-keys having the name "
    '"queue-N" where N is the integer ID of the queue/ring for which those keys belong.',
)
ONE_QUEUE_TOPLEVEL = Quote(
    BLKIF,
    "Multiple hardware queues/rings",
    "For frontends requesting just one queue, the usual event-channel and ring-ref keys "
    "are written as before",
)
FEATURE_BARRIER = Quote(
    BLKIF,
    "Backend XenBus Nodes: feature-barrier",
    'A value of "1" indicates that the backend can process requests containing the '
    "BLKIF_OP_WRITE_BARRIER request opcode. Requests of this type may still be returned "
    "at any time with the BLKIF_RSP_EOPNOTSUPP result code.",
)
FEATURE_FLUSH = Quote(
    BLKIF,
    "Backend XenBus Nodes: feature-flush-cache",
    'A value of "1" indicates that the backend can process requests containing the '
    "BLKIF_OP_FLUSH_DISKCACHE request opcode. Requests of this type may still be returned "
    "at any time with the BLKIF_RSP_EOPNOTSUPP result code.",
)
FEATURE_DISCARD = Quote(
    BLKIF,
    "Backend XenBus Nodes: feature-discard",
    'A value of "1" indicates that the backend can process requests containing the '
    "BLKIF_OP_DISCARD request opcode. Requests of this type may still be returned at any "
    "time with the BLKIF_RSP_EOPNOTSUPP result code.",
)
FEATURE_INDIRECT = Quote(
    BLKIF,
    "BLKIF_OP_INDIRECT",
    'Recognized if "feature-max-indirect-segments" in present in the backend xenbus info.',
)
FEATURE_PERSISTENT = Quote(
    BLKIF,
    "Frontend XenBus Nodes: feature-persistent",
    "Since the persistent grants protocol is compatible with the previous protocol, a "
    "frontend driver can choose to work in persistent mode even when the backend doesn't "
    "support it.",
)

# ------------------------------------------------------------------ ring.h and blkif.h, the ring

NO_FLOW_CONTROL = Quote(
    RING,
    "Macros for manipulating rings",
    "N.B. these macros do NO INTERLOCKS OR FLOW CONTROL. This is OK in 1-for-1 "
    "request-response situations where the requestor (front end) never has more than "
    "RING_SIZE()-1 outstanding requests.",
)
RING_FULL = Quote(
    RING,
    "RING_FREE_REQUESTS, RING_FULL",
    "#define RING_FREE_REQUESTS(_r) (RING_SIZE(_r) - ((_r)->req_prod_pvt - (_r)->rsp_cons)) "
    "... #define RING_FULL(_r) (RING_FREE_REQUESTS(_r) == 0)",
)
RESPONSE_ID = Quote(
    BLKIF,
    "struct blkif_request, struct blkif_response",
    "uint64_t id; /* private guest value, echoed in resp */ ... uint64_t id; /* copied "
    "from request */",
)
PUSH_AND_NOTIFY = Quote(
    RING,
    "Notification hold-off (req_event and rsp_event)",
    "Use RING_PUSH_{REQUESTS,RESPONSES}_AND_CHECK_NOTIFY(). The second argument is a "
    "boolean return value. True indicates that the receiver requires an asynchronous "
    "notification.",
)
FINAL_CHECK = Quote(
    RING,
    "Notification hold-off (req_event and rsp_event)",
    "After dequeuing requests or responses (before sleeping the connection): Use "
    "RING_FINAL_CHECK_FOR_REQUESTS() or RING_FINAL_CHECK_FOR_RESPONSES(). The second "
    "argument is a boolean return value. True indicates that there are pending messages "
    "on the ring (i.e., the connection should not be put to sleep).",
)
FRONT_RSP_EVENT = Quote(
    BLKIF,
    "Front->back and back->front notifications",
    "Frontends must set rsp_event appropriately (e.g., using RING_FINAL_CHECK_FOR_RESPONSES()).",
)
BACK_REQ_EVENT = Quote(
    BLKIF,
    "Front->back and back->front notifications",
    "Backends must set req_event appropriately (e.g., using RING_FINAL_CHECK_FOR_REQUESTS()).",
)
RING_INIT = Quote(
    RING,
    "SHARED_RING_INIT",
    "(_s)->req_prod = (_s)->rsp_prod = 0; (_s)->req_event = (_s)->rsp_event = 1;",
)
PUSH_BEFORE_INDEX = Quote(
    RING,
    "RING_PUSH_REQUESTS",
    "xen_wmb(); /* back sees requests /before/ updated producer index */",
)
EOPNOTSUPP = Quote(
    BLKIF,
    "STATUS RETURN CODES",
    "#define BLKIF_RSP_EOPNOTSUPP -2 ... #define BLKIF_RSP_ERROR -1 ... #define BLKIF_RSP_OKAY 0",
)

#: Every quote, by its name here (the docs print them; a test checks them against the
#: installed headers).
ALL: dict[str, Quote] = {
    name: value for name, value in dict(globals()).items() if isinstance(value, Quote)
}
