"""Shared helpers for the explorer's tests: small sizes and respecified models."""

from __future__ import annotations

import dataclasses
from typing import Any

from xbdspec.model.declaration import Progress, Spec, Transition
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

#: small enough for a test: two commands, one bio, no suspend, no unplug, no dump
TINY = Sizes(commands=2, bios=1, ring_slots=2, grants=3, suspends=0, unplugs=0, dumps=0)
#: still small, with a suspend and an unplug and a second bio (no dump: the explorer's
#: default runs explore none)
SMALL = Sizes(commands=2, bios=2, ring_slots=1, grants=2, suspends=1, unplugs=1, dumps=0)

#: the events of xbd_startio's loop, which the declaration's fairness calls "startio"
STARTIO_LOOP = (
    "startio_done",
    "send_ready",
    "send_bio",
    "wait_idle",
    "reject_bio",
    "command_shortage",
    "grant_shortage",
)


def respec(
    spec: Spec,
    *,
    transitions: tuple[Transition, ...] | None = None,
    progress: tuple[Progress, ...] | None = None,
) -> Spec:
    """A copy of ``spec`` with its transitions or progress properties replaced."""
    return Spec(
        sizes=spec.sizes,
        fields=spec.fields,
        components=tuple(spec.components.values()),
        transitions=spec.transitions if transitions is None else transitions,
        initial=spec._initial,
        invariants=spec.invariants,
        step_properties=spec.step_properties,
        progress=spec.progress if progress is None else progress,
    )


def with_loop_fairness(spec: Spec) -> Spec:
    """``spec`` with the startio loop's events fair (see the explorer's report:
    the declaration's fairness name ``startio`` is no event)."""
    progress = tuple(
        dataclasses.replace(
            p, fairness=tuple(n for n in p.fairness if n != "startio") + STARTIO_LOOP
        )
        for p in spec.progress
    )
    return respec(spec, progress=progress)


def replace_transition(spec: Spec, name: str, **changes: Any) -> Spec:
    """``spec`` with transition ``name``'s guard or effect replaced."""
    transitions = tuple(
        dataclasses.replace(t, **changes) if t.name == name else t for t in spec.transitions
    )
    assert any(t.name == name for t in spec.transitions), name
    return respec(spec, transitions=transitions)


def model(sizes: Sizes) -> Spec:
    """The model for ``sizes``, with the startio loop fair."""
    return with_loop_fairness(build_spec(sizes))
