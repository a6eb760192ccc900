"""The refinement mapping: on a hand-built scenario the reference's abstract state
equals the model's state after the same events, and a broken concrete state shows up
as a broken model invariant."""

from __future__ import annotations

from typing import Any

from xbdspec.model.vocabulary import BioKind, BlkifStatus, Dma

from xbdspec.conformance.contract import EnvChoices
from xbdspec.conformance.harness import LockStep, ModelSide
from xbdspec.conformance.reference_adapter import (
    NOT_CHECKED,
    ReferenceImplementation,
    reference_sizes,
)
from xbdspec.conformance.values import encode_state

GRANT_SHORT = reference_sizes("grant-shortage")

#: (environment event, params, DMA answers, the model's internal steps that follow)
SCENARIO: list[tuple[str, dict[str, Any], tuple[Dma, ...], list[tuple[str, dict[str, Any]]]]] = [
    ("backend_publish", {"barrier": False, "flush": True}, (), []),
    ("backend_watch", {}, (), []),
    ("frontend_watch", {}, (), []),
    ("backend_watch", {}, (), [("connect_locked", {}), ("startio_done", {})]),
    ("frontend_watch", {}, (), []),
    ("open", {}, (), []),
    # an I/O that completes
    (
        "strategy",
        {"bio": 0, "kind": BioKind.WRITE},
        (),
        [("send_bio", {"bio": 0, "cmd": 0, "dma": Dma.IMMEDIATE}), ("startio_done", {})],
    ),
    ("backend_consume", {"cmd": 0}, (), []),
    ("backend_respond", {"cmd": 0, "status": BlkifStatus.OKAY}, (), []),
    ("interrupt", {}, (), [("startio_done", {})]),
    # one in flight, the next is short of grants (10 free, one held by the first);
    # the seed's FREE queue is FIFO: command 1 is next
    (
        "strategy",
        {"bio": 1, "kind": BioKind.READ},
        (),
        [("send_bio", {"bio": 1, "cmd": 1, "dma": Dma.IMMEDIATE}), ("startio_done", {})],
    ),
    ("strategy", {"bio": 2, "kind": BioKind.WRITE}, (), [("grant_shortage", {"bio": 2})]),
    ("backend_consume", {"cmd": 1}, (), []),
    ("backend_respond", {"cmd": 1, "status": BlkifStatus.ERROR}, (), []),
    ("interrupt", {}, (), [("startio_done", {})]),
    # the grants came back: the callback restarts the queue, whose mapping is deferred
    (
        "grants_returned",
        {},
        (Dma.DEFERRED,),
        [("send_bio", {"bio": 2, "cmd": 0, "dma": Dma.DEFERRED}), ("startio_done", {})],
    ),
    ("dma_callback", {"cmd": 0}, (), []),
    ("backend_consume", {"cmd": 0}, (), []),
    ("backend_respond", {"cmd": 0, "status": BlkifStatus.OKAY}, (), []),
    ("interrupt", {}, (), [("startio_done", {})]),
]


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in NOT_CHECKED}


def test_abstract_state_equals_the_model_state_step_by_step() -> None:
    model = ModelSide(GRANT_SHORT)
    state = model.stepper.initial()
    impl = ReferenceImplementation()
    observed = impl.reset(GRANT_SHORT)
    assert _checked(encode_state(state)) == observed.fields
    for event, params, dma, internal in SCENARIO:
        _, state = model.stepper.step(state, event, **params)
        for name, p in internal:
            _, state = model.stepper.step(state, name, **p)
        observed = impl.apply(event, params, EnvChoices(dma))
        expected = _checked(encode_state(state))
        assert observed.fault is None
        differing = {
            k: (expected[k], observed.fields[k])
            for k in expected
            if expected[k] != observed.fields[k]
        }
        assert differing == {}, f"after {event}{params}: model vs reference {differing}"
        assert model.stepper.violated_invariants(state) == []
    # the scenario reached what it set out to reach
    assert state.bio_result[2] != 0 and state.grants_free == GRANT_SHORT.grants


def test_the_harness_finds_the_same_internal_steps() -> None:
    lock = LockStep(ReferenceImplementation(), GRANT_SHORT)
    assert lock.start() is None
    for event, params, dma, _ in SCENARIO:
        assert lock.step(event, params, EnvChoices(dma)) is None
    fired = lock.coverage.transitions
    assert fired["startio_grant_shortage"] == 1 and fired["grant_callback"] == 1
    assert fired["deferred_mapping_done"] == 1


def test_a_corrupted_freeze_count_breaks_freeze_accounting_on_the_reference() -> None:
    lock = LockStep(ReferenceImplementation(), GRANT_SHORT)
    assert lock.start() is None
    for event, params, dma, _ in SCENARIO[:6]:
        assert lock.step(event, params, EnvChoices(dma)) is None
    impl = lock.impl
    assert isinstance(impl, ReferenceImplementation)
    impl._sc().xbd_qfrozen_cnt += 1  # a thaw that never happened
    divergence = lock.step("strategy", {"bio": 0, "kind": BioKind.READ})
    assert divergence is not None
    assert "FreezeAccounting" in divergence.invariants
    assert "frozen" in divergence.differences


def test_a_failed_deferred_mapping_leaves_the_reference_frozen() -> None:
    """Seed note 10 seen through the mapping: the count stays one above its reasons."""
    lock = LockStep(ReferenceImplementation(), GRANT_SHORT)
    assert lock.start() is None
    for event, params, dma, _ in SCENARIO[:6]:
        assert lock.step(event, params, EnvChoices(dma)) is None
    assert (
        lock.step("strategy", {"bio": 0, "kind": BioKind.WRITE}, EnvChoices((Dma.DEFERRED,)))
        is None
    )
    divergence = lock.step("dma_callback_error", {"cmd": 0})
    assert divergence is not None
    assert divergence.observed["frozen"] == 1
    assert "FreezeAccounting" in divergence.invariants
