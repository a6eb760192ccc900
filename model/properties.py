"""The model's named properties: invariants, step properties and progress properties.

Names follow one scheme: a bare noun phrase for what users care about
(``FreezeAccounting``, ``NoLostIO``); ``..._ok`` for well-formedness;
``Aux...`` for invariants that exist to make the others inductive.  Each docstring
opens with one sentence saying what the property means, then why it matters and
where it comes from; each conjunct has a comment.
"""

from __future__ import annotations

from typing import Any

from . import actions as a
from .declaration import Invariant, Progress, StepProperty
from .expr import (
    all_of,
    any_of,
    count_true,
    implies,
    ite,
    negate,
    one_of,
    u32_add,
    u32_le,
    u32_of,
    u32_sub,
)
from .vocabulary import (
    DRIVER_STEPS,
    BioResult,
    BioStage,
    BlkifOp,
    DiskState,
    DriverState,
    DumpPc,
    FrontPc,
    IoPc,
    Place,
    RingStage,
    SuspendPc,
    XenbusState,
)

X = XenbusState


# --------------------------------------------------------------------------- the queue


def freeze_accounting(s: Any, k: Any) -> Any:
    """The freeze count equals the softc freeze flags set plus the commands holding a freeze.

    ``xbd_startio`` dispatches only while ``xbd_qfrozen_cnt`` is zero, and every thaw
    decrements it; if the count and its reasons drift apart the queue either stalls
    for ever or thaws too early.  Source: ``xbd_freeze``, ``xbd_thaw``,
    ``xbd_cm_freeze``, ``xbd_cm_thaw``.
    """
    flags = count_true(s.flag_cm_shortage, s.flag_gnt_shortage, s.flag_wait_idle)
    return s.frozen == flags + count_true(*s.cmd_frozen)


def no_thaw_underflow(s: Any, k: Any) -> Any:
    """No thaw has found the freeze count at zero (the seed panics there).

    Source: ``xbd_thaw`` ("Thaw with flag 0x%x while not frozen").
    """
    return negate(s.panicked)


def queue_exclusive(s: Any, k: Any) -> Any:
    """No two commands carry the same bio, and a command carrying a bio is on a queue
    other than FREE (or waits for its mapping); outside a dump, a command off the free
    list carries a bio (a dump's chunks carry none: ``cm_bp`` is NULL).

    The seed's queue helpers panic when a command is put on a second queue; a bio
    carried twice would be sent and completed twice.  Source: ``block.h``
    (``xbd_enqueue_cm``, ``xbd_remove_cm``), ``xbd_bio_command``.
    """
    n = k.commands
    return all_of(
        # distinct commands never carry the same bio
        *(
            implies(s.cmd_bio[c] != k.no_bio, s.cmd_bio[c] != s.cmd_bio[e])
            for c in range(n)
            for e in range(c + 1, n)
        ),
        # a command carrying a bio is not free
        *(implies(s.cmd_bio[c] != k.no_bio, s.cmd_place[c] != Place.FREE) for c in range(n)),
        # outside a dump, a command carries a bio exactly when it is not free
        *(
            implies(
                s.dump_pc == DumpPc.IDLE,
                (s.cmd_bio[c] != k.no_bio) == (s.cmd_place[c] != Place.FREE),
            )
            for c in range(n)
        ),
    )


def command_conservation(s: Any, k: Any) -> Any:
    """Every command is free, waiting, on the ring or being mapped, and each place
    holds exactly what it should: none is lost to a place no path leaves.

    A command freed with a freeze or grants still attached, or left on no queue, is
    a command (and often a freeze) lost for good.  Source: ``xbd_free_command``,
    ``xbd_queue_cb``, ``xbd_bio_command``, ``block.h``.
    """
    parts = []
    for c in range(k.commands):
        place, stage = s.cmd_place[c], s.cmd_stage[c]
        parts += [
            # a free command holds nothing
            implies(
                place == Place.FREE,
                all_of(
                    negate(s.cmd_frozen[c]),
                    negate(s.cmd_qfreeze[c]),
                    negate(s.cmd_async[c]),
                    s.cmd_grants[c] == 0,
                    s.cmd_op[c] == BlkifOp.NONE,
                ),
            ),
            # exactly the BUSY commands are on the ring
            (place == Place.BUSY) == (stage != RingStage.NONE),
            # a BUSY command holds the grant of its one segment
            implies(place == Place.BUSY, s.cmd_grants[c] == 1),
            # a command off every queue is waiting for its deferred mapping, frozen
            implies(
                place == Place.NONE,
                all_of(s.cmd_async[c], s.cmd_frozen[c], s.cmd_grants[c] == k.grants_per_request),
            ),
            # a READY command is a single-stepped write waiting for the ring to drain,
            # or a dump's chunk (no bio, not single-stepped) waiting for xbd_startio
            implies(
                place == Place.READY,
                all_of(
                    s.cmd_qfreeze[c] == (s.cmd_bio[c] != k.no_bio),
                    negate(s.cmd_frozen[c]),
                    s.cmd_op[c] == BlkifOp.WRITE,
                    s.cmd_grants[c] == k.grants_per_request,
                ),
            ),
            # a command on COMPLETE is a dump's answered chunk: its grant ended
            implies(
                place == Place.COMPLETE,
                all_of(
                    s.cmd_bio[c] == k.no_bio,
                    negate(s.cmd_frozen[c]),
                    negate(s.cmd_qfreeze[c]),
                    negate(s.cmd_async[c]),
                    s.cmd_grants[c] == 0,
                    s.cmd_op[c] == BlkifOp.WRITE,
                ),
            ),
            # a freeze is held by a single-stepped command or one whose mapping was
            # deferred, until its response (or its mapping's failure)
            implies(
                s.cmd_frozen[c],
                all_of(
                    one_of(place, (Place.BUSY, Place.NONE)),
                    any_of(s.cmd_qfreeze[c], s.cmd_async[c]),
                ),
            ),
            # a deferred mapping's freeze is held until the command is freed
            implies(s.cmd_async[c], s.cmd_frozen[c]),
        ]
    return all_of(*parts)


def single_step_ordering(s: Any, k: Any) -> Any:
    """An ordered write without barrier support is on the ring alone, after every bio
    before it completed; nothing after it is sent until it completes.

    Without a barrier the back end may reorder requests; single-stepping is how the
    front end keeps the write's ordering promise.  Source: ``xbd_bio_command``
    (``XBDCF_Q_FREEZE``, ``XBDF_WAIT_IDLE``), ``xbd_startio``.
    """
    n = k.commands
    parts = []
    for c in range(n):
        out = any_of(s.cmd_place[c] == Place.BUSY, s.cmd_place[c] == Place.NONE)
        stepped = all_of(out, s.cmd_qfreeze[c])
        parts += [
            # alone: no other command is on the ring or being mapped
            implies(
                stepped,
                all_of(
                    *(
                        negate(any_of(s.cmd_place[e] == Place.BUSY, s.cmd_place[e] == Place.NONE))
                        for e in range(n)
                        if e != c
                    )
                ),
            ),
            # every earlier bio has completed
            implies(
                stepped,
                all_of(
                    *(
                        implies(b < s.cmd_bio[c], s.bio_stage[b] == BioStage.DONE)
                        for b in range(k.bios)
                    )
                ),
            ),
        ]
    return all_of(*parts)


def ring_bounds(s: Any, k: Any) -> Any:
    """Outstanding requests never exceed the ring's size, modulo 2**32.

    ``ring.h`` has no flow control: it is correct only while the producer never runs
    more than a ring's worth ahead of the responses it consumed.  Source: ``ring.h``
    (``RING_FULL``), ``xbd_startio``, ``xbd_queue_cb``.
    """
    return all_of(
        # requests not yet answered and consumed fit in the ring
        u32_le(u32_sub(s.req_prod_pvt, s.rsp_cons), k.ring_slots),
        # published requests and produced responses lie inside that window
        u32_le(u32_sub(s.req_prod, s.rsp_cons), u32_sub(s.req_prod_pvt, s.rsp_cons)),
        u32_le(u32_sub(s.rsp_prod, s.rsp_cons), u32_sub(s.req_prod, s.rsp_cons)),
    )


def aux_ring_reservation(s: Any, k: Any) -> Any:
    """A command whose mapping was deferred has a ring slot kept for it.

    ``xbd_queue_cb`` writes at ``req_prod_pvt`` without checking ``RING_FULL``: the
    slot was free when ``xbd_startio`` sent the command, and the freeze it holds stops
    anything else from taking it.  Supports RingBounds.
    """
    deferred = a.commands_at(s, Place.NONE)
    on_ring = u32_sub(s.req_prod_pvt, s.rsp_cons)
    return u32_le(u32_add(on_ring, u32_of(count_true(*deferred))), k.ring_slots)


def aux_ring_accounting(s: Any, k: Any) -> Any:
    """The ring indices count the commands at each ring stage.

    This ties ``ring.h``'s free-running indices to the commands the driver tracks; it
    is what makes RingBounds and NoLostWakeup inductive.
    """
    stages = s.cmd_stage
    return all_of(
        # req_prod_pvt - rsp_cons: every command on the ring
        u32_sub(s.req_prod_pvt, s.rsp_cons)
        == u32_of(count_true(*(st != RingStage.NONE for st in stages))),
        # req_prod_pvt - req_prod: the ones not yet published
        u32_sub(s.req_prod_pvt, s.req_prod)
        == u32_of(count_true(*(st == RingStage.PRIVATE for st in stages))),
        # rsp_prod - rsp_cons: the answered ones not yet consumed
        u32_sub(s.rsp_prod, s.rsp_cons)
        == u32_of(count_true(*(st == RingStage.ANSWERED for st in stages))),
        # the front end always asks to be told of the next response
        s.rsp_event == u32_add(s.rsp_cons, 1),
    )


def no_lost_wakeup(s: Any, k: Any) -> Any:
    """Whenever a response waits on the ring, an interrupt is pending for it.

    A response without a notification is never seen unless something else wakes the
    driver: a hang.  Source: ``ring.h`` (``RING_FINAL_CHECK_FOR_RESPONSES``,
    ``rsp_event``), ``xbd_int``.
    """
    return implies(s.rsp_prod != s.rsp_cons, s.irq_pending)


def no_unpublished_request(s: Any, k: Any) -> Any:
    """Outside ``xbd_startio``'s loop every request written on the ring is published.

    A request the back end cannot see is never answered; with the queue frozen on
    it, nothing else is sent either.  Source: ``xbd_startio``, ``xbd_queue_cb``,
    ``xbd_flush_requests``.
    """
    return implies(s.io_pc == IoPc.IDLE, s.req_prod == s.req_prod_pvt)


# --------------------------------------------------------------------------- connection


def published_before_initialised(s: Any, k: Any) -> Any:
    """The front end is Initialised or Connected only with its transport keys written.

    The back end reads ring-ref(s), event-channel and protocol when it sees
    Initialised.  Source: ``blkif.h`` state diagram step 3, ``xbd_initialize``.
    """
    return implies(one_of(s.fe_state, (X.Initialised, X.Connected)), s.fe_published)


def backend_connected_after_publish(s: Any, k: Any) -> Any:
    """The back end is Connected only after the front end published its transport.

    Source: ``blkif.h`` state diagram step 4.
    """
    return implies(s.be_state == X.Connected, s.fe_published)


def io_needs_connection(s: Any, k: Any) -> Any:
    """A request is on the ring or being mapped only while the driver is connected or
    draining for a suspend, over a ring it published.

    Source: ``xbd_startio`` (``XBD_STATE_CONNECTED``), ``xbd_suspend``, ``xbd_free``.
    """
    return implies(
        a.dispatched(s) > 0, all_of(s.drv_state != DriverState.DISCONNECTED, s.fe_published)
    )


def feature_soundness(s: Any, k: Any) -> Any:
    """No barrier or flush request is sent unless the back end now connected
    advertised it.

    A back end that did not advertise an operation fails it (EOPNOTSUPP) or worse;
    after a migration the new back end may offer less.  Source: ``blkif.h``
    (feature-barrier, feature-flush-cache), ``xbd_connect``.
    """
    parts = []
    for c in range(k.commands):
        out = any_of(s.cmd_place[c] == Place.BUSY, s.cmd_place[c] == Place.NONE)
        parts += [
            implies(all_of(out, s.cmd_op[c] == BlkifOp.WRITE_BARRIER), s.be_barrier),
            implies(all_of(out, s.cmd_op[c] == BlkifOp.FLUSH_DISKCACHE), s.be_flush),
        ]
    return all_of(*parts)


def aux_negotiated_features(s: Any, k: Any) -> Any:
    """While the driver may send requests (or is about to), the features it negotiated
    are the current back end's.

    Supports FeatureSoundness.  Source: ``xbd_connect``.
    """
    live = any_of(s.drv_state != DriverState.DISCONNECTED, s.fe_pc == FrontPc.CONNECTING)
    return all_of(
        implies(all_of(live, s.fe_barrier), s.be_barrier),
        implies(all_of(live, s.fe_flush), s.be_flush),
    )


def close_only_when_unused(s: Any, k: Any) -> Any:
    """The front end reaches Closed only with no users and its disk gone.

    Closing under an open disk loses its users' I/O.  Source: ``xbd_closing``,
    ``xbd_close``, ``xbd_backend_changed`` (Closing).
    """
    return implies(s.fe_state == X.Closed, all_of(s.users == 0, s.disk == DiskState.NONE))


# --------------------------------------------------------------------------- I/O


def no_lost_io(s: Any, k: Any) -> Any:
    """Every bio accepted is queued, carried by exactly one command, or completed
    exactly once.

    The disk layer waits for every bio it submits; one never completed hangs its
    caller, one completed twice corrupts it.  Source: ``xbd_strategy``,
    ``xbd_bio_complete``, ``biodone``; ``xbd_free`` and ``xbd_resume`` (suspend).
    """
    parts = []
    for b in range(k.bios):
        stage = s.bio_stage[b]
        holders = count_true(*(s.cmd_bio[c] == b for c in range(k.commands)))
        parts += [
            # a carried bio has exactly one command, any other bio none
            holders == count_true(stage == BioStage.HELD),
            # completed exactly once, and only when done, with a result
            s.bio_completions[b] == count_true(stage == BioStage.DONE),
            (stage == BioStage.DONE) == (s.bio_result[b] != BioResult.NONE),
        ]
    return all_of(*parts)


# --------------------------------------------------------------------------- strengthening


def aux_suspend_phase(s: Any, k: Any) -> Any:
    """The driver is SUSPENDED exactly while a suspend is in progress, and a completed
    suspend has nothing in flight.

    Source: ``xbd_suspend``, ``xbd_resume``.
    """
    return all_of(
        # SUSPENDED is the driver's side of the tool stack's suspend
        (s.susp_pc != SuspendPc.RUNNING) == (s.drv_state == DriverState.SUSPENDED),
        # the suspend completed only once the ring and bus_dma were drained
        implies(s.susp_pc == SuspendPc.SUSPENDED, a.dispatched(s) == 0),
        # a suspend starts (and stays) on a connected, plugged device with no handler busy
        implies(
            s.susp_pc != SuspendPc.RUNNING,
            all_of(s.fe_pc == FrontPc.IDLE, s.fe_state == X.Connected, s.be_online),
        ),
    )


def aux_no_suspend_while_closing(s: Any, k: Any) -> Any:
    """No suspend is in progress while the device is closing (either end Closing or
    Closed, the front end having seen Closing, a closing handler, a withering disk).

    Supports the suspend invariants (a suspend needs a connected device).  Source:
    ``blkif.h`` (closing), ``xbd_backend_changed``, ``xbd_suspend``.
    """
    closing = any_of(
        one_of(s.be_state, (X.Closing, X.Closed)),
        one_of(s.fe_state, (X.Closing, X.Closed)),
        one_of(s.fe_seen_be, (X.Closing, X.Closed)),
        s.fe_pc == FrontPc.CLOSING,
        s.disk == DiskState.GONE,
    )
    return implies(closing, s.susp_pc == SuspendPc.RUNNING)


def aux_lifecycle(s: Any, k: Any) -> Any:
    """The connection's stages come in order: the back end published before the driver
    connects, the front end initialises only while disconnected, and a front-end
    handler waiting for its second half is in the state its first half left.

    Source: ``xbd_initialize``, ``xbd_connect``, ``xbd_closing``.
    """
    return all_of(
        # a published back end has left Initialising; a waiting or connected one published
        implies(s.be_published, s.be_state != X.Initialising),
        implies(one_of(s.be_state, (X.InitWait, X.Initialised, X.Connected)), s.be_published),
        # a driver that is (or is about to be) connected has both ends published
        implies(
            any_of(s.drv_state != DriverState.DISCONNECTED, s.fe_pc == FrontPc.CONNECTING),
            all_of(s.be_published, s.fe_published),
        ),
        # the front end initialises only while the driver is disconnected
        implies(
            s.fe_state == X.Initialising,
            all_of(s.drv_state == DriverState.DISCONNECTED, s.fe_pc == FrontPc.IDLE),
        ),
        # xbd_connect's locked tail follows its Connected write
        implies(s.fe_pc == FrontPc.CONNECTING, s.fe_state == X.Connected),
        # xbd_closing's second half follows its Closing write, with nobody using the disk
        implies(s.fe_pc == FrontPc.CLOSING, all_of(s.fe_state == X.Closing, s.users == 0)),
        # the transport is written once per connection: at start and after each resume
        s.transport_epoch
        <= (k.suspends - s.suspends_left) + ite(s.fe_state == X.Initialising, 0, 1),
        implies(s.susp_pc != SuspendPc.RUNNING, s.transport_epoch <= k.suspends - s.suspends_left),
    )


def aux_grant_conservation(s: Any, k: Any) -> Any:
    """Every grant reference is either free or held by one command.

    Source: ``gnttab_alloc_grant_references``, ``gnttab_free_grant_references``,
    ``gnttab_end_foreign_access_references`` as ``xbd_bio_command``, ``xbd_queue_cb``
    and ``xbd_int`` use them.
    """
    held: Any = 0
    for c in range(k.commands):
        held = held + s.cmd_grants[c]
    return s.grants_free + held == k.grants


def aux_bio_order(s: Any, k: Any) -> Any:
    """Bios are submitted in number order and taken from the bio queue in that order.

    Supports SingleStepOrdering and the bio-queue model (the head is the
    lowest-numbered queued bio).  Source: ``xbd_strategy``, ``xbd_bio_command``.
    """
    parts = []
    for b in range(k.bios):
        for j in range(b):
            # the submitted bios are a prefix
            parts.append(
                implies(
                    s.bio_stage[b] != BioStage.UNSUBMITTED, s.bio_stage[j] != BioStage.UNSUBMITTED
                )
            )
    for c in range(k.commands):
        for j in range(k.bios):
            # every bio before one a command carries has left the bio queue
            parts.append(
                implies(
                    all_of(
                        s.cmd_place[c] != Place.FREE, j < s.cmd_bio[c], s.cmd_bio[c] != k.no_bio
                    ),
                    one_of(s.bio_stage[j], (BioStage.HELD, BioStage.DONE)),
                )
            )
    return all_of(*parts)


def aux_waiting_write(s: Any, k: Any) -> Any:
    """At most one bio's command waits on READY; WAIT_IDLE is set only while one does;
    once WAIT_IDLE is thawed, everything still in flight holds a freeze; a
    single-stepped command in flight holds its freeze.  (A dump's chunks wait on READY
    too, carrying no bio.)

    Supports SingleStepOrdering.  Source: ``xbd_bio_command``, ``xbd_int``.
    """
    waiting = [
        all_of(s.cmd_place[c] == Place.READY, s.cmd_bio[c] != k.no_bio) for c in range(k.commands)
    ]
    ready = any_of(*waiting)
    parts = [
        count_true(*waiting) <= 1,
        implies(s.flag_wait_idle, ready),
    ]
    for c in range(k.commands):
        out = one_of(s.cmd_place[c], (Place.BUSY, Place.NONE))
        parts += [
            implies(all_of(ready, negate(s.flag_wait_idle), out), s.cmd_frozen[c]),
            implies(all_of(out, s.cmd_qfreeze[c]), s.cmd_frozen[c]),
        ]
    return all_of(*parts)


def dump_leaves_nothing(s: Any, k: Any) -> Any:
    """When no dump is in progress, no dump chunk is queued, in flight or parked on
    COMPLETE.

    ``xbd_dump``'s chunks point into the dumper's buffer (``cm_data = virtual``, seed
    line 460), which is the dumper's only until the call returns; a chunk left behind
    is written later from whatever that memory holds then, and its command, parked by
    ``xbd_dump_complete`` on COMPLETE, is off the free list until another dump.  The
    seed's ``EBUSY`` exits (lines 445-455) leave the chunks queued so far on READY:
    *dump-ebusy-strands-ready*.  Source: ``xbd_dump``, ``xbd_dump_complete``.
    """
    return implies(
        s.dump_pc == DumpPc.IDLE,
        all_of(*(negate(a.dump_chunk_at(s, k, c)) for c in range(k.commands))),
    )


def aux_dump_chunks(s: Any, k: Any) -> Any:
    """A dump's chunk is a WRITE, never single-stepped or deferred, on READY, BUSY or
    COMPLETE; before ``xbd_startio`` only on READY, quiesced, with nothing on COMPLETE;
    and a dump is in progress only on a connected disk with no deferred load.

    Supports DumpLeavesNothing.  Source: ``xbd_dump``, ``xbd_quiesce``, ``xbd_int``.
    """
    parts = [
        # the guest is stopped on a connected disk, with no bus_dma load deferred
        implies(
            s.dump_pc != DumpPc.IDLE,
            all_of(
                s.drv_state == DriverState.CONNECTED,
                s.disk == DiskState.PRESENT,
                s.fe_pc == FrontPc.IDLE,
                negate(a.some_command_at(s, Place.NONE)),
            ),
        ),
        # the chunk loop runs only in the first phase
        implies(s.dump_pc != DumpPc.QUIESCE, s.dump_chunks_left == 0),
    ]
    for c in range(k.commands):
        chunk = a.dump_chunk_at(s, k, c)
        place = s.cmd_place[c]
        parts += [
            # a chunk is a plain write
            implies(
                chunk,
                all_of(
                    s.cmd_op[c] == BlkifOp.WRITE,
                    negate(s.cmd_qfreeze[c]),
                    negate(s.cmd_async[c]),
                    one_of(place, (Place.READY, Place.BUSY, Place.COMPLETE)),
                ),
            ),
            # before xbd_startio every chunk is on READY
            implies(all_of(chunk, s.dump_pc == DumpPc.QUIESCE), place == Place.READY),
            # the chunk loop runs quiesced: no command is busy, the lock is free
            implies(
                all_of(chunk, s.dump_pc == DumpPc.QUIESCE),
                all_of(s.io_pc == IoPc.IDLE, negate(a.some_command_at(s, Place.BUSY))),
            ),
            # COMPLETE holds only the answered chunks of the dump polling now
            implies(place == Place.COMPLETE, s.dump_pc == DumpPc.POLL),
        ]
    return all_of(*parts)


def aux_connected_ends(s: Any, k: Any) -> Any:
    """A driver that is connected (or suspending) got there through both ends'
    Connected: neither end is back in the start-up."""
    past = (X.Connected, X.Closing, X.Closed)
    return all_of(
        # a connected or suspending driver, or one with requests out
        implies(
            any_of(s.drv_state != DriverState.DISCONNECTED, a.dispatched(s) > 0),
            all_of(one_of(s.fe_state, past), one_of(s.be_state, past)),
        ),
        # the front end went Connected on the back end's Connected
        implies(s.fe_state == X.Connected, one_of(s.be_state, past)),
        # the back end closes after the front end did
        implies(s.be_state == X.Closed, s.fe_state == X.Closed),
        # bios come from users, and the last one leaves only when its bios completed
        implies(
            s.users == 0,
            all_of(*(one_of(st, (BioStage.UNSUBMITTED, BioStage.DONE)) for st in s.bio_stage)),
        ),
        # the front end closes only with nobody using the disk, so with nothing in flight
        implies(
            any_of(s.fe_state == X.Closed, s.fe_pc == FrontPc.CLOSING),
            all_of(
                *(st != BioStage.HELD for st in s.bio_stage),
                *(st != BioStage.QUEUED for st in s.bio_stage),
                *(pl == Place.FREE for pl in s.cmd_place),
            ),
        ),
    )


def aux_states_used(s: Any, k: Any) -> Any:
    """Each state node holds one of the states its end writes: neither end of this
    model writes Unknown, Reconfiguring or Reconfigured, and the front end never
    InitWait.  (What makes the refinement's source states exact.)"""
    return all_of(
        one_of(s.fe_state, (X.Initialising, X.Initialised, X.Connected, X.Closing, X.Closed)),
        one_of(
            s.be_state,
            (X.Initialising, X.InitWait, X.Initialised, X.Connected, X.Closing, X.Closed),
        ),
    )


# --------------------------------------------------------------------------- registry

INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "FreezeAccounting",
        freeze_accounting,
        freeze_accounting.__doc__ or "",
        "xbd_freeze, xbd_thaw, xbd_cm_freeze, xbd_cm_thaw",
    ),
    Invariant("NoThawUnderflow", no_thaw_underflow, no_thaw_underflow.__doc__ or "", "xbd_thaw"),
    Invariant(
        "QueueExclusive",
        queue_exclusive,
        queue_exclusive.__doc__ or "",
        "block.h queue helpers, xbd_bio_command",
    ),
    Invariant(
        "CommandConservation",
        command_conservation,
        command_conservation.__doc__ or "",
        "xbd_free_command, xbd_queue_cb, xbd_bio_command",
    ),
    Invariant(
        "SingleStepOrdering",
        single_step_ordering,
        single_step_ordering.__doc__ or "",
        "xbd_bio_command, xbd_startio",
    ),
    Invariant(
        "RingBounds", ring_bounds, ring_bounds.__doc__ or "", "ring.h RING_FULL, xbd_startio"
    ),
    Invariant(
        "NoLostWakeup",
        no_lost_wakeup,
        no_lost_wakeup.__doc__ or "",
        "ring.h RING_FINAL_CHECK_FOR_RESPONSES, xbd_int",
    ),
    Invariant(
        "NoUnpublishedRequest",
        no_unpublished_request,
        no_unpublished_request.__doc__ or "",
        "xbd_startio, xbd_queue_cb, xbd_flush_requests",
    ),
    Invariant(
        "PublishedBeforeInitialised",
        published_before_initialised,
        published_before_initialised.__doc__ or "",
        "blkif.h state diagram; xbd_initialize",
    ),
    Invariant(
        "BackendConnectedAfterPublish",
        backend_connected_after_publish,
        backend_connected_after_publish.__doc__ or "",
        "blkif.h state diagram",
    ),
    Invariant(
        "IONeedsConnection",
        io_needs_connection,
        io_needs_connection.__doc__ or "",
        "xbd_startio, xbd_suspend, xbd_free",
    ),
    Invariant(
        "FeatureSoundness",
        feature_soundness,
        feature_soundness.__doc__ or "",
        "blkif.h feature-barrier, feature-flush-cache; xbd_connect",
    ),
    Invariant(
        "CloseOnlyWhenUnused",
        close_only_when_unused,
        close_only_when_unused.__doc__ or "",
        "xbd_closing, xbd_close",
    ),
    Invariant(
        "NoLostIO",
        no_lost_io,
        no_lost_io.__doc__ or "",
        "xbd_strategy, xbd_bio_complete, xbd_resume",
    ),
    Invariant(
        "AuxRingAccounting",
        aux_ring_accounting,
        aux_ring_accounting.__doc__ or "",
        "ring.h",
        auxiliary=True,
    ),
    Invariant(
        "AuxRingReservation",
        aux_ring_reservation,
        aux_ring_reservation.__doc__ or "",
        "xbd_queue_cb, xbd_startio",
        auxiliary=True,
    ),
    Invariant(
        "AuxNegotiatedFeatures",
        aux_negotiated_features,
        aux_negotiated_features.__doc__ or "",
        "xbd_connect",
        auxiliary=True,
    ),
    Invariant(
        "AuxSuspendPhase",
        aux_suspend_phase,
        aux_suspend_phase.__doc__ or "",
        "xbd_suspend, xbd_resume",
        auxiliary=True,
    ),
    Invariant(
        "AuxNoSuspendWhileClosing",
        aux_no_suspend_while_closing,
        aux_no_suspend_while_closing.__doc__ or "",
        "blkif.h; xbd_backend_changed, xbd_suspend",
        auxiliary=True,
    ),
    Invariant(
        "AuxLifecycle",
        aux_lifecycle,
        aux_lifecycle.__doc__ or "",
        "xbd_initialize, xbd_connect, xbd_closing",
        auxiliary=True,
    ),
    Invariant(
        "AuxGrantConservation",
        aux_grant_conservation,
        aux_grant_conservation.__doc__ or "",
        "xbd_bio_command, xbd_queue_cb, xbd_int",
        auxiliary=True,
    ),
    Invariant(
        "AuxBioOrder",
        aux_bio_order,
        aux_bio_order.__doc__ or "",
        "xbd_strategy, xbd_bio_command",
        auxiliary=True,
    ),
    Invariant(
        "DumpLeavesNothing",
        dump_leaves_nothing,
        dump_leaves_nothing.__doc__ or "",
        "xbd_dump, xbd_dump_complete; dump-ebusy-strands-ready",
    ),
    Invariant(
        "AuxDumpChunks",
        aux_dump_chunks,
        aux_dump_chunks.__doc__ or "",
        "xbd_dump, xbd_quiesce, xbd_int",
        auxiliary=True,
    ),
    Invariant(
        "AuxConnectedEnds",
        aux_connected_ends,
        aux_connected_ends.__doc__ or "",
        "xbd_connect, xbd_suspend, xbd_resume",
        auxiliary=True,
    ),
    Invariant(
        "AuxStatesUsed",
        aux_states_used,
        aux_states_used.__doc__ or "",
        "xenbus.h; xbd_backend_changed",
        auxiliary=True,
    ),
    Invariant(
        "AuxWaitingWrite",
        aux_waiting_write,
        aux_waiting_write.__doc__ or "",
        "xbd_bio_command, xbd_int",
        auxiliary=True,
    ),
)


def no_dispatch_while_frozen(s: Any, t: Any, k: Any) -> Any:
    """No step sends a new command to the ring or to bus_dma while the queue is frozen.

    The freeze is how the driver keeps order across resource shortages, deferred
    mappings and single-stepped writes.  Source: ``xbd_startio``.
    """
    return implies(a.dispatched(t) > a.dispatched(s), s.frozen == 0)


def transport_params_stable(s: Any, t: Any, k: Any) -> Any:
    """The transport parameters are not rewritten while the front end stays Connected.

    The back end reads them once, when it connects.  Source: ``blkif.h``,
    ``xbd_initialize`` (returns unless Initialising).
    """
    stays = all_of(s.fe_state == X.Connected, t.fe_state == X.Connected)
    return implies(stays, t.transport_epoch == s.transport_epoch)


STEP_PROPERTIES: tuple[StepProperty, ...] = (
    StepProperty(
        "NoDispatchWhileFrozen",
        no_dispatch_while_frozen,
        no_dispatch_while_frozen.__doc__ or "",
        "xbd_startio",
    ),
    StepProperty(
        "TransportParamsStable",
        transport_params_stable,
        transport_params_stable.__doc__ or "",
        "blkif.h; xbd_initialize",
    ),
)


def _pending_bio(s: Any, k: Any) -> Any:
    return any_of(*(one_of(st, (BioStage.QUEUED, BioStage.HELD)) for st in s.bio_stage))


ENVIRONMENT_FAIRNESS = (
    "backend_watch",
    "frontend_watch",
    "backend_publish",
    "backend_offline",
    "backend_consume",
    "backend_respond",
    "interrupt",
    "dma_callback",
    "grants_returned",
    "suspend_drained",
    "resume",
    *sorted(DRIVER_STEPS),
)

PROGRESS: tuple[Progress, ...] = (
    Progress(
        "HandshakeConnects",
        lambda s, k: all_of(
            s.be_online,
            s.unplugs_left == 0,
            one_of(s.fe_state, (X.Initialising, X.Initialised)),
            s.fe_pc != FrontPc.CLOSING,
        ),
        lambda s, k: all_of(s.fe_state == X.Connected, s.drv_state == DriverState.CONNECTED),
        "When nothing unplugs the disk, the handshake reaches Connected.",
        "blkif.h state diagram",
        ENVIRONMENT_FAIRNESS,
    ),
    Progress(
        "EveryBioCompletes",
        _pending_bio,
        lambda s, k: negate(_pending_bio(s, k)),
        "Every accepted bio completes when the back end answers its requests.",
        "xbd_strategy, xbd_int",
        ENVIRONMENT_FAIRNESS,
    ),
    Progress(
        "UnpluggedDiskCloses",
        lambda s, k: all_of(negate(s.be_online), s.users == 0, s.disk != DiskState.PRESENT),
        # unless a user opens the disk before the front end has closed it (which the
        # environment may do: then the property no longer applies)
        lambda s, k: any_of(s.fe_state == X.Closed, s.users > 0),
        "An unplugged disk nobody uses reaches Closed, unless a user opens it first.",
        "xbd_backend_changed (Closing), xbd_closing",
        ENVIRONMENT_FAIRNESS,
    ),
    Progress(
        "RequestsPublished",
        lambda s, k: any_of(*(st == RingStage.PRIVATE for st in s.cmd_stage)),
        lambda s, k: negate(any_of(*(st == RingStage.PRIVATE for st in s.cmd_stage))),
        "No request stays on the ring unpublished.",
        "xbd_flush_requests",
        ENVIRONMENT_FAIRNESS,
    ),
)
