"""A faster concrete interpretation of the declaration, for the explorer.

:class:`FastStepper` computes exactly what :meth:`Stepper.successors` computes,
from the same declaration, without a second copy of the rules.  Three things make
it faster, all derived from the declaration automatically:

* **dispatch on control states**: a transition can only fire when its component's
  control field is in ``transition.source``; for each component and each value of
  its control field, the instances that may leave it are known in advance;
* **guards memoised on what they read**: for each component and control value, the
  list of enabled instances is cached on the projection of the state onto the
  fields those guards read (:mod:`xbdspec.explore.memo` explains why that is sound even when the
  reads depend on values);
* **effects memoised the same way**, each as a list of ``(field position, value)``
  writes applied to a list copy of the state tuple (no ``namedtuple._replace``).

Invariants and step properties are memoised the same way (:meth:`violated_invariants`,
:meth:`violated_step_properties`).  ``tests/explore/test_fast.py`` checks that the
result equals :meth:`Stepper.successors` on every state of small explorations and
on random states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xbdspec.model.concrete import Stepper, effect_changes
from xbdspec.model.declaration import Instance, Spec

from .memo import ProjectionMemo, UnaryMemo

_MISSING = object()


class FastStepper:
    """Successors of concrete states, memoised from the declaration.

    Attributes:
        spec: the declaration.
        instances: ``spec.instances``; successors name an instance by its position here.
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.instances: tuple[Instance, ...] = spec.instances
        self._reference = Stepper(spec)
        fields = spec.State._fields
        self.field_index: dict[str, int] = {name: i for i, name in enumerate(fields)}
        self._make = spec.State._make
        self._new = tuple.__new__
        self._State = spec.State
        self._groups: list[tuple[int, dict[Any, UnaryMemo]]] = []
        ids_by_transition: dict[str, list[int]] = {}
        for i, inst in enumerate(self.instances):
            ids_by_transition.setdefault(inst.transition.name, []).append(i)
        for component in spec.components.values():
            position = self.field_index[component.control]
            domain = spec.field_by_name[component.control].domain.values()
            by_value: dict[Any, UnaryMemo] = {}
            for value in domain:
                ids = tuple(
                    i
                    for t in spec.transitions
                    if t.component == component.name and int(value) in {int(x) for x in t.source}
                    for i in ids_by_transition.get(t.name, ())
                )
                by_value[value] = UnaryMemo(self._guards_of(ids), self.field_index)
            self._groups.append((position, by_value))
        self._effects = [
            UnaryMemo(self._effect_of(inst), self.field_index) for inst in self.instances
        ]
        k = spec.sizes
        self._invariants = [
            (inv.name, UnaryMemo(self._holds_of(inv.holds), self.field_index))
            for inv in spec.invariants
        ]
        self._affected: dict[frozenset[int], list[tuple[str, UnaryMemo]]] = {}
        names = tuple(p.name for p in spec.step_properties)
        self._steps_broken = ProjectionMemo(
            lambda s, t: [
                n for n, p in zip(names, spec.step_properties, strict=True) if not p.holds(s, t, k)
            ],
            self.field_index,
            arity=2,
        )

    # ---- compilation
    def _guards_of(self, ids: tuple[int, ...]) -> Any:
        """The enabled instances among ``ids`` (one component, one control value)."""
        instances = [(i, self.instances[i]) for i in ids]

        def enabled(state: Any) -> tuple[int, ...]:
            return tuple(i for i, inst in instances if inst.transition.guard(state, inst.bindings))

        return enabled

    def _holds_of(self, holds: Any) -> Any:
        k = self.spec.sizes

        def check(state: Any) -> bool:
            return bool(holds(state, k))

        return check

    def _effect_of(self, instance: Instance) -> Any:
        t = instance.transition
        control = self.spec.control_of(t)
        index = self.field_index

        def writes(state: Any) -> tuple[tuple[tuple[int, Any], ...], frozenset[int]]:
            changes = effect_changes(t, control, state, instance.bindings)
            writes = tuple((index[name], value) for name, value in changes.items())
            return writes, frozenset(position for position, _ in writes)

        return writes

    # ---- the successor function
    def initial(self) -> Any:
        """The initial state (as :meth:`Stepper.initial`)."""
        return self._reference.initial()

    def successors(self, state: Any) -> list[tuple[int, Any]]:
        """Every enabled instance (by position in ``spec.instances``) and its successor,
        in declaration order, as :meth:`Stepper.successors` gives them."""
        return [(step[0], step[1]) for step in self.expand_checked(state)]

    def enabled_ids(self, state: Any) -> list[int]:
        """The positions of the instances enabled in ``state``, in declaration order
        (each component's guards, memoised on what they read, for its control value)."""
        enabled: list[int] = []
        for position, by_value in self._groups:
            memo = by_value[state[position]]
            found = memo._cache.get(memo._getters[0](state), _MISSING)
            if found is _MISSING:
                found = memo(state)
            enabled += found
        if len(self._groups) > 1:
            enabled.sort()
        return enabled

    def next_states(self, state: Any) -> list[tuple[int, Any]]:
        """As :meth:`successors`, without evaluating the step properties on each edge
        (for a caller that checks none: the differential harness)."""
        enabled = self.enabled_ids(state)
        out: list[tuple[int, Any]] = []
        effects, new, State = self._effects, self._new, self._State
        for iid in enabled:
            memo = effects[iid]
            result = memo._cache.get(memo._getters[0](state), _MISSING)
            if result is _MISSING:
                result = memo(state)
            values = list(state)
            for position, value in result[0]:
                values[position] = value
            out.append((iid, new(State, values)))
        return out

    def expand(self, state: Any) -> list[tuple[int, Any, frozenset[int]]]:
        """As :meth:`successors`, with the positions of the fields each step assigns."""
        return [
            (iid, after, written) for iid, after, written, _, _, _ in self.expand_checked(state)
        ]

    def expand_checked(
        self,
        state: Any,
        canonical: Callable[[Any], Any] = lambda s: s,
        key_of: Callable[[Any], Any] = lambda s: s,
        symmetric: frozenset[int] | None = None,
    ) -> list[tuple[int, Any, frozenset[int], list[str], Any, Any]]:
        """Every step from ``state``, ready for the search: ``(instance id, state
        after, positions assigned, step properties broken, canonical(after),
        key_of(canonical(after)))``, in declaration order.

        ``symmetric``, when given, says that ``state`` is canonical and that only
        the fields at these positions are permuted by ``canonical``: a step that
        assigns none of them leaves a canonical state, and ``canonical`` is not
        called for it.  One loop does it all,
        which saves the function calls of doing it step by step."""
        enabled = self.enabled_ids(state)
        out: list[tuple[int, Any, frozenset[int], list[str], Any, Any]] = []
        effects = self._effects
        new, State = self._new, self._State
        steps = self._steps_broken
        steps_cache, (g0, g1) = steps._cache, steps._getters
        before_key = g0(state)
        for iid in enabled:
            memo = effects[iid]
            result = memo._cache.get(memo._getters[0](state), _MISSING)
            if result is _MISSING:
                result = memo(state)
            writes, written = result
            values = list(state)
            for position, value in writes:
                values[position] = value
            after = new(State, values)
            broken = steps_cache.get((before_key, g1(after)), _MISSING)
            if broken is _MISSING:
                broken = steps(state, after)
                g0, g1 = steps._getters
                before_key = g0(state)
            if symmetric is not None and symmetric.isdisjoint(written):
                representative = after
            else:
                representative = canonical(after)
            out.append((iid, after, written, broken, representative, key_of(representative)))
        return out

    def violated_invariants(self, state: Any) -> list[str]:
        """The names of the invariants ``state`` breaks (as :meth:`Stepper.violated_invariants`)."""
        broken: list[str] = []
        for name, memo in self._invariants:
            holds = memo._cache.get(memo._getters[0](state), _MISSING)
            if holds is _MISSING:
                before = memo.read_sets[0]
                holds = memo(state)
                if memo.read_sets[0] != before:
                    self._affected.clear()
            if not holds:
                broken.append(name)
        return broken

    def violated_invariants_after(self, after: Any, written: frozenset[int]) -> list[str]:
        """The invariants ``after`` breaks, given that it was reached by a step that
        assigned only the fields at ``written`` from a state that broke none.

        Only the invariants that read an assigned field are evaluated: the others
        agree with the state before on every field they read (see
        :mod:`xbdspec.explore.memo`), so they still hold.
        """
        affected = self._affected.get(written)
        if affected is None:
            affected = [
                (n, m) for n, m in self._invariants if not written.isdisjoint(m.read_sets[0])
            ]
            self._affected[written] = affected
        broken: list[str] = []
        for name, memo in affected:
            holds = memo._cache.get(memo._getters[0](after), _MISSING)
            if holds is _MISSING:
                before = memo.read_sets[0]
                holds = memo(after)
                if memo.read_sets[0] != before:
                    self._affected.clear()
            if not holds:
                broken.append(name)
        return broken

    def violated_step_properties(self, before: Any, after: Any) -> list[str]:
        """The step properties ``before -> after`` breaks
        (as :meth:`Stepper.violated_step_properties`)."""
        memo = self._steps_broken
        g0, g1 = memo._getters
        broken = memo._cache.get((g0(before), g1(after)), _MISSING)
        if broken is _MISSING:
            broken = memo(before, after)
        return broken  # type: ignore[no-any-return]

    def memo_statistics(self) -> dict[str, int]:
        """Cache sizes and misses, for the benchmark."""
        memos: list[ProjectionMemo] = [m for _, by_value in self._groups for m in by_value.values()]
        memos += self._effects
        memos += [m for _, m in self._invariants]
        memos.append(self._steps_broken)
        return {"entries": sum(m.size for m in memos), "misses": sum(m.misses for m in memos)}
