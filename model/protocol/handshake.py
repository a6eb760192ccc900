"""The XenBus handshake as blkif.h and xenbus.h state it: every state step either end
and the tool stack may take, and the keys each step publishes.

Each end writes its own ``state`` node (and the tool stack may write the back end's,
as libxl's detach does); the other end reads it whenever it likes.  Watches only say
"look again", so the protocol model has none: a rule here is about what is written,
in which order and with which values, never about when the other end looks.

A step that writes several nodes at once stands for one xenstore transaction (or a
single write): a front end may publish its transport keys alone, or in the
transaction that also writes Initialised.
"""

from __future__ import annotations

from typing import Any

from ..declaration import Param, TransitionTable
from ..expr import all_of, implies, ite, one_of
from ..vocabulary import XenbusState
from . import quotes as q
from .state import ProtocolSizes, fresh_ring, offers_default, transport_default
from .vocabulary import CONNECTED_IN_KEY_TRANSACTION, ON_RING, ReqStage, ToolstackPhase

table = TransitionTable()
step = table.step
X = XenbusState

#: The states an end may leave for Closing: any point of the start-up or Connected
#: (xenbus.h: "being closed due to an error or an unplug event").
OPEN_STATES = (X.Initialising, X.InitWait, X.Initialised, X.Connected)
FRONT_OPEN = (X.Initialising, X.Initialised, X.Connected)


def _ids(k: ProtocolSizes) -> range:
    return range(k.ids)


def carry_in_flight(s: Any, k: ProtocolSizes) -> dict[str, Any]:
    """The ring goes away: every request on it is owed again (``CARRIED``), and the
    indices start afresh.  What was in flight is never dropped."""
    stages = tuple(
        ite(one_of(s.req_stage[i], ON_RING), ReqStage.CARRIED, s.req_stage[i]) for i in _ids(k)
    )
    return {"req_stage": stages, **fresh_ring(k, k.ring_base)}


ORDER = Param("order", lambda k: range(k.max_order + 1), "`ring-page-order` (0: one page)")
QUEUES = Param("queues", lambda k: range(1, k.max_queues + 1), "`multi-queue-num-queues`")
TOPLEVEL = Param(
    "toplevel", (False, True), "the ring's keys are written at the top level, not under `queue-N/`"
)
FE_PERSISTENT = Param("persistent", (False, True), "the front end's `feature-persistent`")
MAX_ORDER = Param("max_order", lambda k: range(k.max_order + 1), "`max-ring-page-order`")
MAX_QUEUES = Param("max_queues", lambda k: range(1, k.max_queues + 1), "`multi-queue-max-queues`")
BARRIER = Param("barrier", (False, True), "`feature-barrier`")
FLUSH = Param("flush", (False, True), "`feature-flush-cache`")
DISCARD = Param("discard", (False, True), "`feature-discard`")
INDIRECT = Param("indirect", (False, True), "`feature-max-indirect-segments` present")
BE_PERSISTENT = Param("persistent", (False, True), "the back end's `feature-persistent`")
FEATURES = (BARRIER, FLUSH, DISCARD, INDIRECT, BE_PERSISTENT)


def features(p: Any) -> dict[str, Any]:
    """The back end's feature keys as the step writes them."""
    return {
        "be_barrier": p.barrier,
        "be_flush": p.flush,
        "be_discard": p.discard,
        "be_indirect": p.indirect,
        "be_persistent": p.persistent,
    }


# --------------------------------------------------------------------------- the tool stack


@step(
    event="toolstack_set_offline",
    component="toolstack",
    source=[ToolstackPhase.ATTACHED],
    dest=ToolstackPhase.UNPLUGGED,
    seed="libxl (online = 0); xenbus.h Closing",
    quote=q.CLOSING,
)
class ToolstackSetOffline:
    """The tool stack writes the back end's ``online`` = 0 alone: it asks the back end
    to close (an unplug event).  ``online`` is the tool stack's key, not blkif.h's."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}


@step(
    event="toolstack_detach",
    component="toolstack",
    source=[ToolstackPhase.ATTACHED, ToolstackPhase.UNPLUGGED],
    dest=ToolstackPhase.UNPLUGGED,
    seed="libxl device remove (xl block-detach)",
    quote=q.CLOSING,
)
class ToolstackDetach:
    """libxl's detach: ``online`` = 0 and the back end's ``state`` = Closing in one
    transaction; both ends then close.  (A forced detach writes them again.)"""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [("the back end is not closed", one_of(s.be_state, (*OPEN_STATES, X.Closing)))]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"be_state": X.Closing}


@step(
    event="toolstack_remove_front",
    component="toolstack",
    source=[ToolstackPhase.ATTACHED, ToolstackPhase.UNPLUGGED],
    seed="libxl device remove (the front end's directory deleted)",
    quote=q.TOOLSTACK_CREATES,
)
class ToolstackRemoveFront:
    """The tool stack removes the front end's directory (after both ends closed, or
    forcibly after a time-out).  A ``state`` node that is gone reads as Unknown
    (``xenbus_read_driver_state``): the front end has no step left."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"fe_state": X.Unknown}


@step(
    event="toolstack_remove_back",
    component="toolstack",
    source=[ToolstackPhase.ATTACHED, ToolstackPhase.UNPLUGGED],
    seed="libxl device remove (the back end's directory deleted)",
    quote=q.TOOLSTACK_CREATES,
)
class ToolstackRemoveBack:
    """The tool stack removes the back end's directory: its ``state`` reads as Unknown
    and the back end has no step left."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"be_state": X.Unknown}


@step(
    event="toolstack_resume",
    component="toolstack",
    source=[ToolstackPhase.ATTACHED],
    seed="resume or migration: the tool stack recreates the device",
    quote=q.TOOLSTACK_CREATES,
)
class ToolstackResume:
    """The guest resumes, perhaps on another host: the tool stack creates the front
    and back nodes anew, both Initialising, with a new back end that has published
    nothing.  The old ring is gone; every request in flight on it is owed again."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {
            "fe_state": X.Initialising,
            "be_state": X.Initialising,
            **offers_default(),
            **transport_default(),
            **carry_in_flight(s, p.k),
        }


# --------------------------------------------------------------------------- the back end


@step(
    event="backend_init_wait",
    component="backend",
    source=[X.Initialising, X.Closed],
    dest=X.InitWait,
    params=[MAX_ORDER, MAX_QUEUES, *FEATURES],
    seed="blkif.h STATE DIAGRAMS (back end, Initialising)",
    quote=q.BACKEND_INITWAIT,
)
class BackendInitWait:
    """The back end opens its device, publishes its features and transport limits and
    goes to InitWait.  From Closed this is a reconnect: the front end went back to
    Initialising (Linux's blkback ``frontend_changed`` does it)."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            (
                "a back end leaves Closed for InitWait only when the front end reconnects "
                "(is Initialising again)",
                implies(s.be_state == X.Closed, s.fe_state == X.Initialising),
            )
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"be_max_order": p.max_order, "be_max_queues": p.max_queues, **features(p)}


@step(
    event="backend_skip_init_wait",
    component="backend",
    source=[X.Initialising],
    dest=X.Initialised,
    params=list(FEATURES),
    seed="blkif.h STATE DIAGRAMS (shortcut)",
    quote=q.BACKEND_SHORTCUT,
)
class BackendSkipInitWait:
    """The shortcut blkif.h allows a back end: Initialised without InitWait, its
    transport parameters at their defaults (one page, one queue)."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"be_max_order": 0, "be_max_queues": 1, **features(p)}


@step(
    event="backend_connect",
    component="backend",
    source=[X.InitWait, X.Initialised],
    dest=X.Connected,
    params=list(FEATURES),
    seed="blkif.h STATE DIAGRAMS (back end, on the front end's Initialised)",
    quote=q.BACKEND_CONNECTED,
)
class BackendConnect:
    """The back end reads the front end's transport keys, connects to the ring and the
    event channel, publishes the device's properties (``sectors``, ``info``,
    ``sector-size``; Linux's blkback also its features here) and goes to Connected."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            ("the front end's transport keys are published", s.fe_transport),
            (
                "the front end is Initialised (or Connected, the tolerated Mini-OS path)",
                one_of(s.fe_state, (X.Initialised, X.Connected)),
            ),
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return features(p)


@step(
    event="backend_closing",
    component="backend",
    source=OPEN_STATES,
    dest=X.Closing,
    seed="xenbus.h Closing (an error, an unplug, or the front end closing)",
    quote=q.CLOSING,
)
class BackendClosing:
    """The back end closes: on its own error, on an unplug, or following the front
    end.  Any state of the start-up or Connected may be left for Closing."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}


@step(
    event="backend_closed",
    component="backend",
    source=(*OPEN_STATES, X.Closing),
    dest=X.Closed,
    seed="xenbus.h Closed",
    quote=q.XENBUS_STATES,
)
class BackendClosed:
    """The back end has released the device and is Closed (directly, or after
    Closing)."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}


# --------------------------------------------------------------------------- the front end


def negotiation(s: Any, p: Any) -> list[tuple[str, Any]]:
    """What the front end's transport keys must satisfy, whenever it writes them."""
    defaults = all_of(p.order == 0, p.queues == 1)
    return [
        (
            "before the back end's InitWait the front end's transport parameters hold their "
            "defaults (one page, one queue)",
            implies(s.be_state != X.InitWait, defaults),
        ),
        (
            "ring-page-order is at most the back end's max-ring-page-order",
            p.order <= s.be_max_order,
        ),
        (
            "multi-queue-num-queues is at most the back end's multi-queue-max-queues",
            p.queues <= s.be_max_queues,
        ),
        (
            "the top-level ring-ref and event-channel are written exactly when one queue is used",
            p.toplevel == (p.queues == 1),
        ),
    ]


def publish(s: Any, p: Any) -> dict[str, Any]:
    """The transport keys written: a fresh ring allocated and granted."""
    return {
        "fe_transport": True,
        "fe_order": p.order,
        "fe_queues": p.queues,
        "fe_toplevel": p.toplevel,
        "fe_persistent": p.persistent,
        **carry_in_flight(s, p.k),
    }


TRANSPORT = (ORDER, QUEUES, TOPLEVEL, FE_PERSISTENT)


@step(
    event="frontend_publish_transport",
    component="frontend",
    source=[X.Initialising],
    params=TRANSPORT,
    seed="blkif.h STATE DIAGRAMS (front end, on the back end's InitWait)",
    quote=q.FRONTEND_INITIALISED,
)
class FrontendPublishTransport:
    """The front end allocates its ring and writes its transport keys (ring
    references, event channel, ring order, queues, protocol), with no state change.
    Only while Initialising: the keys are in effect for the whole connection."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return negotiation(s, p)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return publish(s, p)


@step(
    event="frontend_publish_transport_initialised",
    component="frontend",
    source=[X.Initialising],
    dest=X.Initialised,
    params=TRANSPORT,
    seed="blkif.h STATE DIAGRAMS (front end); Notes (6); Multiple hardware queues",
    quote=q.FRONTEND_INITIALISED,
)
class FrontendPublishTransportInitialised:
    """The front end writes its transport keys and Initialised in one transaction."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return negotiation(s, p)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return publish(s, p)


@step(
    event="frontend_publish_transport_connected",
    component="frontend",
    source=[X.Initialising],
    dest=X.Connected,
    params=TRANSPORT,
    seed="Mini-OS init_blkfront; MirageOS blkfront.ml",
    quote=q.FRONTEND_CONNECTED,
    deviation=CONNECTED_IN_KEY_TRANSACTION,
)
class FrontendPublishTransportConnected:
    """Tolerated: the front end writes its transport keys and Connected in one
    transaction, never Initialised, before the back end connected (Mini-OS, MirageOS).
    blkif.h has the front end reach Connected after the back end's Connected; Linux's
    blkback connects the ring on the front end's Connected all the same."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return negotiation(s, p)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return publish(s, p)


@step(
    event="frontend_initialised",
    component="frontend",
    source=[X.Initialising],
    dest=X.Initialised,
    seed="blkif.h STATE DIAGRAMS (front end)",
    quote=q.FRONTEND_INITIALISED,
)
class FrontendInitialised:
    """The front end goes to Initialised after its transport keys (Linux and NetBSD
    write the keys in a transaction, then Initialised outside it)."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [("the transport keys are published before Initialised", s.fe_transport)]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}


@step(
    event="frontend_connected",
    component="frontend",
    source=[X.Initialised],
    dest=X.Connected,
    seed="blkif.h STATE DIAGRAMS (front end, on the back end's Connected)",
    quote=q.FRONTEND_CONNECTED,
)
class FrontendConnected:
    """The back end is Connected: the front end reads the device's properties,
    finishes its disk and goes to Connected."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            (
                "the back end is Connected (its device properties are published)",
                s.be_state == X.Connected,
            )
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}


@step(
    event="frontend_closing",
    component="frontend",
    source=FRONT_OPEN,
    dest=X.Closing,
    seed="xenbus.h Closing",
    quote=q.CLOSING,
)
class FrontendClosing:
    """The front end closes: on its own shutdown, an error, or the back end closing."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}


@step(
    event="frontend_closed",
    component="frontend",
    source=(*FRONT_OPEN, X.Closing),
    dest=X.Closed,
    seed="xenbus.h Closed (Linux xenbus_frontend_closed, NetBSD)",
    quote=q.XENBUS_STATES,
)
class FrontendClosed:
    """The front end is Closed, after Closing or directly (Linux 6.1 and NetBSD answer
    the back end's Closing with Closed)."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}


@step(
    event="frontend_reconnect",
    component="frontend",
    source=[X.Closed],
    dest=X.Initialising,
    seed="Mini-OS shutdown_blkfront; MirageOS; Linux blkback frontend_changed",
    quote=q.TOLERATE_PATHS,
)
class FrontendReconnect:
    """The front end starts over: Closed, then Initialising; the back end goes back to
    InitWait and a new start-up follows.  The old ring and keys are gone; what was in
    flight is owed again."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return []

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {**transport_default(), **carry_in_flight(s, p.k)}


@step(
    event="frontend_read_properties",
    component="frontend",
    source=(*FRONT_OPEN, X.Closing),
    seed="blkif.h STATE DIAGRAMS (front end, Query backend device properties)",
    quote=q.FRONTEND_CONNECTED,
)
class FrontendReadProperties:
    """The front end reads ``sectors``, ``info``, ``sector-size`` or a feature of the
    back end's device: only once the back end is Connected."""

    @staticmethod
    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        return [
            (
                "the back end is Connected: its device properties are published",
                s.be_state == X.Connected,
            )
        ]

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {}
