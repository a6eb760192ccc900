"""The model's state: its size parameters, its fields and its initial state.

Every field is tied to where the seed keeps it.  Commands (``struct xbd_command``,
the shadow array ``sc->xbd_shadow``) and bios are arrays indexed by their number;
bios are numbered in the order the disk layer submits them, so "the head of the
bio queue" is the lowest-numbered queued bio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .declaration import Field, boolean, enumeration, integer, u32
from .expr import u32_add
from .vocabulary import (
    BioKind,
    BioResult,
    BioStage,
    BlkifOp,
    BlkifStatus,
    DiskState,
    DriverState,
    DumpPc,
    DumpResult,
    FrontPc,
    IoPc,
    Place,
    RingStage,
    SuspendPc,
    XenbusState,
)


@dataclass(frozen=True)
class Sizes:
    """The bounds the model is instantiated with.

    Attributes:
        commands: commands in the shadow array (the seed has ``xbd_max_requests``,
            the ring size: at least 32).  Commands are interchangeable.
        bios: bios the disk layer submits in one run.
        ring_slots: ring entries (``RING_SIZE``); at most ``commands`` requests can be
            outstanding anyway, so a smaller ring exercises ``RING_FULL``.
        grants: grant references available to the driver.
        grants_per_request: references a command allocates before it is mapped
            (``xbd_max_request_segments``); a mapped command keeps one (one segment).
        suspends: suspend cycles the tool stack may start.
        unplugs: unplug requests the tool stack may make.
        max_users: concurrent opens of the disk.
        ring_base: the value the ring indices start from.  The seed starts at 0;
            a base just below 2**32 makes every run cross the wrap-around.
        dumps: calls the kernel dumper may make to ``xbd_dump`` (``d_dump``); each
            asks for 1 to ``commands + 1`` chunks, so one more than the commands can
            give finds ``EBUSY``.  The proofs take 1; the explorer's default runs 0.
    """

    commands: int = 2
    bios: int = 3
    ring_slots: int = 2
    grants: int = 3
    grants_per_request: int = 2
    suspends: int = 1
    unplugs: int = 1
    max_users: int = 1
    ring_base: int = 0xFFFF_FFFE
    dumps: int = 1

    @property
    def max_dump_chunks(self) -> int:
        """The most chunks one dump asks for: one more than the commands."""
        return self.commands + 1

    @property
    def no_bio(self) -> int:
        """The value of ``cmd_bio`` for a command that holds no bio."""
        return self.bios

    @property
    def max_frozen(self) -> int:
        """The largest freeze count: three softc flags and one per command."""
        return 3 + self.commands


def fields(k: Sizes) -> list[Field]:
    """The state's fields for sizes ``k``, in order."""
    n, b = k.commands, k.bios
    x = XenbusState
    return [
        # ---- xenbus and xenstore
        Field(
            "fe_state", enumeration(x), "the front end's `state` node (xenbus_set_state)", "xenbus"
        ),
        Field("be_state", enumeration(x), "the back end's `state` node", "xenbus"),
        Field(
            "fe_watch_pending",
            boolean(),
            "the back end has a watch event for the front node not yet handled (events coalesce)",
            "xenbus",
        ),
        Field(
            "be_watch_pending",
            boolean(),
            "the front end has a watch event for the back node not yet handled "
            "(xbd_backend_changed pending)",
            "xenbus",
        ),
        Field(
            "fe_seen_be",
            enumeration(x),
            "the back-end state the front end last saw (xenbus_get_otherend_state)",
            "xenbus",
        ),
        Field(
            "fe_pc",
            enumeration(FrontPc),
            "a front-end handler waiting for its part after a lock boundary",
            "xenbus",
        ),
        Field(
            "be_online",
            boolean(),
            "the tool stack has not asked to unplug (the back end's `online` node)",
            "xenbus",
        ),
        Field(
            "be_published",
            boolean(),
            "the back end's feature keys are written (it reached InitWait)",
            "xenbus",
        ),
        Field("be_barrier", boolean(), "the current back end advertises feature-barrier", "xenbus"),
        Field(
            "be_flush", boolean(), "the current back end advertises feature-flush-cache", "xenbus"
        ),
        Field(
            "fe_published",
            boolean(),
            "ring-ref(s), event-channel and protocol are written for the current ring "
            "(xbd_initialize)",
            "xenbus",
        ),
        Field(
            "transport_epoch",
            integer(0, k.suspends + 1),
            "how many times the transport parameters were written",
            "xenbus",
        ),
        # ---- the tool stack
        Field(
            "susp_pc",
            enumeration(SuspendPc),
            "the suspend cycle (xbd_suspend, xbd_resume)",
            "toolstack",
        ),
        Field(
            "suspends_left",
            integer(0, k.suspends),
            "suspends the tool stack may still start",
            "toolstack",
        ),
        Field(
            "unplugs_left",
            integer(0, k.unplugs),
            "unplugs the tool stack may still request",
            "toolstack",
        ),
        # ---- the driver (softc)
        Field("drv_state", enumeration(DriverState), "sc->xbd_state", "driver"),
        Field("users", integer(0, k.max_users), "sc->xbd_users: opens of the disk", "driver"),
        Field(
            "disk",
            enumeration(DiskState),
            "sc->xbd_disk: none, present, or gone (disk_gone)",
            "driver",
        ),
        Field("fe_barrier", boolean(), "XBDF_BARRIER in sc->xbd_flags (negotiated)", "driver"),
        Field("fe_flush", boolean(), "XBDF_FLUSH in sc->xbd_flags (negotiated)", "driver"),
        Field(
            "io_pc",
            enumeration(IoPc),
            "inside xbd_startio's loop, holding sc->xbd_io_lock",
            "driver",
        ),
        # ---- freeze and thaw
        Field("frozen", integer(0, k.max_frozen), "sc->xbd_qfrozen_cnt", "freeze"),
        Field(
            "flag_cm_shortage",
            boolean(),
            "XBDF_CM_SHORTAGE: frozen for want of a free command",
            "freeze",
        ),
        Field(
            "flag_gnt_shortage",
            boolean(),
            "XBDF_GNT_SHORTAGE: frozen for want of grant references",
            "freeze",
        ),
        Field(
            "flag_wait_idle",
            boolean(),
            "XBDF_WAIT_IDLE: frozen until BUSY drains before an ordered write",
            "freeze",
        ),
        Field(
            "gnt_callback_pending",
            boolean(),
            "a grant free-callback is registered (gnttab_request_free_callback)",
            "freeze",
        ),
        Field("panicked", boolean(), "a thaw found the count at zero (the seed panics)", "freeze"),
        # ---- commands (the shadow array)
        Field(
            "cmd_place",
            enumeration(Place),
            "the queue a command is on (low byte of cm_flags)",
            "command",
            n,
        ),
        Field(
            "cmd_stage",
            enumeration(RingStage),
            "a BUSY command's progress through the ring",
            "command",
            n,
        ),
        Field(
            "cmd_bio",
            integer(0, b),
            "the bio a command carries (cm_bp); `bios` means none",
            "command",
            n,
        ),
        Field("cmd_op", enumeration(BlkifOp), "cm_operation", "command", n),
        Field("cmd_frozen", boolean(), "XBDCF_FROZEN: the command holds a freeze", "command", n),
        Field(
            "cmd_qfreeze", boolean(), "XBDCF_Q_FREEZE: the command is single-stepped", "command", n
        ),
        Field(
            "cmd_async",
            boolean(),
            "XBDCF_ASYNC_MAPPING: its bus_dma load was deferred",
            "command",
            n,
        ),
        Field(
            "cmd_grants",
            integer(0, k.grants_per_request),
            "grant references the command holds (cm_gref_head and cm_sg_refs)",
            "command",
            n,
        ),
        Field(
            "cmd_status",
            enumeration(BlkifStatus),
            "the status of its response (cm_status)",
            "command",
            n,
        ),
        # ---- bios
        Field("bio_kind", enumeration(BioKind), "bio_cmd and BIO_ORDERED", "bio", b),
        Field("bio_stage", enumeration(BioStage), "where the bio is", "bio", b),
        Field("bio_result", enumeration(BioResult), "bio_error at biodone", "bio", b),
        Field(
            "bio_completions", integer(0, 2), "how many times biodone was called for it", "bio", b
        ),
        # ---- the shared ring (ring.h) and the grant pool
        Field("req_prod_pvt", u32(), "sc->xbd_ring.req_prod_pvt", "ring"),
        Field("req_prod", u32(), "sring->req_prod (published)", "ring"),
        Field("rsp_prod", u32(), "sring->rsp_prod (written by the back end)", "ring"),
        Field("rsp_cons", u32(), "sc->xbd_ring.rsp_cons", "ring"),
        Field("rsp_event", u32(), "sring->rsp_event: notify when rsp_prod reaches it", "ring"),
        Field(
            "irq_pending",
            boolean(),
            "the event channel has a notification for the front end",
            "ring",
        ),
        Field("grants_free", integer(0, k.grants), "grant references free in the pool", "ring"),
        # ---- the kernel dumper (xbd_dump, xbd_quiesce, xbd_dump_complete)
        Field(
            "dump_pc",
            enumeration(DumpPc),
            "where the dumper's call xbd_dump is (quiescing and queueing, or polling)",
            "dump",
        ),
        Field(
            "dumps_left",
            integer(0, k.dumps),
            "calls the kernel dumper may still make to xbd_dump",
            "dump",
        ),
        Field(
            "dump_chunks_left",
            integer(0, k.max_dump_chunks),
            "chunks xbd_dump's loop has still to queue (length left, in chunks)",
            "dump",
        ),
        Field(
            "dump_result",
            enumeration(DumpResult),
            "what the last xbd_dump returned (rc)",
            "dump",
        ),
    ]


def initial(k: Sizes, ring_base: Any) -> dict[str, Any]:
    """The state after ``xbd_attach``: both ends Initialising, nothing negotiated.

    ``ring_base`` is where the ring indices start (``k.ring_base`` concretely, any
    32-bit value symbolically).
    """
    n, b = k.commands, k.bios
    x = XenbusState
    return {
        "fe_state": x.Initialising,
        "be_state": x.Initialising,
        "fe_watch_pending": False,
        "be_watch_pending": False,
        "fe_seen_be": x.Initialising,
        "fe_pc": FrontPc.IDLE,
        "be_online": True,
        "be_published": False,
        "be_barrier": False,
        "be_flush": False,
        "fe_published": False,
        "transport_epoch": 0,
        "susp_pc": SuspendPc.RUNNING,
        "suspends_left": k.suspends,
        "unplugs_left": k.unplugs,
        "drv_state": DriverState.DISCONNECTED,
        "users": 0,
        "disk": DiskState.NONE,
        "fe_barrier": False,
        "fe_flush": False,
        "io_pc": IoPc.IDLE,
        "frozen": 0,
        "flag_cm_shortage": False,
        "flag_gnt_shortage": False,
        "flag_wait_idle": False,
        "gnt_callback_pending": False,
        "panicked": False,
        "cmd_place": (Place.FREE,) * n,
        "cmd_stage": (RingStage.NONE,) * n,
        "cmd_bio": (k.no_bio,) * n,
        "cmd_op": (BlkifOp.NONE,) * n,
        "cmd_frozen": (False,) * n,
        "cmd_qfreeze": (False,) * n,
        "cmd_async": (False,) * n,
        "cmd_grants": (0,) * n,
        "cmd_status": (BlkifStatus.OKAY,) * n,
        "bio_kind": (BioKind.READ,) * b,
        "bio_stage": (BioStage.UNSUBMITTED,) * b,
        "bio_result": (BioResult.NONE,) * b,
        "bio_completions": (0,) * b,
        "req_prod_pvt": ring_base,
        "req_prod": ring_base,
        "rsp_prod": ring_base,
        "rsp_cons": ring_base,
        "rsp_event": u32_add(ring_base, 1),
        "irq_pending": False,
        "grants_free": k.grants,
        "dump_pc": DumpPc.IDLE,
        "dumps_left": k.dumps,
        "dump_chunks_left": 0,
        "dump_result": DumpResult.NONE,
    }
