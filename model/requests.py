"""The request path: bios in, commands through the ring, responses out.

Component ``io``: its control field ``io_pc`` says whether the driver is inside
``xbd_startio``'s loop.  Every step here runs under ``sc->xbd_io_lock``; the steps
that take the lock from outside (a bio arriving, an interrupt, a callback) require
``io_pc == IDLE`` and the loop's iterations are steps of their own, so the back end,
xenstore and the tool stack interleave with them as they do with the real loop.

Where the seed's logic departs from the protocol, this is the protocol as it should
be; the departures are findings (docs/findings/), not part of the specification:
a failed mapping releases the command's freeze and grants, a deferred mapping always
publishes its request, a bio the back end cannot serve is failed without stalling
the queue, and a suspend waits for deferred mappings as well as for the ring.
"""

from __future__ import annotations

from typing import Any

from . import actions as a
from .declaration import Param, TransitionTable
from .draft import Draft
from .expr import all_of, any_of, derived, ite, negate, per_state, u32_add, u32_lt, u32_sub
from .vocabulary import (
    BioKind,
    BioResult,
    BioStage,
    BlkifOp,
    BlkifStatus,
    DiskState,
    Dma,
    DriverState,
    IoPc,
    Place,
    RingStage,
    XenbusState,
)

table = TransitionTable()
step = table.step

BIO = Param("bio", lambda k: range(k.bios), "the bio's number (submission order)")
KIND = Param("kind", tuple(BioKind), "what the disk layer asks for")
CMD = Param("cmd", lambda k: range(k.commands), "the command's index in the shadow array")
DMA = Param("dma", tuple(Dma), "how bus_dma answers the load")
STATUS = Param("status", tuple(BlkifStatus), "the response's status")

IDLE, STARTIO = IoPc.IDLE, IoPc.STARTIO


# --------------------------------------------------------------------------- predicates


@per_state
def may_dispatch(s: Any, k: Any) -> Any:
    """The loop of ``xbd_startio`` may take another command: connected, the ring not
    full, the queue not frozen (computed once per state: most of the loop's guards
    ask)."""
    return all_of(s.drv_state == DriverState.CONNECTED, negate(a.ring_full(s, k)), s.frozen == 0)


@derived
def rejected(s: Any, b: int) -> Any:
    """Bio ``b`` asks for what this back end cannot do: an unsupported command, or a
    flush when neither flush nor barrier was negotiated (a derived field: memos key on
    the answer, not on the bio's kind)."""
    kind = s.bio_kind[b]
    return any_of(
        kind == BioKind.UNSUPPORTED,
        all_of(kind == BioKind.FLUSH, negate(s.fe_flush), negate(s.fe_barrier)),
    )


@derived
def single_stepped(s: Any, b: int) -> Any:
    """Bio ``b`` is an ordered write without barrier support (``XBDCF_Q_FREEZE``; a
    derived field, as :func:`rejected`)."""
    return all_of(s.bio_kind[b] == BioKind.ORDERED_WRITE, negate(s.fe_barrier))


def operation_for(s: Any, b: int) -> Any:
    """The ``BLKIF_OP_*`` ``xbd_bio_command`` chooses for bio ``b``."""
    kind = s.bio_kind[b]
    flush_op = ite(s.fe_flush, BlkifOp.FLUSH_DISKCACHE, BlkifOp.WRITE_BARRIER)
    ordered_op = ite(s.fe_barrier, BlkifOp.WRITE_BARRIER, BlkifOp.WRITE)
    return ite(
        kind == BioKind.READ,
        BlkifOp.READ,
        ite(kind == BioKind.WRITE, BlkifOp.WRITE, ite(kind == BioKind.FLUSH, flush_op, ordered_op)),
    )


@per_state
def next_bio(s: Any, b: int) -> Any:
    """The loop would take bio ``b`` next: nothing on READY, ``b`` heads the bio queue."""
    return all_of(negate(a.some_command_at(s, Place.READY)), a.is_head_bio(s, b))


def has_resources(s: Any, k: Any, c: int) -> Any:
    """Command ``c`` is free and the grant pool can give it its references."""
    return all_of(s.cmd_place[c] == Place.FREE, s.grants_free >= k.grants_per_request)


def may_send_bio(s: Any, p: Any) -> Any:
    """The loop can send the head bio ``p.bio`` with command ``p.cmd`` now (an ordered
    write without barrier support only when nothing is in flight)."""
    return _may_send(s, p.k, p.bio, p.cmd)


@per_state
def _may_send(s: Any, k: Any, b: int, c: int) -> Any:
    """:func:`may_send_bio` for bio ``b`` and command ``c``, once per state: the
    ``(bio, cmd)`` pair's instances of StartioSendBio and StartioSendBioFails (one for
    each ``dma``) all ask it."""
    return all_of(
        may_dispatch(s, k),
        next_bio(s, b),
        negate(rejected(s, b)),
        has_resources(s, k, c),
        negate(all_of(single_stepped(s, b), a.some_command_at(s, Place.BUSY))),
    )


def loads_at_once_in_dump(s: Any, p: Any) -> Any:
    """During a kernel dump every bus_dma load answers at once.  An abstraction, not the
    seed's guarantee: a deferred load's callback, or a failure's, would come from a
    thread the stopped system does not run, and ``xbd_quiesce`` waits for BUSY only (as
    ``xbd_suspend`` does: *suspend-ignores-deferred-mappings*), so the model leaves
    such a dump out rather than state what the seed cannot do."""
    return any_of(a.guest_runs(s), p.dma == Dma.IMMEDIATE)


def bind(d: Draft, s: Any, k: Any, b: int, c: int) -> None:
    """The first half of ``xbd_bio_command``: command ``c`` takes bio ``b``."""
    d.set_at("bio_stage", b, BioStage.HELD)
    d.set_at("cmd_bio", c, b)
    d.set_at("cmd_op", c, operation_for(s, b))
    d.set_at("cmd_qfreeze", c, single_stepped(s, b))
    d.set_at("cmd_grants", c, k.grants_per_request)
    d.grants_free = d.grants_free - k.grants_per_request


def send(d: Draft, k: Any, c: int, dma: Dma) -> None:
    """``xbd_startio``'s single-step freeze, then ``xbd_queue_request``."""
    a.cm_freeze(d, c, when=d.cmd_qfreeze[c])
    if dma == Dma.IMMEDIATE:
        a.queue_on_ring(d, k, c)
    else:
        d.set_at("cmd_place", c, Place.NONE)
        d.set_at("cmd_async", c, True)
        a.cm_freeze(d, c)


# --------------------------------------------------------------------------- bios arrive


@step(
    event="strategy",
    component="io",
    source=[IDLE],
    dest=STARTIO,
    params=[BIO, KIND],
    seed="xbd_strategy",
    requires=a.GUEST,
)
class AcceptBio:
    """The disk layer submits bio ``bio`` to an open disk: it joins the bio queue and
    the driver runs ``xbd_startio``.  Bios are submitted in number order."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            s.bio_stage[p.bio] == BioStage.UNSUBMITTED,
            *(s.bio_stage[j] != BioStage.UNSUBMITTED for j in range(p.bio)),
            s.users > 0,
            s.disk == DiskState.PRESENT,
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.set_at("bio_stage", p.bio, BioStage.QUEUED)
        d.set_at("bio_kind", p.bio, p.kind)
        return d.changes


# --------------------------------------------------------------------------- the startio loop


@step(
    event="startio_done",
    component="io",
    source=[STARTIO],
    dest=IDLE,
    seed="xbd_startio, xbd_flush_requests",
)
class StartioDone:
    """The loop ends (not connected, ring full, queue frozen, or nothing to send) and
    the requests written so far are published."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return negate(
            all_of(
                may_dispatch(s, p.k),
                any_of(a.some_command_at(s, Place.READY), a.some_bio_queued(s)),
            )
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        a.publish(d)
        return d.changes


@step(
    event="send_ready",
    component="io",
    source=[STARTIO],
    params=[CMD, DMA],
    seed="xbd_startio, xbd_queue_request, xbd_queue_cb",
)
class StartioSendReady:
    """The loop takes the single-stepped command waiting on READY and sends it."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            p.dma != Dma.FAILED,
            loads_at_once_in_dump(s, p),
            may_dispatch(s, p.k),
            s.cmd_place[p.cmd] == Place.READY,
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        send(d, p.k, p.cmd, p.dma)
        return d.changes


@step(
    event="send_ready",
    component="io",
    source=[STARTIO],
    params=[CMD, DMA],
    seed="xbd_startio, xbd_queue_request, xbd_queue_cb",
)
class StartioSendReadyFails:
    """The READY command's mapping fails at once: its bio fails with EIO and the loop
    goes on, as the seed's does on FreeBSD: without ``BUS_DMA_NOWAIT`` an immediate
    failure is not ``ENOMEM``, so ``bus_dmamap_load_bio`` reports it through the
    callback and returns 0."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            p.dma == Dma.FAILED,
            a.guest_runs(s),
            may_dispatch(s, p.k),
            s.cmd_place[p.cmd] == Place.READY,
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        a.cm_freeze(d, p.cmd, when=d.cmd_qfreeze[p.cmd])
        a.fail_mapping(d, p.k, p.cmd)
        return d.changes


@step(
    event="send_bio",
    component="io",
    source=[STARTIO],
    params=[BIO, CMD, DMA],
    seed="xbd_startio, xbd_bio_command, xbd_queue_request, xbd_queue_cb",
)
class StartioSendBio:
    """The loop takes the head bio, a free command and its grants, and sends it (an
    ordered write without barrier support only when nothing is in flight)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(p.dma != Dma.FAILED, loads_at_once_in_dump(s, p), may_send_bio(s, p))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        bind(d, s, p.k, p.bio, p.cmd)
        send(d, p.k, p.cmd, p.dma)
        return d.changes


@step(
    event="send_bio",
    component="io",
    source=[STARTIO],
    params=[BIO, CMD, DMA],
    seed="xbd_startio, xbd_bio_command, xbd_queue_request, xbd_queue_cb",
)
class StartioSendBioFails:
    """As StartioSendBio, but the mapping fails at once: the bio fails with EIO and the
    loop goes on, as the seed's does (without ``BUS_DMA_NOWAIT`` the failure comes
    through the callback, and ``bus_dmamap_load_bio`` returns 0)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(p.dma == Dma.FAILED, a.guest_runs(s), may_send_bio(s, p))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        bind(d, s, p.k, p.bio, p.cmd)
        a.cm_freeze(d, p.cmd, when=d.cmd_qfreeze[p.cmd])
        a.fail_mapping(d, p.k, p.cmd)
        return d.changes


@step(
    event="wait_idle",
    component="io",
    source=[STARTIO],
    dest=IDLE,
    params=[BIO, CMD],
    seed="xbd_bio_command (single step)",
)
class StartioWaitIdle:
    """An ordered write without barrier support meets requests in flight: its command
    waits on READY and the queue freezes (WAIT_IDLE) until BUSY drains."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            may_dispatch(s, p.k),
            next_bio(s, p.bio),
            single_stepped(s, p.bio),
            has_resources(s, p.k, p.cmd),
            a.some_command_at(s, Place.BUSY),
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        bind(d, s, p.k, p.bio, p.cmd)
        d.set_at("cmd_place", p.cmd, Place.READY)
        a.freeze(d, "flag_wait_idle")
        a.publish(d)
        return d.changes


@step(
    event="reject_bio",
    component="io",
    source=[STARTIO],
    params=[BIO],
    seed="xbd_bio_command (default case, BIO_FLUSH)",
)
class StartioReject:
    """The head bio asks for what the back end cannot do: it fails with EOPNOTSUPP and
    the loop goes on."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(may_dispatch(s, p.k), next_bio(s, p.bio), rejected(s, p.bio))

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.set_at("bio_stage", p.bio, BioStage.DONE)
        d.set_at("bio_result", p.bio, BioResult.EOPNOTSUPP)
        d.set_at("bio_completions", p.bio, s.bio_completions[p.bio] + 1)
        return d.changes


@step(
    event="command_shortage",
    component="io",
    source=[STARTIO],
    dest=IDLE,
    params=[BIO],
    seed="xbd_bio_command (XBDF_CM_SHORTAGE)",
)
class StartioCommandShortage:
    """No command is free for the head bio: the queue freezes until one is freed."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            may_dispatch(s, p.k),
            next_bio(s, p.bio),
            negate(rejected(s, p.bio)),
            negate(a.some_command_at(s, Place.FREE)),
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        a.freeze(d, "flag_cm_shortage")
        a.publish(d)
        return d.changes


@step(
    event="grant_shortage",
    component="io",
    source=[STARTIO],
    dest=IDLE,
    params=[BIO],
    seed="xbd_bio_command (XBDF_GNT_SHORTAGE)",
)
class StartioGrantShortage:
    """A command is free but the grant pool is short: a free-callback is registered
    and the queue freezes until it fires."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            may_dispatch(s, p.k),
            next_bio(s, p.bio),
            negate(rejected(s, p.bio)),
            a.some_command_at(s, Place.FREE),
            s.grants_free < p.k.grants_per_request,
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.gnt_callback_pending = True
        a.freeze(d, "flag_gnt_shortage")
        a.publish(d)
        return d.changes


# --------------------------------------------------------------------------- callbacks


@step(
    event="dma_callback",
    component="io",
    source=[IDLE],
    params=[CMD],
    seed="xbd_queue_cb (deferred), xbd_flush_requests",
    requires=a.GUEST,
)
class DeferredMappingDone:
    """A deferred bus_dma load completes: the request goes on the ring and is
    published at once (no startio will do it: the queue is frozen)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return s.cmd_place[p.cmd] == Place.NONE

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        a.queue_on_ring(d, p.k, p.cmd)
        a.publish(d)
        return d.changes


@step(
    event="dma_callback_error",
    component="io",
    source=[IDLE],
    dest=STARTIO,
    params=[CMD],
    seed="xbd_queue_cb (deferred, error)",
    requires=a.GUEST,
)
class DeferredMappingFails:
    """A deferred bus_dma load fails: the bio fails with EIO, the command is freed with
    its freeze and grants, and the queue restarts (the seed neither thaws nor restarts)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return s.cmd_place[p.cmd] == Place.NONE

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        a.fail_mapping(d, p.k, p.cmd)
        return d.changes


@step(
    event="grants_returned",
    component="io",
    source=[IDLE],
    dest=STARTIO,
    seed="xbd_restart_queue_callback",
    requires=a.GUEST,
)
class GrantCallback:
    """Enough grant references are free again: the callback thaws GNT_SHORTAGE and
    restarts the queue."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.gnt_callback_pending, s.grants_free >= p.k.grants_per_request)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.gnt_callback_pending = False
        a.thaw(d, "flag_gnt_shortage")
        return d.changes


# --------------------------------------------------------------------------- the back end's side


@step(
    event="backend_consume",
    component="backend",
    source=[XenbusState.Connected, XenbusState.Closing],
    params=[CMD],
    seed="blkif.h (back end reads a request)",
)
class BackendConsume:
    """The back end takes a published request off the ring."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return s.cmd_stage[p.cmd] == RingStage.PUBLISHED

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.set_at("cmd_stage", p.cmd, RingStage.CONSUMED)
        return d.changes


@step(
    event="backend_respond",
    component="backend",
    source=[XenbusState.Connected, XenbusState.Closing],
    params=[CMD, STATUS],
    seed="blkif.h, ring.h RING_PUSH_RESPONSES_AND_CHECK_NOTIFY",
)
class BackendRespond:
    """The back end answers a request it took, in any order and with any status, and
    notifies the front end if ``rsp_event`` asks for it."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return s.cmd_stage[p.cmd] == RingStage.CONSUMED

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        old = s.rsp_prod
        new = u32_add(old, 1)
        d.rsp_prod = new
        d.set_at("cmd_stage", p.cmd, RingStage.ANSWERED)
        d.set_at("cmd_status", p.cmd, p.status)
        notify = u32_lt(u32_sub(new, s.rsp_event), u32_sub(new, old))
        d.irq_pending = any_of(s.irq_pending, notify)
        return d.changes


# --------------------------------------------------------------------------- the interrupt


@step(
    event="interrupt",
    component="io",
    source=[IDLE],
    dest=STARTIO,
    seed="xbd_int, xbd_bio_complete, xbd_free_command",
    requires=a.GUEST,
)
class Interrupt:
    """The front end takes every response on the ring: each command releases its
    freeze and grants, its bio completes with the response's status, the command is
    freed (a dump chunk goes on COMPLETE instead); ``rsp_event`` asks for the next
    one; WAIT_IDLE thaws when BUSY is empty; then ``xbd_startio`` runs."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.irq_pending, s.drv_state != DriverState.DISCONNECTED)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        a.service_ring(d, s, p.k)
        d.irq_pending = False
        return d.changes


@step(
    event="interrupt",
    component="io",
    source=[IDLE],
    seed="xbd_int (disconnected)",
    requires=a.GUEST,
)
class InterruptIgnored:
    """An interrupt while disconnected is dropped: ``xbd_int`` returns at once.

    No response can be pending then (the ring is new and nothing was sent on it since
    the resume, and a suspend drains the ring first), so such an interrupt is a spurious
    one: the event channel is bound from ``xbd_alloc_ring`` on (``fe_published``), and a
    channel may be raised with no response behind it (an event is only a hint).  This
    step once waited for ``irq_pending`` as well, which no state with the driver
    disconnected has: it was dead, and the seed's early return went untested."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.drv_state == DriverState.DISCONNECTED, s.fe_published)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"irq_pending": False}
