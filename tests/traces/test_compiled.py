"""The compiled steps are the declaration's steps (:mod:`xbdspec.traces.compiled`).

Every transition of the protocol model, with parameters drawn from their domains, is
compiled and compared with the protocol checker's own step (``ProtocolChecker._take``:
the control state among the sources, every condition, the effect) on states reached
by random walks of the model and on arbitrary states whose ring indices lie close to
one another (so that the ring's conditions hold now and then): the same answer, the
same state after, field by field the very same objects (an enumeration member, not an
equal int; ``True``, not ``1``).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xbdspec.model.concrete import Stepper
from xbdspec.model.declaration import Instance
from xbdspec.model.protocol import ProtocolSizes

from xbdspec.traces.compiled import NotCompilable, compile_step
from xbdspec.traces.protocol import RING_INDICES, ProtocolChecker, StepTable, step_table

#: Small sizes (every parameter domain enumerable), the ring indices near the wrap.
SIZES = ProtocolSizes(ids=3, ring_slots=2, max_order=1, max_queues=2, ring_base=0xFFFF_FFFE)
#: The sizes the access-log checker uses (no request ids: the handshake only).
HANDSHAKE = ProtocolSizes(ids=0, ring_slots=1, max_order=8, max_queues=64)


def _table(sizes: ProtocolSizes) -> StepTable:
    return step_table(sizes)


def _plain(table: StepTable, instance: Instance, state: Any) -> Any:
    """The protocol checker's own step: the state after, or None."""
    checker = ProtocolChecker(table.sizes, table=False)
    found = checker._take(state, [(instance, instance.transition.name)], [])
    return None if found is None else found[0]


@st.composite
def reached(draw: st.DrawFn, sizes: ProtocolSizes, max_steps: int = 60) -> Any:
    """A state a random walk of the protocol model reaches."""
    stepper = Stepper(_table(sizes).spec)
    state = stepper.initial()
    for _ in range(draw(st.integers(0, max_steps))):
        options = list(stepper.successors(state))
        if not options:
            break
        _, state = options[draw(st.integers(0, len(options) - 1))]
    return state


@st.composite
def arbitrary(draw: st.DrawFn, sizes: ProtocolSizes) -> Any:
    """Any state whose fields lie in their domains, the ring's indices within a few of
    one another (anywhere in 2**32, often across the wrap)."""
    spec = _table(sizes).spec
    base = draw(st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 4, 2**32 - 1)))
    values: dict[str, Any] = {}
    for f in spec.fields:
        if f.name in RING_INDICES:
            values[f.name] = (base + draw(st.integers(0, 4))) & 0xFFFF_FFFF
            continue
        domain = st.sampled_from(f.domain.values())
        values[f.name] = (
            draw(domain) if f.length is None else tuple(draw(domain) for _ in range(f.length))
        )
    return spec.State(**values)


@st.composite
def instances(draw: st.DrawFn, sizes: ProtocolSizes) -> Instance:
    """A transition of the protocol model with parameters from their domains."""
    table = _table(sizes)
    usable = [t for t in table.spec.transitions if all(p.domain_for(sizes) for p in t.params)]
    transition = draw(st.sampled_from(usable))
    params = {p.name: draw(st.sampled_from(p.domain_for(sizes))) for p in transition.params}
    return table.instance(transition.name, params)


def _agree(sizes: ProtocolSizes, instance: Instance, state: Any) -> None:
    table = _table(sizes)
    name = instance.transition.name
    step = compile_step(instance.transition, table.controls[name], instance, state)
    assert step is not None, f"{name} is not compiled"
    expected = _plain(table, instance, state)
    got = step(state)
    assert got == expected, name
    if expected is not None:
        assert type(got) is type(expected)
        for field, a, b in zip(got._fields, got, expected, strict=True):
            if isinstance(b, tuple):
                pairs = zip(a, b, strict=True)
                assert all(x is y or (x == y and type(x) is type(y)) for x, y in pairs), field
            else:
                assert type(a) is type(b), field


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_compiled_step_is_the_models_step_on_reached_states(data: st.DataObject) -> None:
    state = data.draw(reached(SIZES))
    _agree(SIZES, data.draw(instances(SIZES)), state)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_compiled_step_is_the_models_step_on_arbitrary_states(data: st.DataObject) -> None:
    state = data.draw(arbitrary(SIZES))
    _agree(SIZES, data.draw(instances(SIZES)), state)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_compiled_handshake_step_is_the_models_step(data: st.DataObject) -> None:
    """The sizes the access-log checker instantiates the model with (orders up to 8,
    64 queues; no request ids, so the handshake's steps only)."""
    state = data.draw(arbitrary(HANDSHAKE))
    _agree(HANDSHAKE, data.draw(instances(HANDSHAKE)), state)


def test_every_ring_step_with_every_parameter_is_compiled() -> None:
    """Nothing in the ring's declaration is beyond the compiler: a checker never falls
    back to the model's own steps for want of a compiled one."""
    table = _table(SIZES)
    sample = table.stepper.initial()
    for transition in table.spec.transitions:
        for combo in itertools.product(*(p.domain_for(SIZES) for p in transition.params)):
            params = {p.name: v for p, v in zip(transition.params, combo, strict=True)}
            instance = table.instance(transition.name, params)
            step = compile_step(transition, table.controls[transition.name], instance, sample)
            assert step is not None, instance.label


def test_what_the_compiler_cannot_follow_stays_interpreted() -> None:
    """A condition that looks at a state field with Python's ``if`` (which the
    declaration's rules never do) cannot be compiled: the step is not compiled, and
    the term says why when asked directly."""
    table = _table(SIZES)
    wake = table.transitions["backend_wake"]

    def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
        if s.evt_to_back:  # Python's if on a term
            return [("pending", True)]
        return [("not pending", False)]

    odd = dataclasses.replace(wake, conditions=conditions)
    instance = Instance(odd, table.instance("backend_wake", {}).bindings)
    sample = table.stepper.initial()
    assert compile_step(odd, table.controls["backend_wake"], instance, sample) is None
    with pytest.raises(NotCompilable, match="bool"):
        from xbdspec.traces.compiled import Code

        bool(Code("t1"))


def test_instances_that_differ_in_their_values_only_share_one_code_object() -> None:
    """``backend_consume(id=3)`` and ``(id=4)`` compile to the same text (the ids are
    values of the function, not of its text): one ``compile`` for all eight ids, but
    for ``id=1``, the value the step also adds to ``req_cons`` (one name for both)."""
    sizes = ProtocolSizes(ids=8, ring_slots=4, max_order=1, max_queues=1)
    table = _table(sizes)
    sample = table.stepper.initial()
    codes: dict[str, Any] = {}
    for i in range(sizes.ids):
        instance = table.instance("backend_consume", {"id": i})
        assert compile_step(
            instance.transition, table.controls["backend_consume"], instance, sample, codes
        )
    assert len(codes) == 2


def test_which_responses_a_service_takes_is_a_value_of_its_code() -> None:
    """``frontend_service_ring`` taking responses 1 and 2, or 3, 4 and 6: its tests of
    the taken ids and its assignments to them are loops over the ids, one value of the
    function, so both share one code object (and give the model's own states)."""
    sizes = ProtocolSizes(ids=8, ring_slots=4, max_order=1, max_queues=1)
    table = _table(sizes)
    sample = table.stepper.initial()
    codes: dict[str, Any] = {}
    for taken in ({1, 2}, {3, 4, 6}, {0, 7}):
        take = tuple(i in taken for i in range(sizes.ids))
        params = {"take": take, "end_grants": True, "rearm": False}
        instance = table.instance("frontend_service_ring", params)
        step = compile_step(
            instance.transition, table.controls["frontend_service_ring"], instance, sample, codes
        )
        assert step is not None
    assert len(codes) == 1
