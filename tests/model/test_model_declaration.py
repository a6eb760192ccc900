"""The declaration language refuses malformed declarations with messages that name the
rule, and the model's committed diagrams are the ones the declaration draws."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from xbdspec.model.concrete import StepError, Stepper
from xbdspec.model.declaration import (
    DeclarationError,
    Param,
    Spec,
    TransitionTable,
)
from xbdspec.model.diagram import pages
from xbdspec.model.spec import COMPONENTS, build_spec
from xbdspec.model.state import Sizes, fields, initial
from xbdspec.model.vocabulary import IoPc

SPEC = build_spec()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "diagrams"


def respec(transitions: Any) -> Spec:
    return Spec(
        sizes=SPEC.sizes,
        fields=fields(SPEC.sizes),
        components=COMPONENTS,
        transitions=transitions,
        initial=initial,
        invariants=SPEC.invariants,
        step_properties=SPEC.step_properties,
        progress=SPEC.progress,
    )


def test_a_transition_needs_guard_and_effect() -> None:
    table = TransitionTable()
    with pytest.raises(
        DeclarationError, match="must define `effect` and either `guard` or `conditions`"
    ):

        @table.step(event="e", component="io", source=[IoPc.IDLE], seed="x")
        class NoEffect:
            """Doc."""

            @staticmethod
            def guard(s: Any, p: Any) -> Any:
                return True


def test_duplicate_names_are_refused() -> None:
    t = SPEC.transitions[0]
    with pytest.raises(DeclarationError, match="unique"):
        respec([t, t])


def test_an_unknown_component_is_refused() -> None:
    t = dataclasses.replace(SPEC.transitions[0], component="nowhere")
    with pytest.raises(DeclarationError, match="not declared"):
        respec([t])


def test_a_state_outside_the_control_field_is_refused() -> None:
    t = dataclasses.replace(SPEC.transitions[0], dest=99)
    with pytest.raises(DeclarationError, match="is not a state of"):
        respec([t])


def test_one_event_takes_one_parameter_list() -> None:
    a = SPEC.transition("startio_done")
    b = dataclasses.replace(a, name="other", params=(Param("x", (0, 1)),))
    with pytest.raises(DeclarationError, match="different parameters"):
        respec([a, b])


def test_an_effect_may_not_assign_its_own_control_field() -> None:
    t = SPEC.transition("startio_done")
    bad = dataclasses.replace(t, effect=lambda s, p: {"io_pc": IoPc.STARTIO})
    spec = respec([*(x for x in SPEC.transitions if x is not t), bad])
    state = Stepper(spec).initial()._replace(io_pc=IoPc.STARTIO)
    instance = next(i for i in spec.instances if i.transition is bad)
    with pytest.raises(StepError, match="declare the change as the transition's dest"):
        Stepper(spec).apply(state, instance)


def test_every_size_builds() -> None:
    for k in (
        Sizes(commands=1, bios=1, ring_slots=1),
        Sizes(commands=3, bios=4, ring_slots=2),
        Sizes(commands=0, bios=0),
    ):
        spec = build_spec(k)
        assert Stepper(spec).violated_invariants(Stepper(spec).initial()) == []


def test_every_transition_names_its_seed_function_and_says_what_it_does() -> None:
    for t in SPEC.transitions:
        assert t.seed and t.doc, t.name


def test_every_invariant_says_what_it_means_and_where_it_comes_from() -> None:
    for inv in SPEC.invariants:
        assert inv.doc.strip() and inv.source.strip(), inv.name


def test_committed_diagrams_are_up_to_date() -> None:
    for name, text in pages().items():
        path = DOCS / name
        assert path.exists(), f"{path} is missing: run `xbdspec diagram`"
        assert path.read_text() == text, f"{path} is stale: run `xbdspec diagram`"


def test_a_changed_guard_changes_the_diagram() -> None:
    t = SPEC.transition("startio_done")
    renamed = dataclasses.replace(t, name="startio_stops")
    spec = respec([renamed if x is t else x for x in SPEC.transitions])
    assert pages(spec)["io.md"] != pages(SPEC)["io.md"]
