"""Counterexamples: concrete event sequences, printed as steps and state changes.

The search keeps only keys of canonical states; a counterexample is rebuilt by
replaying the path on the model from the concrete initial state, choosing at each
step an enabled instance whose successor falls in the recorded class (under
symmetry the ``cmd`` parameters may differ from the ones the search used on the
representatives).  A cycle is followed until the concrete state comes back to
where the cycle started, at most ``commands!`` times round.
"""

from __future__ import annotations

import builtins
import enum
import math
from dataclasses import dataclass
from typing import Any

from xbdspec.errors import XbdspecError
from xbdspec.model.declaration import Instance, Spec

from .search import Finding, Graph
from .target import ModelTarget


@dataclass(frozen=True)
class Step:
    """One step of a counterexample."""

    instance: Instance
    before: Any
    after: Any


@dataclass
class Counterexample:
    """A replayable witness of one violated property.

    Attributes:
        property, kind: as in :class:`~xbdspec.explore.search.Finding`.
        initial: the initial state.
        steps: the events, in order.
        when_at: for a progress violation, the number of steps before the state in
            which ``when`` holds and from which ``goal`` never does.
        cycle_start: for a lasso, the index of the first step of the cycle; the
            state after the last step equals the state before ``steps[cycle_start]``.
    """

    property: str
    kind: str
    initial: Any
    steps: list[Step]
    when_at: int | None = None
    cycle_start: int | None = None

    @builtins.property
    def states(self) -> list[Any]:
        """The states along the trace, the initial one first."""
        return [self.initial, *(s.after for s in self.steps)]


class ConcretisationError(XbdspecError):
    """The recorded path could not be replayed on the model (symmetry does not hold)."""


def _follow(
    target: ModelTarget, graph: Graph, state: Any, iid: int, number: int
) -> tuple[int, Any]:
    wanted = graph.keys[number]
    options = [(step[0], step[1]) for step in target.expand_any(state) if step[5] == wanted]
    if not options:
        raise ConcretisationError(
            f"no step from the concrete state reaches state #{number} of the search; the "
            "model is not symmetric in its commands (run with --no-symmetry)."
        )
    for i, after in options:
        if i == iid:
            return i, after
    return options[0]


def build(target: ModelTarget, graph: Graph, finding: Finding) -> Counterexample:
    """The concrete counterexample of ``finding``."""
    spec = target.spec
    state = target.initial()
    initial = state
    steps: list[Step] = []

    def walk(path: list[tuple[int, int]]) -> None:
        nonlocal state
        for iid, number in path:
            i, after = _follow(target, graph, state, iid, number)
            steps.append(Step(spec.instances[i], state, after))
            state = after

    walk(graph.path_to(finding.state))
    cx = Counterexample(finding.property, finding.kind, initial, steps)
    if finding.kind == "step":
        candidates = [
            (step[0], step[1]) for step in target.expand_any(state) if finding.property in step[3]
        ]
        if not candidates:
            raise ConcretisationError(f"no step from the concrete state breaks {finding.property}")
        i, after = next(((i, a) for i, a in candidates if i == finding.instance), candidates[0])
        steps.append(Step(spec.instances[i], state, after))
    elif finding.kind == "progress":
        cx.when_at = len(steps)
        walk(finding.stem_extra)
        if finding.cycle:
            cx.cycle_start = len(steps)
            entry = state
            pairs = list(zip(finding.cycle_labels, finding.cycle[1:], strict=True))
            for _ in range(math.factorial(spec.sizes.commands)):
                walk(pairs)
                if state == entry:
                    break
            else:
                raise ConcretisationError("the cycle does not close on the concrete states")
    return cx


# --------------------------------------------------------------------------- printing


def show_value(spec: Spec, name: str, value: Any) -> str:
    """A field value as it reads in the docs: enum members by name."""
    domain = spec.field_by_name[name].domain
    if domain.enum_type is not None and not isinstance(value, bool):
        return domain.enum_type(value).name
    if domain.kind == "u32":
        return f"{value:#x}"
    return repr(value)


def changes(spec: Spec, before: Any, after: Any) -> list[str]:
    """The fields ``after`` changed, one ``name: old -> new`` line each (per element
    for arrays)."""
    lines = []
    for name in spec.State._fields:
        old, new = getattr(before, name), getattr(after, name)
        if old == new:
            continue
        if isinstance(old, tuple):
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                if a != b:
                    lines.append(
                        f"{name}[{i}]: {show_value(spec, name, a)} -> {show_value(spec, name, b)}"
                    )
        else:
            lines.append(f"{name}: {show_value(spec, name, old)} -> {show_value(spec, name, new)}")
    return lines


def label(instance: Instance) -> str:
    """``event(param=value, ...)`` with enum members by name."""
    params = ", ".join(f"{n}={_param(v)}" for n, v in instance.bindings.as_dict().items())
    return f"{instance.transition.event}({params})"


def _param(value: Any) -> str:
    return value.name if isinstance(value, enum.Enum) else repr(value)


def describe(cx: Counterexample) -> str:
    """One line per kind of violation, e.g. ``invariant FreezeAccounting``."""
    return f"{cx.kind} {cx.property}"


def format_counterexample(spec: Spec, cx: Counterexample) -> str:
    """The counterexample as text: each event, then the fields it changed."""
    what = {
        "invariant": f"invariant {cx.property} is violated after {len(cx.steps)} steps",
        "step": f"step property {cx.property} is violated by step {len(cx.steps)}",
        "deadlock": f"deadlock after {len(cx.steps)} steps: "
        "no event is enabled while work is pending",
        "progress": f"progress property {cx.property} fails",
    }[cx.kind]
    lines = [what + ":"]
    for n, step in enumerate(cx.steps, 1):
        if cx.when_at is not None and n - 1 == cx.when_at:
            lines.append("  -- `when` holds here; `goal` never holds from here on --")
        if cx.cycle_start is not None and n - 1 == cx.cycle_start:
            lines.append("  -- the cycle starts here and repeats for ever --")
        lines.append(f"  {n:3}. {label(step.instance)}  [{step.instance.transition.name}]")
        lines.extend(f"         {line}" for line in changes(spec, step.before, step.after))
    if cx.when_at is not None and cx.when_at == len(cx.steps):
        lines.append("  -- `when` holds here; `goal` never holds from here on --")
    if cx.kind == "progress" and cx.cycle_start is None:
        lines.append("  -- no fair event is enabled: the behaviour may stop here --")
    elif cx.cycle_start is not None:
        lines.append("  -- back to the state where the cycle started --")
    return "\n".join(lines)
