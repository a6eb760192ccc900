"""Refinement obligations: every FreeBSD transition is a protocol step, a stutter, or
the composition :data:`~xbdspec.model.refinement.REFINES` names.

For a FreeBSD transition ``T`` the obligation is

    Inv_F(s) and T(s, t) and h free  ==>  OR over the alternatives of
        [stutter]     alpha(t) == alpha(s)
        [A1 ... An]   some instances a1 .. an with a1 enabled in (alpha(s), h), each
                      next one enabled in the state the one before leads to, and the
                      last state's mapped fields == alpha(t)

where ``Inv_F`` is every FreeBSD invariant, ``alpha`` the abstraction and ``h`` the
protocol fields it leaves hidden (for every value of them).  Obligations for the
initial states (``alpha(init_F)`` is a protocol initial state, for some hidden part)
and the non-vacuity checks (a broken mapping refuted) complete it; every formula is
the declarations' own functions run on z3 terms.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from typing import Any

from xbdspec.model.declaration import Instance, Spec, Transition
from xbdspec.model.protocol.spec import build_protocol_spec
from xbdspec.model.refinement import HIDDEN, REFINES, abstraction, protocol_sizes

from . import encoding as E
from .model_obligations import ModelContext, describe_sizes, state_json, step_lines, steps_break
from .results import Obligation, Outcome, Result

#: FreeBSD transitions whose refinement the seed's logic fails, with the finding each
#: refutation documents.
EXPECTED_REFUTED: dict[str, str] = {}


class RefinementContext:
    """The FreeBSD context, the protocol spec it refines, and the abstract states."""

    def __init__(
        self, concrete: Spec, refines: dict[str, tuple[tuple[str, ...], ...]] | None = None
    ) -> None:
        self.ctx = ModelContext(concrete)
        self.concrete = concrete
        self.refines = REFINES if refines is None else refines
        self.abstract = build_protocol_spec(protocol_sizes(concrete.sizes))
        self.hidden_s = E.symbolic_state(self.abstract, "h")
        self.alpha_s = self.image(self.ctx.s, self.hidden_s)
        self.alpha_t_mapped = abstraction(self.ctx.t, concrete.sizes)

    def image(self, concrete_state: Any, hidden: Any) -> Any:
        """The protocol state of ``concrete_state``, its hidden fields from ``hidden``."""
        mapped = abstraction(concrete_state, self.concrete.sizes)
        values = {f.name: mapped.get(f.name, getattr(hidden, f.name)) for f in self.abstract.fields}
        return self.abstract.State(**values)

    def instances_of(self, name: str) -> list[Instance]:
        t = self.abstract.transition(name)
        return [i for i in self.abstract.instances if i.transition is t]


def _apply(spec: Spec, instance: Instance, state: Any) -> Any:
    changes = E.successor(spec, instance, state)
    return state._replace(**changes)


def mapped_equal(mapped: dict[str, Any], state: Any) -> Any:
    """``state`` agrees with ``mapped`` on every mapped field."""
    parts: list[Any] = []
    for name, value in mapped.items():
        current = getattr(state, name)
        if isinstance(value, tuple):
            parts.extend(E.as_formula(a == b) for a, b in zip(value, current, strict=True))
        else:
            parts.append(E.as_formula(value == current))
    return E.all_constraints(parts)


def alternative_formula(rc: RefinementContext, path: Sequence[str]) -> Any:
    """Some instances along ``path`` take ``alpha(s)`` to a state matching ``alpha(t)``."""
    spec = rc.abstract
    if not path:
        return mapped_equal(rc.alpha_t_mapped, rc.alpha_s)
    options = []
    for combo in itertools.product(*(rc.instances_of(name) for name in path)):
        state = rc.alpha_s
        parts = []
        for instance in combo:
            parts.append(E.enabled(spec, instance, state))
            state = _apply(spec, instance, state)
        parts.append(mapped_equal(rc.alpha_t_mapped, state))
        options.append(E.all_constraints(parts))
    return E.E_or(options)


def _why_not(
    rc: RefinementContext,
    alternatives: Sequence[Sequence[str]],
    alpha_before: dict[str, Any],
    before: Any,
) -> list[str]:
    """For each single-step alternative, the conditions its guard fails on the image
    (hidden fields at their initial values), to say why the step refines none."""
    spec = rc.abstract
    initial = spec.initial_fields(spec.sizes.ring_base)
    image = spec.State(**{f.name: alpha_before.get(f.name, initial[f.name]) for f in spec.fields})
    lines = []
    for path in alternatives:
        if len(path) != 1:
            continue
        t = spec.transition(path[0])
        if t.conditions is None:
            continue
        if getattr(image, spec.control_of(t)) not in t.source:
            lines.append(f"  {t.name}: {spec.control_of(t)} is not one of its sources")
            continue
        failed: set[str] = set()
        for instance in rc.instances_of(t.name):
            failed |= {text for text, cond in t.conditions(image, instance.bindings) if not cond}
        for text in sorted(failed):
            lines.append(f"  {t.name} (some parameter choice) requires: {text}")
    return lines


def _describe(path: Sequence[str]) -> str:
    return " ; ".join(path) if path else "a stutter"


def refinement_obligation(rc: RefinementContext, transition: Transition) -> Obligation:
    """``transition`` refines one of the alternatives ``REFINES`` names for it."""
    alternatives = rc.refines.get(transition.name)
    names = " or ".join(_describe(p) for p in alternatives or ())
    finding = EXPECTED_REFUTED.get(transition.name)

    def run() -> Outcome:
        start = time.perf_counter()
        if alternatives is None:
            return Outcome(
                Result.REFUTED,
                0.0,
                f"{transition.name} has no entry in REFINES: every FreeBSD transition must "
                "say which protocol steps it stands for",
            )
        ctx = rc.ctx
        prover = E.Prover()
        prover.assume(
            ctx.domain_s, *ctx.invariants_s, E.domain_constraint(rc.abstract, rc.hidden_s)
        )
        claim = E.E_or([alternative_formula(rc, p) for p in alternatives])
        instances = [i for i in rc.concrete.instances if i.transition is transition]
        combined = (
            prover.satisfiable(steps_break(ctx, instances, claim), bitblast=True)
            if instances
            else None
        )
        if combined is not None and combined.verdict is E.Verdict.REFUTED:
            return Outcome(
                Result.PROVED,
                time.perf_counter() - start,
                f"{len(instances)} parameter choices refine {names}",
            )
        # not proved at once: instance by instance, for the counterexample (or the reason)
        for instance in instances:
            prover.push()
            try:
                prover.assume(E.transition_relation(rc.concrete, instance, ctx.s, ctx.t))
                check = prover.valid(claim)
                if check.verdict is E.Verdict.PROVED:
                    continue
                if check.verdict is E.Verdict.UNKNOWN:
                    return Outcome(Result.UNKNOWN, time.perf_counter() - start, check.reason)
                before = E.read_state(rc.concrete, check.model, ctx.s)
                after = E.read_state(rc.concrete, check.model, ctx.t)
                lines = ["  from the FreeBSD state (which satisfies every FreeBSD invariant):"]
                lines += [f"      {n} = {E.show_value(getattr(before, n))}" for n in before._fields]
                lines += step_lines(before, instance.label, after)
                alpha_before = abstraction(before, rc.concrete.sizes)
                alpha_after = abstraction(after, rc.concrete.sizes)
                lines.append("  its protocol image changes:")
                for name, value in alpha_after.items():
                    old = alpha_before[name]
                    if old != value:
                        lines.append(f"      {name}: {E.show_value(old)} -> {E.show_value(value)}")
                lines.append(f"  which is not {names}")
                lines += _why_not(rc, alternatives, alpha_before, before)
                return Outcome(
                    Result.REFUTED,
                    time.perf_counter() - start,
                    f"{instance.label} is not {names}",
                    lines,
                    {"state": state_json(before), "event": instance.transition.event},
                )
            finally:
                prover.pop()
        return Outcome(
            Result.PROVED,
            time.perf_counter() - start,
            f"{len(instances)} parameter choices refine {names}",
        )

    return Obligation(
        f"{transition.name}_refines_protocol",
        "refinement",
        describe_sizes(rc.concrete),
        f"From any FreeBSD state satisfying the FreeBSD invariants, {transition.name} is, "
        f"under the refinement mapping, {names} of the protocol model.",
        run,
        Result.REFUTED if finding else Result.PROVED,
        finding,
    )


def initial_refinement_obligation(rc: RefinementContext) -> Obligation:
    """The image of every FreeBSD initial state is a protocol initial state."""

    def run() -> Outcome:
        prover = E.Prover()
        base = E.z3_u32("refinement.ring_base")
        concrete_init = E.initial_constraint(rc.concrete, rc.ctx.s, base)
        abstract_init = E.initial_constraint(rc.abstract, rc.alpha_s, base)
        # the hidden fields of the image are chosen: there is one initial protocol state
        # the image matches
        claim = mapped_equal(abstraction(rc.ctx.s, rc.concrete.sizes), rc.alpha_s)
        check = prover.valid(
            E.E_and([claim, abstract_init]), concrete_init, *_hidden_initial(rc, base)
        )
        return Outcome(
            {
                E.Verdict.PROVED: Result.PROVED,
                E.Verdict.REFUTED: Result.REFUTED,
                E.Verdict.UNKNOWN: Result.UNKNOWN,
            }[check.verdict],
            check.seconds,
            "the image of the initial state is the protocol's initial state"
            if check.verdict is E.Verdict.PROVED
            else check.reason or "the image of an initial state is no initial protocol state",
        )

    return Obligation(
        "initial_refines_protocol",
        "refinement",
        describe_sizes(rc.concrete),
        "The image of every FreeBSD initial state is an initial state of the protocol model.",
        run,
    )


def _hidden_initial(rc: RefinementContext, base: Any) -> list[Any]:
    initial = rc.abstract.initial_fields(base)
    return [E.as_formula(getattr(rc.hidden_s, name) == initial[name]) for name in HIDDEN]


def refinement_obligations(concrete: Spec) -> Iterable[Obligation]:
    """Every refinement obligation of the FreeBSD model with ``concrete``'s sizes."""
    rc = RefinementContext(concrete)
    yield initial_refinement_obligation(rc)
    for t in concrete.transitions:
        yield refinement_obligation(rc, t)
