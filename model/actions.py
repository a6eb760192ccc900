"""The seed's small helpers, as the model's building blocks for guards and effects.

Each function here stands for one seed helper (named in its docstring) and works on
a :class:`~xbdspec.model.draft.Draft` (effects) or a state (guards) with the
operators of :mod:`xbdspec.model.expr`, so it means the same thing concretely and
symbolically.  Effects take ``when``: the condition under which the helper runs,
for the steps that act on every command whose response arrived.
"""

from __future__ import annotations

from typing import Any

from .draft import Draft
from .expr import (
    all_of,
    any_of,
    count_true,
    derived,
    ite,
    negate,
    per_state,
    u32_add,
    u32_sub,
)
from .state import Sizes
from .vocabulary import BioResult, BioStage, BlkifOp, BlkifStatus, DumpPc, Place, RingStage

# --------------------------------------------------------------------------- predicates


def commands_at(s: Any, place: Place) -> list[Any]:
    """One condition per command: it is on ``place``."""
    return [p == place for p in s.cmd_place]


@per_state
def some_command_at(s: Any, place: Place) -> Any:
    """Some command is on ``place`` (``xbd_queue_length(sc, q) != 0``)."""
    return any_of(*commands_at(s, place))


def dispatched(s: Any) -> Any:
    """How many commands are on the ring or waiting for a deferred mapping."""
    return count_true(*(any_of(p == Place.BUSY, p == Place.NONE) for p in s.cmd_place))


@derived
def ring_full(s: Any, k: Sizes) -> Any:
    """``RING_FULL``: no free request slot, ``size - (req_prod_pvt - rsp_cons) == 0``
    (a derived field: memos key on whether the ring is full, not on its free-running
    indices)."""
    return u32_sub(s.req_prod_pvt, s.rsp_cons) == k.ring_slots


@per_state
def is_head_bio(s: Any, b: int) -> Any:
    """Bio ``b`` is at the head of the bio queue (``xbd_dequeue_bio``)."""
    return all_of(
        s.bio_stage[b] == BioStage.QUEUED,
        *(s.bio_stage[j] != BioStage.QUEUED for j in range(b)),
    )


def some_bio_queued(s: Any) -> Any:
    """The bio queue is not empty."""
    return any_of(*(st == BioStage.QUEUED for st in s.bio_stage))


def dump_chunk_at(s: Any, k: Sizes, c: int) -> Any:
    """Command ``c`` carries a chunk of a dump: it is off the free list with no bio
    (``cm_bp`` NULL, ``cm_complete = xbd_dump_complete``, seed lines 464-465)."""
    return all_of(s.cmd_place[c] != Place.FREE, s.cmd_bio[c] == k.no_bio)


def guest_runs(s: Any) -> Any:
    """The guest's threads run: no kernel dump is in progress.  ``xbd_dump`` is called
    on a stopped system (a panic, or ddb's ``dump``): no xenwatch handler, interrupt
    thread, disk entry point, bus_dma or grant callback runs until it returns."""
    return s.dump_pc == DumpPc.IDLE


#: the condition of every guest-side step: no dump in progress (see :func:`guest_runs`)
GUEST = (("the guest runs: no kernel dump is in progress (xbd_dump)", guest_runs),)


# --------------------------------------------------------------------------- freeze and thaw


def freeze(d: Draft, flag: str, when: Any = True) -> None:
    """``xbd_freeze(sc, flag)``: set a softc flag and count it, once."""
    fresh = all_of(when, negate(getattr(d, flag)))
    d.frozen = ite(fresh, d.frozen + 1, d.frozen)
    setattr(d, flag, ite(when, True, getattr(d, flag)))


def thaw(d: Draft, flag: str, when: Any = True) -> None:
    """``xbd_thaw(sc, flag)``: clear a set flag and uncount it; at zero the seed panics."""
    act = all_of(when, getattr(d, flag))
    d.panicked = any_of(d.panicked, all_of(act, d.frozen == 0))
    d.frozen = ite(all_of(act, d.frozen > 0), d.frozen - 1, d.frozen)
    setattr(d, flag, ite(act, False, getattr(d, flag)))


def cm_freeze(d: Draft, c: int, when: Any = True) -> None:
    """``xbd_cm_freeze``: the command holds one freeze of the queue, once."""
    fresh = all_of(when, negate(d.cmd_frozen[c]))
    d.frozen = ite(fresh, d.frozen + 1, d.frozen)
    d.set_at("cmd_frozen", c, ite(when, True, d.cmd_frozen[c]))


def cm_thaw(d: Draft, c: int, when: Any = True) -> None:
    """``xbd_cm_thaw``: release the command's freeze, if it holds one."""
    act = all_of(when, d.cmd_frozen[c])
    d.panicked = any_of(d.panicked, all_of(act, d.frozen == 0))
    d.frozen = ite(all_of(act, d.frozen > 0), d.frozen - 1, d.frozen)
    d.set_at("cmd_frozen", c, ite(act, False, d.cmd_frozen[c]))


# --------------------------------------------------------------------------- commands and bios


def complete_bio(d: Draft, k: Sizes, c: int, result: Any, when: Any = True) -> None:
    """``biodone`` of the bio command ``c`` carries, with ``result``."""
    for b in range(k.bios):
        hit = all_of(when, d.cmd_bio[c] == b)
        d.set_at("bio_stage", b, ite(hit, BioStage.DONE, d.bio_stage[b]))
        d.set_at("bio_result", b, ite(hit, result, d.bio_result[b]))
        done = d.bio_completions[b]
        d.set_at("bio_completions", b, ite(all_of(hit, done < 2), done + 1, done))


def requeue_bio(d: Draft, k: Sizes, c: int, when: Any = True) -> None:
    """Put the bio command ``c`` carries back on the bio queue (its head: it is the oldest)."""
    for b in range(k.bios):
        hit = all_of(when, d.cmd_bio[c] == b)
        d.set_at("bio_stage", b, ite(hit, BioStage.QUEUED, d.bio_stage[b]))


def free_command(d: Draft, k: Sizes, c: int, when: Any = True) -> None:
    """``xbd_free_command``: reset the command, return its grants, put it on FREE,
    and thaw CM_SHORTAGE (the caller releases the command's own freeze first)."""
    d.grants_free = ite(when, d.grants_free + d.cmd_grants[c], d.grants_free)
    for name, value in (
        ("cmd_place", Place.FREE),
        ("cmd_stage", RingStage.NONE),
        ("cmd_bio", k.no_bio),
        ("cmd_op", BlkifOp.NONE),
        ("cmd_qfreeze", False),
        ("cmd_async", False),
        ("cmd_grants", 0),
        ("cmd_status", BlkifStatus.OKAY),
    ):
        d.set_at(name, c, ite(when, value, getattr(d, name)[c]))
    thaw(d, "flag_cm_shortage", when)


def queue_on_ring(d: Draft, k: Sizes, c: int) -> None:
    """``xbd_queue_cb`` on success: the request is written at ``req_prod_pvt``, the
    unused grant references go back (``gnttab_free_grant_references``), BUSY."""
    d.req_prod_pvt = u32_add(d.req_prod_pvt, 1)
    d.set_at("cmd_place", c, Place.BUSY)
    d.set_at("cmd_stage", c, RingStage.PRIVATE)
    d.grants_free = d.grants_free + (k.grants_per_request - 1)
    d.set_at("cmd_grants", c, 1)


def fail_mapping(d: Draft, k: Sizes, c: int) -> None:
    """``xbd_queue_cb`` with an error: the bio fails with EIO and the command is
    freed, releasing the freeze it holds and every grant it allocated."""
    complete_bio(d, k, c, BioResult.EIO)
    cm_thaw(d, c)
    free_command(d, k, c)


def service_ring(d: Draft, s: Any, k: Sizes) -> None:
    """The body of ``xbd_int`` (seed lines 330-405), without the event channel: every
    answered command releases its freeze and its grant; a bio's command completes its
    bio with the response's status and is freed (``xbd_bio_complete``); a dump chunk
    keeps its status and goes on COMPLETE (``cm_complete``, ``xbd_dump_complete``);
    ``rsp_event`` asks for the next response; WAIT_IDLE thaws when BUSY is empty.  The
    caller runs ``xbd_startio`` after it."""
    for c in range(k.commands):
        answered = s.cmd_stage[c] == RingStage.ANSWERED
        chunk = all_of(answered, s.cmd_bio[c] == k.no_bio)
        cm_thaw(d, c, when=answered)
        result = ite(s.cmd_status[c] == BlkifStatus.OKAY, BioResult.OK, BioResult.EIO)
        complete_bio(d, k, c, result, when=answered)
        # a dump chunk: its grant ended (gnttab_end_foreign_access_references), parked
        d.grants_free = ite(chunk, d.grants_free + d.cmd_grants[c], d.grants_free)
        d.set_at("cmd_grants", c, ite(chunk, 0, d.cmd_grants[c]))
        d.set_at("cmd_stage", c, ite(chunk, RingStage.NONE, d.cmd_stage[c]))
        d.set_at("cmd_place", c, ite(chunk, Place.COMPLETE, d.cmd_place[c]))
        free_command(d, k, c, when=all_of(answered, s.cmd_bio[c] != k.no_bio))
    d.rsp_cons = s.rsp_prod
    d.rsp_event = u32_add(s.rsp_prod, 1)
    thaw(d, "flag_wait_idle", when=negate(some_command_at(d, Place.BUSY)))


def publish(d: Draft) -> None:
    """``xbd_flush_requests`` (``RING_PUSH_REQUESTS``): the back end may now see every
    request written so far.  Notification of the back end is abstracted (it may
    consume any published request at any time)."""
    d.req_prod = d.req_prod_pvt
    d.cmd_stage = tuple(ite(st == RingStage.PRIVATE, RingStage.PUBLISHED, st) for st in d.cmd_stage)
