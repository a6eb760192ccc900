"""Which properties an exploration checks: all of them, or the ones a run names.

TLC checks the ``INVARIANT`` and ``PROPERTY`` lines of its configuration; ``xbdspec
explore --invariant NAME --property NAME`` (or ``invariants = [...]`` and ``properties =
[...]`` in the run configuration, :mod:`xbdspec.config`) does the same.  Each list
restricts its own kind: naming invariants leaves every step and progress property
checked, and naming properties (step or progress properties, by name) leaves every
invariant checked.  Deadlock freedom is always checked.  A name the model does not
declare is an error that lists the names it does.
"""

from __future__ import annotations

from collections.abc import Collection

from xbdspec.errors import XbdspecError
from xbdspec.model.declaration import Spec


def select(
    spec: Spec,
    invariants: Collection[str] | None = None,
    properties: Collection[str] | None = None,
) -> Spec:
    """``spec`` with only the named invariants and properties (None or empty: all)."""
    if not invariants and not properties:
        return spec
    kept_invariants = spec.invariants
    if invariants:
        _known("invariant", invariants, [i.name for i in spec.invariants], "--invariant")
        kept_invariants = tuple(i for i in spec.invariants if i.name in invariants)
    kept_steps, kept_progress = spec.step_properties, spec.progress
    if properties:
        declared = [p.name for p in spec.step_properties] + [p.name for p in spec.progress]
        _known("property", properties, declared, "--property")
        kept_steps = tuple(p for p in spec.step_properties if p.name in properties)
        kept_progress = tuple(p for p in spec.progress if p.name in properties)
    return Spec(
        sizes=spec.sizes,
        fields=spec.fields,
        components=tuple(spec.components.values()),
        transitions=spec.transitions,
        initial=spec._initial,
        invariants=kept_invariants,
        step_properties=kept_steps,
        progress=kept_progress,
    )


def _known(kind: str, names: Collection[str], declared: list[str], option: str) -> None:
    unknown = sorted(set(names) - set(declared))
    if unknown:
        raise XbdspecError(
            f"{option}: the model declares no {kind} {', '.join(map(repr, unknown))}; "
            f"its {kind} names are {', '.join(declared)}"
        )
