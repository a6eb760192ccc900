"""Each invariant and step property rejects a hand-built state that breaks it, and the
initial state satisfies every invariant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from xbdspec.model.concrete import Stepper
from xbdspec.model.expr import u32_add
from xbdspec.model.spec import build_spec
from xbdspec.model.vocabulary import (
    BioKind,
    BlkifOp,
    Dma,
    DriverState,
    IoPc,
    Place,
    RingStage,
    XenbusState,
)

SPEC = build_spec()
STEPPER = Stepper(SPEC)


def run(*events: tuple[str, dict[str, Any]]) -> Any:
    state = STEPPER.initial()
    for event, params in events:
        _, state = STEPPER.step(state, event, **params)
    return state


Events = tuple[tuple[str, dict[str, Any]], ...]

CONNECTED: Events = (
    ("backend_publish", {"barrier": False, "flush": False}),
    ("backend_watch", {}),
    ("frontend_watch", {}),
    ("backend_watch", {}),
    ("connect_locked", {}),
    ("startio_done", {}),
    ("open", {}),
)
ONE_READ_IN_FLIGHT: Events = (
    *CONNECTED,
    ("strategy", {"bio": 0, "kind": BioKind.READ}),
    ("send_bio", {"bio": 0, "cmd": 0, "dma": Dma.IMMEDIATE}),
    ("startio_done", {}),
)


def at(items: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*items[:index], value, *items[index + 1 :])


BREAKERS: dict[
    str, tuple[tuple[tuple[str, dict[str, Any]], ...], Callable[[Any], dict[str, Any]]]
] = {
    "FreezeAccounting": (ONE_READ_IN_FLIGHT, lambda s: {"frozen": s.frozen + 1}),
    "NoThawUnderflow": (CONNECTED, lambda s: {"panicked": True}),
    "QueueExclusive": (ONE_READ_IN_FLIGHT, lambda s: {"cmd_bio": at(s.cmd_bio, 1, 0)}),
    "CommandConservation": (ONE_READ_IN_FLIGHT, lambda s: {"cmd_grants": at(s.cmd_grants, 1, 1)}),
    "SingleStepOrdering": (
        ONE_READ_IN_FLIGHT,
        lambda s: {
            "cmd_qfreeze": at(s.cmd_qfreeze, 0, True),
            "cmd_frozen": at(s.cmd_frozen, 0, True),
            "frozen": 1,
            "bio_stage": at(s.bio_stage, 1, s.bio_stage[0]),
            "cmd_bio": at(s.cmd_bio, 0, 1),
        },
    ),
    "RingBounds": (ONE_READ_IN_FLIGHT, lambda s: {"req_prod_pvt": u32_add(s.rsp_cons, 3)}),
    "NoLostWakeup": (
        ONE_READ_IN_FLIGHT,
        lambda s: {"rsp_prod": u32_add(s.rsp_cons, 1), "irq_pending": False},
    ),
    "NoUnpublishedRequest": (ONE_READ_IN_FLIGHT, lambda s: {"req_prod": s.rsp_cons}),
    "PublishedBeforeInitialised": (CONNECTED, lambda s: {"fe_published": False}),
    "BackendConnectedAfterPublish": (
        CONNECTED,
        lambda s: {"fe_published": False, "fe_state": XenbusState.Closing},
    ),
    "IONeedsConnection": (ONE_READ_IN_FLIGHT, lambda s: {"drv_state": DriverState.DISCONNECTED}),
    "FeatureSoundness": (
        ONE_READ_IN_FLIGHT,
        lambda s: {"cmd_op": at(s.cmd_op, 0, BlkifOp.WRITE_BARRIER)},
    ),
    "CloseOnlyWhenUnused": (CONNECTED, lambda s: {"fe_state": XenbusState.Closed}),
    "NoLostIO": (ONE_READ_IN_FLIGHT, lambda s: {"bio_completions": at(s.bio_completions, 0, 1)}),
    "AuxRingReservation": (
        ONE_READ_IN_FLIGHT,
        lambda s: {
            "cmd_place": at(s.cmd_place, 1, Place.NONE),
            "req_prod_pvt": u32_add(s.rsp_cons, 2),
        },
    ),
    "AuxRingAccounting": (
        ONE_READ_IN_FLIGHT,
        lambda s: {"cmd_stage": at(s.cmd_stage, 0, RingStage.PRIVATE)},
    ),
    "AuxNegotiatedFeatures": (CONNECTED, lambda s: {"fe_barrier": True}),
    "AuxSuspendPhase": (CONNECTED, lambda s: {"drv_state": DriverState.SUSPENDED}),
    "AuxNoSuspendWhileClosing": (
        CONNECTED,
        lambda s: {"fe_state": XenbusState.Closing, "susp_pc": s.susp_pc.__class__(1)},
    ),
    "AuxLifecycle": (CONNECTED, lambda s: {"be_published": False}),
    "AuxGrantConservation": (CONNECTED, lambda s: {"grants_free": s.grants_free - 1}),
    "AuxBioOrder": (
        CONNECTED,
        lambda s: {"bio_stage": at(s.bio_stage, 1, s.bio_stage[0].__class__(1))},
    ),
    "AuxWaitingWrite": (
        ONE_READ_IN_FLIGHT,
        lambda s: {"flag_wait_idle": True, "frozen": s.frozen + 1},
    ),
    # the seed's EBUSY exit: a dump chunk left on READY once xbd_dump has returned
    "DumpLeavesNothing": (
        CONNECTED,
        lambda s: {
            "cmd_place": at(s.cmd_place, 0, Place.READY),
            "cmd_op": at(s.cmd_op, 0, BlkifOp.WRITE),
        },
    ),
    # a chunk on COMPLETE while the dump has not sent anything yet
    "AuxDumpChunks": (
        (*CONNECTED, ("dump", {"chunks": 1})),
        lambda s: {
            "cmd_place": at(s.cmd_place, 0, Place.COMPLETE),
            "cmd_op": at(s.cmd_op, 0, BlkifOp.WRITE),
        },
    ),
    "AuxConnectedEnds": (CONNECTED, lambda s: {"be_state": XenbusState.InitWait}),
    "AuxStatesUsed": (CONNECTED, lambda s: {"fe_state": XenbusState.Reconfiguring}),
}


def test_every_invariant_has_a_breaker() -> None:
    assert set(BREAKERS) == {inv.name for inv in SPEC.invariants}


def test_the_initial_state_satisfies_every_invariant() -> None:
    assert STEPPER.violated_invariants(STEPPER.initial()) == []


def test_the_scenarios_are_reachable_and_clean() -> None:
    for events in (CONNECTED, ONE_READ_IN_FLIGHT):
        assert STEPPER.violated_invariants(run(*events)) == []


@pytest.mark.parametrize("name", sorted(BREAKERS))
def test_a_state_that_breaks_an_invariant_is_reported(name: str) -> None:
    events, change = BREAKERS[name]
    state = run(*events)
    broken = state._replace(**change(state))
    assert name in STEPPER.violated_invariants(broken)


def test_dispatch_while_frozen_is_reported() -> None:
    before = run(*CONNECTED, ("strategy", {"bio": 0, "kind": BioKind.READ}))
    after = STEPPER.apply(
        before,
        next(i for i in SPEC.instances if i.label == "send_bio(bio=0, cmd=0, dma=IMMEDIATE)"),
    )
    assert STEPPER.violated_step_properties(before, after) == []
    frozen = before._replace(frozen=1, flag_cm_shortage=True)
    assert "NoDispatchWhileFrozen" in STEPPER.violated_step_properties(frozen, after)


def test_rewriting_the_transport_while_connected_is_reported() -> None:
    before = run(*CONNECTED)
    after = before._replace(transport_epoch=before.transport_epoch + 1)
    assert STEPPER.violated_step_properties(before, after) == ["TransportParamsStable"]
    assert before.io_pc == IoPc.IDLE
