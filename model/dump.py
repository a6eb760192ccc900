"""The dump path: the kernel dumper's call ``xbd_dump`` (seed lines 408-484).

Component ``dump``: its control field ``dump_pc`` says where the call is.  The kernel
dumper (``g_disk_kerneldump``'s ``d_dump``) calls ``xbd_dump(arg, virtual, offset,
length)`` on a stopped system, at a panic or from ddb's ``dump``: no other guest thread
runs until it returns (every guest-side step requires :func:`~xbdspec.model.actions.
guest_runs`), but the back end, in its own domain, goes on consuming and answering
requests while the dumper yields the CPU to it (``HYPERVISOR_yield``, line 421).  The
call is split where it waits for the back end:

1. ``xbd_quiesce`` (lines 411-424): while BUSY is not empty, ``RING_FINAL_CHECK_FOR_
   RESPONSES`` and, with responses, ``xbd_int`` (:class:`DumpPoll`);
2. under ``xbd_io_lock`` the chunk loop (lines 443-469): each chunk takes a FREE command
   and ``xbd_max_request_segments`` grant references and goes on READY as a WRITE with
   ``cm_complete = xbd_dump_complete`` (:class:`DumpChunk`); no command or no grants:
   ``EBUSY`` (:class:`DumpEbusy`);
3. ``xbd_startio`` (line 470): the request path's own loop steps send the chunks
   (:class:`DumpStartio`);
4. ``xbd_quiesce`` again (line 472): each response runs ``xbd_dump_complete`` (lines
   426-429), which parks the chunk on COMPLETE;
5. the COMPLETE queue is emptied, ``rc = EIO`` for a chunk whose status is not OKAY,
   each command freed (lines 474-483, :class:`DumpCollect`).

The model states the dump as it should be where the seed departs from it: on ``EBUSY``
the chunks this call queued come back off READY to FREE with their grant references
(the fix of *dump-ebusy-strands-ready*: the seed returns with them on READY, to be sent
later from a buffer the dumper no longer owns, their commands then stranded on
COMPLETE).  ``length == 0`` returns at once (line 438): a stutter, not modelled.  Which
calls are modelled, and why only those, is in :class:`Dump`'s docstring.
"""

from __future__ import annotations

from typing import Any

from . import actions as a
from .declaration import Param, TransitionTable
from .draft import Draft
from .expr import all_of, any_of, ite, negate
from .vocabulary import (
    BlkifOp,
    BlkifStatus,
    DiskState,
    DriverState,
    DumpPc,
    DumpResult,
    FrontPc,
    IoPc,
    Place,
)

table = TransitionTable()
step = table.step

CHUNKS = Param(
    "chunks",
    lambda k: range(1, k.max_dump_chunks + 1),
    "how many requests the write takes: length / xbd_max_request_size, rounded up",
)
CMD = Param("cmd", lambda k: range(k.commands), "the command's index in the shadow array")

QUIESCE, POLL = DumpPc.QUIESCE, DumpPc.POLL


def quiet(s: Any) -> Any:
    """``xbd_quiesce`` has returned: the I/O lock is free and BUSY is empty."""
    return all_of(s.io_pc == IoPc.IDLE, negate(a.some_command_at(s, Place.BUSY)))


def take_back(d: Draft, s: Any, k: Any, place: Place) -> None:
    """Free every dump chunk on ``place``: ``xbd_free_command`` returns its grant
    references and puts it on FREE."""
    for c in range(k.commands):
        hit = all_of(s.cmd_place[c] == place, s.cmd_bio[c] == k.no_bio)
        a.free_command(d, k, c, when=hit)


@step(
    event="dump",
    component="dump",
    source=[DumpPc.IDLE],
    dest=QUIESCE,
    params=[CHUNKS],
    seed="xbd_dump (lines 431-440), g_disk_kerneldump's d_dump",
)
class Dump:
    """The kernel dumper writes ``chunks`` requests' worth to the connected disk: the
    guest stops, and ``xbd_quiesce`` begins.

    Modelled when the disk is present and connected, no handler is between its halves
    and nothing waits on a thread the stopped system does not run: no bus_dma load is
    deferred and no grant callback is pending (their completions would never come, the
    queue would stay frozen and the dump's chunks would never be sent; the seed would
    then return 0 having written nothing: left out, as the model's I/O path leaves out
    a dump's deferred loads)."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            s.dumps_left > 0,
            s.disk == DiskState.PRESENT,
            s.drv_state == DriverState.CONNECTED,
            s.io_pc == IoPc.IDLE,
            s.fe_pc == FrontPc.IDLE,
            negate(a.some_command_at(s, Place.NONE)),
            negate(s.gnt_callback_pending),
            negate(s.flag_gnt_shortage),
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {
            "dumps_left": s.dumps_left - 1,
            "dump_chunks_left": p.chunks,
            "dump_result": DumpResult.NONE,
        }


@step(
    event="dump_poll",
    component="dump",
    source=[QUIESCE, POLL],
    seed="xbd_quiesce (lines 414-418), xbd_int",
)
class DumpPoll:
    """``xbd_quiesce``'s final check finds responses: it runs ``xbd_int``, which takes
    them (a dump chunk goes on COMPLETE, ``xbd_dump_complete``) and runs
    ``xbd_startio``.  The event channel is not read: a notification stays pending."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(s.io_pc == IoPc.IDLE, s.rsp_prod != s.rsp_cons)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        a.service_ring(d, s, p.k)
        d.io_pc = IoPc.STARTIO
        return d.changes


@step(
    event="dump_grant_callback",
    component="dump",
    source=[QUIESCE, POLL],
    seed="xbd_restart_queue_callback (lines 229-237), gnttab_end_foreign_access_references",
)
class DumpGrantCallback:
    """References a shortage waits for are free again while ``xbd_dump`` polls: the
    grant table runs the driver's free-callback where ``xbd_int`` returned them (on a
    stopped system no thread is needed, and ``mtx_lock`` returns at once with the
    scheduler stopped); it thaws GNT_SHORTAGE and runs ``xbd_startio``.  (On a running
    system the callback is the environment's ``grants_returned``.)"""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            s.io_pc == IoPc.IDLE,
            s.gnt_callback_pending,
            s.grants_free >= p.k.grants_per_request,
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.gnt_callback_pending = False
        a.thaw(d, "flag_gnt_shortage")
        d.io_pc = IoPc.STARTIO
        return d.changes


@step(
    event="dump_chunk",
    component="dump",
    source=[QUIESCE],
    params=[CMD],
    seed="xbd_dump (lines 443-469)",
)
class DumpChunk:
    """Quiesced, under the I/O lock: the next chunk takes free command ``cmd`` and its
    grant references and goes on READY as a WRITE with no bio."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            quiet(s),
            s.dump_chunks_left > 0,
            s.cmd_place[p.cmd] == Place.FREE,
            s.grants_free >= p.k.grants_per_request,
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        d.set_at("cmd_place", p.cmd, Place.READY)
        d.set_at("cmd_op", p.cmd, BlkifOp.WRITE)
        d.set_at("cmd_grants", p.cmd, p.k.grants_per_request)
        d.grants_free = d.grants_free - p.k.grants_per_request
        d.dump_chunks_left = s.dump_chunks_left - 1
        return d.changes


@step(
    event="dump_ebusy",
    component="dump",
    source=[QUIESCE],
    dest=DumpPc.IDLE,
    seed="xbd_dump (lines 444-456), the fix of dump-ebusy-strands-ready",
)
class DumpEbusy:
    """A chunk finds no free command, or no grant references: ``xbd_dump`` returns
    ``EBUSY``, and (the model, not the seed) first takes the chunks it queued back off
    READY to FREE with their references, so none is sent later."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(
            quiet(s),
            s.dump_chunks_left > 0,
            any_of(
                negate(a.some_command_at(s, Place.FREE)),
                s.grants_free < p.k.grants_per_request,
            ),
        )

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        take_back(d, s, p.k, Place.READY)
        d.dump_chunks_left = 0
        d.dump_result = DumpResult.EBUSY
        return d.changes


@step(
    event="dump_startio",
    component="dump",
    source=[QUIESCE],
    dest=POLL,
    seed="xbd_dump (line 470), xbd_startio",
)
class DumpStartio:
    """Every chunk is on READY: ``xbd_dump`` runs ``xbd_startio`` (the request path's
    loop, which takes READY before the bio queue) and then polls."""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return all_of(quiet(s), s.dump_chunks_left == 0)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        return {"io_pc": IoPc.STARTIO}


@step(
    event="dump_collect",
    component="dump",
    source=[POLL],
    dest=DumpPc.IDLE,
    seed="xbd_dump (lines 472-483), xbd_free_command",
)
class DumpCollect:
    """The second ``xbd_quiesce`` has returned: every command on COMPLETE is freed, and
    ``xbd_dump`` returns ``EIO`` if one's status was not OKAY, else 0.  (A chunk still on
    READY, never sent, would be taken back and fail the dump too; with the conditions
    :class:`Dump` is modelled under, none is left: every chunk precedes the bio queue.)"""

    @staticmethod
    def guard(s: Any, p: Any) -> Any:
        return quiet(s)

    @staticmethod
    def effect(s: Any, p: Any) -> dict[str, Any]:
        d = Draft(s)
        k = p.k
        failed = any_of(
            *(
                all_of(
                    s.cmd_place[c] == Place.COMPLETE,
                    s.cmd_status[c] != BlkifStatus.OKAY,
                )
                for c in range(k.commands)
            ),
            *(
                all_of(s.cmd_place[c] == Place.READY, s.cmd_bio[c] == k.no_bio)
                for c in range(k.commands)
            ),
        )
        take_back(d, s, k, Place.COMPLETE)
        take_back(d, s, k, Place.READY)
        d.dump_result = ite(failed, DumpResult.EIO, DumpResult.OK)
        return d.changes
