"""The dump path (``xbd_dump``, ``xbd_quiesce``, ``xbd_dump_complete``) in the model:
its steps run as the seed's do, the explorer reaches every one of them with nothing
violated, and the proofs refute the seed's ``EBUSY`` exit and a dump that forgets its
COMPLETE queue."""

from __future__ import annotations

import dataclasses
from typing import Any

from xbdspec.model.concrete import Stepper
from xbdspec.model.declaration import Instance, Spec, Transition
from xbdspec.model.expr import ite
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import (
    BioKind,
    BioStage,
    BlkifStatus,
    DriverState,
    DumpPc,
    DumpResult,
    Place,
    RingStage,
)
from xbdspec.proofs.model_obligations import ModelContext, preservation_outcome
from xbdspec.proofs.results import Result

from xbdspec.conformance.harness import CONNECT_PREFIX

#: two commands, one bio, no suspend or unplug, one dump: every dump step is reachable
DUMP_SIZES = Sizes(commands=2, bios=1, ring_slots=2, grants=4, suspends=0, unplugs=0, dumps=1)


def connected(stepper: Stepper) -> Any:
    """The handshake to the end (the harness's connect prefix), the disk open."""
    s = stepper.initial()
    for event, params in CONNECT_PREFIX:
        if event == "backend_publish":
            params = {"barrier": False, "flush": False}
        _, s = stepper.step(s, event, **params)
        s = settle(stepper, s, "connect_locked", "startio_done")
    assert s.drv_state == DriverState.CONNECTED and s.users == 1
    return s


def settle(stepper: Stepper, s: Any, *events: str) -> Any:
    """Take the first enabled instance of each named internal step while one is enabled."""
    progressed = True
    while progressed:
        progressed = False
        for instance in stepper.enabled(s):
            if instance.transition.event in events:
                s = stepper.apply(s, instance)
                progressed = True
                break
    return s


def test_a_dump_writes_its_chunks_parks_them_on_complete_and_returns_their_status() -> None:
    stepper = Stepper(build_spec(DUMP_SIZES))
    s = connected(stepper)
    _, s = stepper.step(s, "strategy", bio=0, kind=BioKind.WRITE)
    s = settle(stepper, s, "send_bio", "startio_done")
    assert Place.BUSY in s.cmd_place
    _, s = stepper.step(s, "dump", chunks=1)
    # the first xbd_quiesce waits for the bio's request: no chunk is queued yet
    assert stepper.enabled(s) and not any(
        i.transition.event == "dump_chunk" for i in stepper.enabled(s)
    )
    _, s = stepper.step(s, "backend_consume", cmd=0)
    _, s = stepper.step(s, "backend_respond", cmd=0, status=BlkifStatus.OKAY)
    _, s = stepper.step(s, "dump_poll")
    s = settle(stepper, s, "startio_done")
    assert s.bio_stage[0] == BioStage.DONE and s.cmd_place == (Place.FREE, Place.FREE)
    assert s.irq_pending, "xbd_quiesce takes the response without reading the event channel"
    _, s = stepper.step(s, "dump_chunk", cmd=1)
    assert s.cmd_place[1] == Place.READY and s.cmd_bio[1] == DUMP_SIZES.no_bio
    _, s = stepper.step(s, "dump_startio")
    s = settle(stepper, s, "send_ready", "startio_done")
    assert s.dump_pc == DumpPc.POLL and s.cmd_stage[1] == RingStage.PUBLISHED
    _, s = stepper.step(s, "backend_consume", cmd=1)
    _, s = stepper.step(s, "backend_respond", cmd=1, status=BlkifStatus.ERROR)
    _, s = stepper.step(s, "dump_poll")
    s = settle(stepper, s, "startio_done")
    assert s.cmd_place[1] == Place.COMPLETE and s.cmd_status[1] == BlkifStatus.ERROR
    assert s.cmd_grants[1] == 0 and s.grants_free == DUMP_SIZES.grants
    _, s = stepper.step(s, "dump_collect")
    assert s.dump_pc == DumpPc.IDLE and s.dump_result == DumpResult.EIO
    assert s.cmd_place == (Place.FREE, Place.FREE)
    assert stepper.violated_invariants(s) == []


def test_a_dump_short_of_commands_returns_ebusy_with_its_chunks_taken_back() -> None:
    stepper = Stepper(build_spec(DUMP_SIZES))
    s = connected(stepper)
    _, s = stepper.step(s, "dump", chunks=3)
    _, s = stepper.step(s, "dump_chunk", cmd=0)
    _, s = stepper.step(s, "dump_chunk", cmd=1)
    assert s.cmd_place == (Place.READY, Place.READY) and s.grants_free == 0
    _, s = stepper.step(s, "dump_ebusy")
    assert s.dump_result == DumpResult.EBUSY and s.cmd_place == (Place.FREE, Place.FREE)
    assert s.grants_free == DUMP_SIZES.grants and s.cmd_grants == (0, 0)


def test_a_shortage_met_while_dumping_is_thawed_by_the_grant_table() -> None:
    """The single-stepped write in flight holds the queue; the dump's xbd_quiesce takes
    its response, xbd_int's xbd_startio sends the next bio and meets a grant shortage for
    the third; once that bio's references come back, the callback runs inside the dump
    (no thread is needed) and the third bio is sent before the dump queues its chunk."""
    sizes = dataclasses.replace(DUMP_SIZES, bios=3, grants=2)
    stepper = Stepper(build_spec(sizes))
    s = connected(stepper)
    _, s = stepper.step(s, "strategy", bio=0, kind=BioKind.ORDERED_WRITE)
    s = settle(stepper, s, "send_bio", "startio_done")
    for bio in (1, 2):
        _, s = stepper.step(s, "strategy", bio=bio, kind=BioKind.WRITE)
        s = settle(stepper, s, "startio_done")
    _, s = stepper.step(s, "dump", chunks=1)
    _, s = stepper.step(s, "backend_consume", cmd=0)
    _, s = stepper.step(s, "backend_respond", cmd=0, status=BlkifStatus.OKAY)
    _, s = stepper.step(s, "dump_poll")
    s = settle(stepper, s, "send_bio", "grant_shortage", "startio_done")
    assert s.gnt_callback_pending and s.flag_gnt_shortage and s.bio_stage[2] == BioStage.QUEUED
    busy = s.cmd_place.index(Place.BUSY)
    _, s = stepper.step(s, "backend_consume", cmd=busy)
    _, s = stepper.step(s, "backend_respond", cmd=busy, status=BlkifStatus.OKAY)
    _, s = stepper.step(s, "dump_poll")
    s = settle(stepper, s, "startio_done")
    _, s = stepper.step(s, "dump_grant_callback")
    s = settle(stepper, s, "send_bio", "startio_done")
    assert not s.flag_gnt_shortage and s.bio_stage[2] == BioStage.HELD
    assert stepper.violated_invariants(s) == []


def test_the_guest_is_stopped_while_a_dump_is_in_progress() -> None:
    stepper = Stepper(build_spec(dataclasses.replace(DUMP_SIZES, unplugs=1)))
    s = connected(stepper)
    _, s = stepper.step(s, "dump", chunks=1)
    events = {i.transition.event for i in stepper.enabled(s)}
    # the back end and the tool stack in dom0 go on; nothing of the guest runs but the dump
    assert "strategy" not in events and "interrupt" not in events and "close" not in events
    assert "dump_chunk" in events and "unplug" in events


def test_the_explorer_reaches_every_dump_step_and_finds_nothing_violated() -> None:
    from xbdspec.explore.checker import check_model

    report = check_model(DUMP_SIZES)
    dump_steps = {t.name for t in build_spec(DUMP_SIZES).transitions if t.component == "dump"}
    assert dump_steps == {
        "dump",
        "dump_poll",
        "dump_chunk",
        "dump_ebusy",
        "dump_startio",
        "dump_grant_callback",
        "dump_collect",
    }
    # a grant shortage met inside the dump needs three bios (a single-stepped write, then
    # two more): test_a_shortage_met_while_dumping_is_thawed_by_the_grant_table has it
    assert set(report.never_taken) & dump_steps == {"dump_grant_callback"}
    assert report.violations == [], [v.counterexample for v in report.violations]
    assert report.exploration.complete


def test_without_dumps_the_state_space_has_no_dump_state() -> None:
    from xbdspec.explore.checker import check_model

    sizes = dataclasses.replace(DUMP_SIZES, dumps=0)
    with_dump = check_model(DUMP_SIZES).exploration.states
    without = check_model(sizes).exploration.states
    assert 0 < without < with_dump


# --------------------------------------------------------------------------- broken variants


def _variant(spec: Spec, name: str, effect: Any) -> tuple[ModelContext, list[Instance]]:
    original = spec.transition(name)
    broken: Transition = dataclasses.replace(original, effect=effect)
    transitions = tuple(broken if t is original else t for t in spec.transitions)
    variant = spec.replace(transitions=transitions)
    ctx = ModelContext(variant)
    return ctx, [i for i in ctx.spec.instances if i.transition.name == name]


def test_the_seeds_ebusy_exit_is_refuted_by_dump_leaves_nothing() -> None:
    """The seed returns EBUSY with the chunks queued so far left on READY (lines
    445-455): ``dump_ebusy_preserves_invariants`` fails on DumpLeavesNothing."""
    spec = build_spec()

    def seed_ebusy(s: Any, p: Any) -> dict[str, Any]:
        return {"dump_chunks_left": 0, "dump_result": DumpResult.EBUSY}

    ctx, instances = _variant(spec, "dump_ebusy", seed_ebusy)
    outcome = preservation_outcome(ctx, instances, "dump_ebusy")
    assert outcome.result is Result.REFUTED
    assert "DumpLeavesNothing" in outcome.detail


def test_a_dump_that_forgets_its_complete_queue_is_refuted() -> None:
    """A collection that returns without freeing COMPLETE strands the commands there."""
    spec = build_spec()

    def forgets(s: Any, p: Any) -> dict[str, Any]:
        return {"dump_result": DumpResult.OK}

    ctx, instances = _variant(spec, "dump_collect", forgets)
    outcome = preservation_outcome(ctx, instances, "dump_collect")
    assert outcome.result is Result.REFUTED


def test_an_xbd_int_that_frees_a_dump_chunk_like_a_bio_is_refuted() -> None:
    """``cm_complete`` is what keeps a chunk's status for ``xbd_dump``: a poll freeing the
    chunk at once (as a bio's command is) breaks the accounting of the dump's chunks."""
    spec = build_spec()
    real = spec.transition("dump_poll")

    def frees(s: Any, p: Any, eff: Any = real.effect) -> dict[str, Any]:
        from xbdspec.model.draft import Draft

        d = Draft(s)
        for name, value in eff(s, p).items():
            setattr(d, name, value)
        for c in range(p.k.commands):
            hit = s.cmd_stage[c] == RingStage.ANSWERED
            d.set_at("cmd_place", c, ite(hit, Place.FREE, d.cmd_place[c]))
        return d.changes

    ctx, instances = _variant(spec, "dump_poll", frees)
    assert preservation_outcome(ctx, instances, "dump_poll").result is Result.REFUTED
