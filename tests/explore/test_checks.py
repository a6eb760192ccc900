"""The explorer finds what a deliberately broken model breaks, with the shortest trace."""

from __future__ import annotations

import dataclasses
from typing import Any

from explore_helpers import TINY, model, replace_transition, respec
from xbdspec.model.expr import all_of, one_of
from xbdspec.model.vocabulary import XenbusState as X

from xbdspec.explore.checker import check_model
from xbdspec.explore.counterexample import format_counterexample, label
from xbdspec.explore.replay import dumps, loads_replay, replay_on_model


def _backend_connects_early(s: Any, p: Any) -> Any:
    """The broken guard: the back end connects without waiting for the front end's
    transport keys (no watch event from the front end, no Initialised)."""
    return all_of(one_of(s.be_state, (X.InitWait, X.Initialised)), s.be_online)


def test_the_unbroken_model_keeps_its_invariants_at_small_sizes() -> None:
    report = check_model(spec=model(TINY))
    assert report.exploration.complete
    assert report.violations == []


def test_a_broken_guard_yields_the_shortest_counterexample() -> None:
    spec = replace_transition(model(TINY), "backend_connect", guard=_backend_connects_early)
    report = check_model(spec=spec)
    found = {v.counterexample.property: v.counterexample for v in report.violations}
    cx = found["BackendConnectedAfterPublish"]
    assert cx.kind == "invariant"
    assert [label(s.instance) for s in cx.steps] == [
        "backend_publish(barrier=False, flush=False)",
        "frontend_watch()",
    ]
    assert cx.steps[-1].after.be_state == X.Connected
    assert not cx.steps[-1].after.fe_published
    text = format_counterexample(spec, cx)
    assert "be_state: InitWait -> Connected" in text
    # the replay shows the violation again on the same broken model, not on the real one
    replay = loads_replay(dumps(cx, spec.sizes))
    assert replay_on_model(replay, spec).reproduced


def test_a_request_left_unpublished_is_a_progress_violation() -> None:
    """The hang: ``startio_done`` forgets ``xbd_flush_requests``."""
    spec = replace_transition(model(TINY), "startio_done", effect=lambda s, p: {})
    report = check_model(spec=spec)
    found = {v.counterexample.property: v.counterexample for v in report.violations}
    cx = found["RequestsPublished"]
    assert cx.kind == "progress"
    assert cx.steps[-1].after.req_prod != cx.steps[-1].after.req_prod_pvt
    assert replay_on_model(loads_replay(dumps(cx, spec.sizes)), spec).reproduced
    # the invariant that states it directly fails too
    assert "NoUnpublishedRequest" in found


def test_an_interrupt_that_takes_no_response_is_a_fair_lasso() -> None:
    """The hang: ``xbd_int`` runs but never consumes the responses, and loops for
    ever with ``xbd_startio``; every fair event that stays enabled is taken."""
    spec = replace_transition(model(TINY), "interrupt", effect=lambda s, p: {})
    report = check_model(spec=spec)
    found = {v.counterexample.property: v.counterexample for v in report.violations}
    cx = found["EveryBioCompletes"]
    assert cx.kind == "progress"
    assert cx.cycle_start is not None
    cycle = [s.instance.transition.event for s in cx.steps[cx.cycle_start :]]
    assert "interrupt" in cycle
    assert cx.states[-1] == cx.states[cx.cycle_start]
    outcome = replay_on_model(loads_replay(dumps(cx, spec.sizes)), spec)
    assert outcome.reproduced, outcome.detail


def test_a_removed_transition_is_a_deadlock() -> None:
    """Without the back end's response, a request stays in flight for ever."""
    spec = model(TINY)
    broken = respec(
        spec,
        transitions=tuple(
            dataclasses.replace(t, guard=lambda s, p: False) if t.name == "backend_respond" else t
            for t in spec.transitions
        ),
    )
    report = check_model(spec=broken)
    found = {v.counterexample.property: v.counterexample for v in report.violations}
    deadlock = found["Deadlock"]
    assert deadlock.kind == "deadlock"
    assert deadlock.steps[-1].instance.transition.event == "backend_consume"
    assert found["EveryBioCompletes"].kind == "progress"
    assert replay_on_model(loads_replay(dumps(deadlock, broken.sizes)), broken).reproduced
    # the same trace on the real model is no deadlock: the back end can answer
    assert not replay_on_model(loads_replay(dumps(deadlock, spec.sizes)), spec).reproduced


def test_a_dispatch_while_frozen_breaks_the_step_property() -> None:
    """The broken guard: ``send_bio`` ignores the freeze count."""
    from xbdspec.model import actions as a
    from xbdspec.model.expr import negate
    from xbdspec.model.requests import has_resources, next_bio, rejected
    from xbdspec.model.vocabulary import Dma, DriverState

    def ignores_freeze(s: Any, p: Any) -> Any:
        return all_of(
            p.dma != Dma.FAILED,
            s.drv_state == DriverState.CONNECTED,
            negate(a.ring_full(s, p.k)),
            next_bio(s, p.bio),
            negate(rejected(s, p.bio)),
            has_resources(s, p.k, p.cmd),
        )

    two_bios = dataclasses.replace(TINY, bios=2)
    spec = replace_transition(model(two_bios), "startio_send_bio", guard=ignores_freeze)
    report = check_model(spec=spec, max_states=20_000)
    found = {v.counterexample.property: v.counterexample for v in report.violations}
    cx = found["NoDispatchWhileFrozen"]
    assert cx.kind == "step"
    last = cx.steps[-1]
    assert last.instance.transition.name == "startio_send_bio" and last.before.frozen > 0
    assert replay_on_model(loads_replay(dumps(cx, spec.sizes)), spec).reproduced
    unbroken = check_model(spec=model(two_bios), max_states=20_000)
    assert "NoDispatchWhileFrozen" not in {v.counterexample.property for v in unbroken.violations}
