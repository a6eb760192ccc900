"""The concrete interpretation: the declaration run on plain Python values.

Two forms, one meaning:

* :class:`Stepper`: successor states computed straight from the declaration on
  immutable ``namedtuple`` states (what the explorer, the trace checker and the
  differential tests use: hashable, cheap to copy);
* :func:`build_machines`: the same transitions as ``transitions`` machines (one per
  component, ``auto_transitions`` off, guards as conditions, effects as callbacks) on
  a mutable :class:`ExecutableModel`, for users who want an object that answers
  ``model.strategy(bio=0, kind=BioKind.READ)``.

A test checks that both agree with each other and with the symbolic encoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from transitions import EventData, Machine, MachineError

from xbdspec.errors import XbdspecError

from .declaration import Bindings, Instance, Spec, Transition


class StepError(XbdspecError):
    """An event was asked for that the model does not allow in the current state."""


def effect_changes(t: Transition, control: str, state: Any, bindings: Any) -> dict[str, Any]:
    """The fields ``t`` assigns from ``state``: its effect, and its component's control
    field set to ``dest``.  An effect may not assign the control field itself."""
    changes = dict(t.effect(state, bindings))
    if control in changes:
        raise StepError(
            f"transition {t.name} assigns its own component's control field {control!r} "
            "in its effect; declare the change as the transition's dest instead."
        )
    if t.dest is not None:
        changes[control] = t.dest
    return changes


class Stepper:
    """Successors of concrete states, computed from the declaration.

    Attributes:
        spec: the declaration.
        by_source: for each component, each control state, the instances that may leave it.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._control = {t.name: spec.control_of(t) for t in spec.transitions}
        self._control_index = {
            name: spec.State._fields.index(ctrl) for name, ctrl in self._control.items()
        }
        self._sources = {t.name: frozenset(int(x) for x in t.source) for t in spec.transitions}

    def initial(self) -> Any:
        """The initial state, with the ring indices starting at ``sizes.ring_base``."""
        return self.spec.State(**self.spec.initial_fields(self.spec.sizes.ring_base))

    def is_enabled(self, state: Any, instance: Instance) -> bool:
        """Whether ``instance`` may happen in ``state`` (source and guard)."""
        t = instance.transition
        if state[self._control_index[t.name]] not in self._sources[t.name]:
            return False
        return bool(t.guard(state, instance.bindings))

    def apply(self, state: Any, instance: Instance) -> Any:
        """The state after ``instance`` (which must be enabled)."""
        t = instance.transition
        return state._replace(**effect_changes(t, self._control[t.name], state, instance.bindings))

    def successors(self, state: Any) -> Iterator[tuple[Instance, Any]]:
        """Every enabled instance and the state it leads to."""
        for instance in self.spec.instances:
            if self.is_enabled(state, instance):
                yield instance, self.apply(state, instance)

    def enabled(self, state: Any) -> list[Instance]:
        """The instances enabled in ``state``."""
        return [i for i in self.spec.instances if self.is_enabled(state, i)]

    def step(self, state: Any, event: str, **params: Any) -> tuple[Instance, Any]:
        """Apply ``event(**params)``; a :class:`StepError` if the model does not allow it."""
        candidates = [
            i
            for i in self.spec.instances
            if i.transition.event == event and i.bindings.as_dict() == params
        ]
        if not candidates:
            raise StepError(f"the model has no event {event}{Bindings(None, params)!r}")
        for instance in candidates:
            if self.is_enabled(state, instance):
                return instance, self.apply(state, instance)
        raise StepError(f"{event}{Bindings(None, params)!r} is not allowed in this state")

    def violated_invariants(self, state: Any) -> list[str]:
        """The names of the invariants ``state`` breaks."""
        k = self.spec.sizes
        return [inv.name for inv in self.spec.invariants if not inv.holds(state, k)]

    def violated_step_properties(self, before: Any, after: Any) -> list[str]:
        """The names of the step properties the step ``before -> after`` breaks."""
        k = self.spec.sizes
        return [p.name for p in self.spec.step_properties if not p.holds(before, after, k)]


# --------------------------------------------------------------------------- transitions machines


class ExecutableModel:
    """A mutable state object driven by ``transitions`` machines (one per component).

    Every field of the declaration is an attribute; each event of the declaration is
    a trigger method taking the event's parameters as keyword arguments.
    """

    spec: Spec

    def snapshot(self) -> Any:
        """The current state as the declaration's immutable ``State`` record."""
        return self.spec.State(*(getattr(self, f) for f in self.spec.State._fields))


def _condition(t: Transition, spec: Spec) -> Any:
    def condition(event: EventData) -> bool:
        model: Any = event.model
        return bool(t.guard(model.snapshot(), Bindings(spec.sizes, event.kwargs)))

    condition.__name__ = f"guard_{t.name}"
    return condition


def _callback(t: Transition, spec: Spec) -> Any:
    control = spec.control_of(t)

    def callback(event: EventData) -> None:
        model: Any = event.model
        changes = t.effect(model.snapshot(), Bindings(spec.sizes, event.kwargs))
        for name, value in changes.items():
            if name == control:
                raise StepError(f"transition {t.name} assigns its own control field {control!r}")
            setattr(model, name, value)

    callback.__name__ = f"effect_{t.name}"
    return callback


def build_machines(spec: Spec) -> tuple[ExecutableModel, dict[str, Machine]]:
    """A fresh :class:`ExecutableModel` in the initial state and its machines."""
    model = ExecutableModel()
    model.spec = spec
    initial = spec.initial_fields(spec.sizes.ring_base)
    for name, value in initial.items():
        setattr(model, name, value)
    machines: dict[str, Machine] = {}
    for component in spec.components.values():
        control = spec.field_by_name[component.control]
        states = control.domain.enum_type
        machine = Machine(
            model=model,
            states=states,
            initial=initial[component.control],
            model_attribute=component.control,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for t in spec.transitions:
            if t.component != component.name:
                continue
            machine.add_transition(
                trigger=t.event,
                source=list(t.source),
                dest=t.dest if t.dest is not None else None,
                conditions=[_condition(t, spec)],
                before=[_callback(t, spec)],
            )
        machines[component.name] = machine
    return model, machines


def fire(model: ExecutableModel, event: str, **params: Any) -> bool:
    """Trigger ``event`` on the machines; True when a transition was taken."""
    try:
        return bool(getattr(model, event)(**params))
    except MachineError as exc:
        raise StepError(f"{event} is not allowed from the current state: {exc.value}") from None
