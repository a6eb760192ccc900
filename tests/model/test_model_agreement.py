"""The concrete and the symbolic interpretation of the declaration agree.

For random states (arbitrary and reachable) and random events, the successor the
concrete interpretation computes, the successor the ``transitions`` machines reach,
and the successor z3 finds for the symbolic transition relation are the same; and
an event is enabled concretely exactly when its symbolic guard is satisfiable.
"""

from __future__ import annotations

from typing import Any

import z3
from hypothesis import given
from hypothesis import strategies as st
from model_strategies import arbitrary_states, reachable_states
from xbdspec.model.concrete import StepError, Stepper, build_machines, fire
from xbdspec.model.declaration import Instance
from xbdspec.model.spec import build_spec
from xbdspec.proofs import encoding as E

SPEC = build_spec()
STEPPER = Stepper(SPEC)
S = E.symbolic_state(SPEC, "s")
T = E.symbolic_state(SPEC, "t")


def symbolic_successor(state: Any, instance: Instance) -> Any | None:
    """The unique successor z3 finds, or None when the step is not enabled."""
    solver = z3.Solver()
    solver.add(E.concrete_constraint(SPEC, S, state), E.transition_relation(SPEC, instance, S, T))
    if solver.check() == z3.unsat:
        return None
    found = E.read_state(SPEC, solver.model(), T)
    # the relation is a function: no other successor exists
    solver.add(z3.Not(E.concrete_constraint(SPEC, T, found)))
    assert solver.check() == z3.unsat, f"{instance.label} has two successors"
    return found


def machine_successor(state: Any, instance: Instance) -> Any | None:
    model, _ = build_machines(SPEC)
    for name, value in state._asdict().items():
        setattr(model, name, value)
    try:
        taken = fire(model, instance.transition.event, **instance.bindings.as_dict())
    except StepError:
        return None
    return model.snapshot() if taken else None


def check_agreement(state: Any, instance: Instance) -> None:
    concrete = STEPPER.apply(state, instance) if STEPPER.is_enabled(state, instance) else None
    symbolic = symbolic_successor(state, instance)
    assert (concrete is None) == (symbolic is None), instance.label
    if concrete is not None:
        assert symbolic is not None and tuple(symbolic) == tuple(concrete), instance.label
    # the machines answer the event: the one transition of it that is enabled
    try:
        _, expected = STEPPER.step(state, instance.transition.event, **instance.bindings.as_dict())
    except StepError:
        expected = None
    got = machine_successor(state, instance)
    assert (got is None) == (expected is None), instance.label
    if expected is not None:
        assert got is not None and tuple(got) == tuple(expected), instance.label


@given(reachable_states(SPEC), st.sampled_from(SPEC.instances))
def test_concrete_and_symbolic_steps_agree_on_reachable_states(
    state: Any, instance: Instance
) -> None:
    check_agreement(state, instance)


@given(reachable_states(SPEC), st.data())
def test_every_enabled_step_agrees(state: Any, data: st.DataObject) -> None:
    enabled = STEPPER.enabled(state)
    if enabled:
        check_agreement(state, data.draw(st.sampled_from(enabled)))


@given(arbitrary_states(SPEC), st.sampled_from(SPEC.instances))
def test_concrete_and_symbolic_steps_agree_on_arbitrary_states(
    state: Any, instance: Instance
) -> None:
    check_agreement(state, instance)


def test_the_machines_have_exactly_the_declared_events() -> None:
    _, machines = build_machines(SPEC)
    triggers = {e for m in machines.values() for e in m.events}
    declared = set(SPEC.events())
    assert triggers == declared, (triggers - declared, declared - triggers)
    for m in machines.values():
        assert not m.auto_transitions
