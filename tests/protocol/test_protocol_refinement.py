"""The FreeBSD model refines the protocol model: every obligation proved, every FreeBSD
transition mapped, a broken mapping or a broken FreeBSD step refuted, and random runs
of the FreeBSD model followed step by step in the protocol model."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from xbdspec.model.concrete import Stepper
from xbdspec.model.expr import all_of
from xbdspec.model.protocol.spec import build_protocol_spec
from xbdspec.model.refinement import HIDDEN, REFINES, abstraction, protocol_sizes
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes
from xbdspec.model.vocabulary import FrontPc, XenbusState
from xbdspec.proofs.refinement import (
    RefinementContext,
    initial_refinement_obligation,
    refinement_obligation,
    refinement_obligations,
)
from xbdspec.proofs.results import Result

SPEC = build_spec()


def test_every_freebsd_transition_says_what_it_refines() -> None:
    protocol = {t.name for t in build_protocol_spec(protocol_sizes(SPEC.sizes)).transitions}
    assert set(REFINES) == {t.name for t in SPEC.transitions}
    for name, alternatives in REFINES.items():
        assert alternatives, name
        for path in alternatives:
            assert set(path) <= protocol, (name, path)


def test_every_refinement_obligation_is_proved() -> None:
    results = {o.name: o.run() for o in refinement_obligations(SPEC)}
    assert len(results) == len(SPEC.transitions) + 1
    bad = {n: r.detail for n, r in results.items() if r.result is not Result.PROVED}
    assert not bad


@pytest.mark.parametrize(
    ("transition", "wrong"),
    [
        ("frontend_connect", ((),)),
        ("backend_consume", (("backend_respond",),)),
        ("interrupt", ((),)),
        ("startio_send_bio", ((),)),
        ("resume_with_new_backend", (("toolstack_resume",),)),
        ("unplug", (("toolstack_detach",),)),
    ],
)
def test_a_broken_mapping_is_refuted(transition: str, wrong: tuple[tuple[str, ...], ...]) -> None:
    rc = RefinementContext(SPEC, {**REFINES, transition: wrong})
    outcome = refinement_obligation(rc, SPEC.transition(transition)).run()
    assert outcome.result is Result.REFUTED
    assert "its protocol image changes" in "\n".join(outcome.counterexample)


def test_a_freebsd_step_that_connects_early_refines_nothing() -> None:
    """A front end that goes Connected without waiting for the back end's Connected."""
    t = SPEC.transition("frontend_connect")

    def guard(s: Any, p: Any) -> Any:
        return all_of(
            s.be_watch_pending, s.fe_pc == FrontPc.IDLE, s.fe_state == XenbusState.Initialised
        )

    broken = dataclasses.replace(t, guard=guard)
    spec = SPEC.replace(transitions=tuple(broken if x is t else x for x in SPEC.transitions))
    outcome = refinement_obligation(
        RefinementContext(spec), spec.transition("frontend_connect")
    ).run()
    assert outcome.result is Result.REFUTED
    assert "the back end is Connected" in "\n".join(outcome.counterexample)


def test_the_initial_state_maps_to_the_protocols() -> None:
    assert initial_refinement_obligation(RefinementContext(SPEC)).run().result is Result.PROVED


def _matches(
    spec: Any, stepper: Stepper, state: Any, path: tuple[str, ...], target: dict[str, Any]
) -> Any:
    """A protocol state reached from ``state`` along ``path`` whose mapped fields are
    ``target``, or None."""
    frontier = [state]
    for name in path:
        t = spec.transition(name)
        frontier = [
            stepper.apply(s, i)
            for s in frontier
            for i in spec.instances
            if i.transition is t and stepper.is_enabled(s, i)
        ]
    for s in frontier:
        if all(getattr(s, n) == v for n, v in target.items()):
            return s
    return None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_freebsd_runs_are_protocol_runs(seed: int) -> None:
    """Concretely: every step of a random FreeBSD run is one of its alternatives from the
    protocol state the run has reached (hidden fields included)."""
    sizes = Sizes(ring_base=0xFFFF_FFFE)
    concrete = build_spec(sizes)
    c_step = Stepper(concrete)
    protocol = build_protocol_spec(protocol_sizes(sizes))
    p_step = Stepper(protocol)
    rng = random.Random(seed)
    state = c_step.initial()
    image = p_step.initial()
    assert all(getattr(image, n) == v for n, v in abstraction(state, sizes).items())
    taken = runs = 0
    visited: set[str] = set()
    # at least 400 steps, and on until the run has been through the handshake and the
    # ring (a random walk gets there in a few hundred steps; the bound keeps it finite)
    through = {"frontend_connect", "startio_send_bio", "backend_respond", "interrupt"}
    while taken < 400 or (not through <= visited and taken < 5000):
        # a step that changes nothing (a spurious interrupt while disconnected) is checked
        # like any other but taken only now and then, and a run where only such steps are
        # left is over
        options = list(c_step.successors(state))
        moving = [(i, a) for i, a in options if a != state]
        if not moving or rng.random() < 0.01:
            state, image, runs = c_step.initial(), p_step.initial(), runs + 1
            continue
        instance, after = rng.choice(options if rng.random() < 0.1 else moving)
        target = {
            n: (tuple(v) if isinstance(v, tuple) else v)
            for n, v in abstraction(after, sizes).items()
        }
        for path in REFINES[instance.transition.name]:
            reached = _matches(protocol, p_step, image, path, target)
            if reached is not None:
                image = reached
                break
        else:
            pytest.fail(
                f"seed {seed}: {instance.label} refines none of {REFINES[instance.transition.name]}"
            )
        state = after
        taken += 1
        visited.add(instance.transition.name)
    assert runs >= 2
    # the run went through the handshake and the ring, not only the first steps
    assert through <= visited
    assert set(HIDDEN) <= set(protocol.State._fields)
