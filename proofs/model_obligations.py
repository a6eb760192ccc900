"""Obligations read from the model's declaration: initial states, inductive
preservation transition by transition, step properties, determinism of events,
live guards, falsifiable invariants, and bounded checks of the composed handshake.

Every formula comes from :mod:`xbdspec.proofs.encoding`, which runs the
declaration's own guard, effect and property functions on z3 terms.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from xbdspec.model.declaration import Instance, Spec, Transition

from . import encoding as E
from .results import Obligation, Outcome, Result

_TO_RESULT = {
    E.Verdict.PROVED: Result.PROVED,
    E.Verdict.REFUTED: Result.REFUTED,
    E.Verdict.UNKNOWN: Result.UNKNOWN,
}


def describe_sizes(spec: Spec) -> str:
    """The sizes a model obligation holds for, in words."""
    k = spec.sizes
    return (
        ", ".join(
            f"{name}={getattr(k, name)}" for name in k.__dataclass_fields__ if name != "ring_base"
        )
        + ", ring indices: every 32-bit value"
    )


class ModelContext:
    """The symbolic states and assumptions shared by the model's obligations.

    Attributes:
        spec: the declaration.
        s, t: the states before and after a step (z3 terms).
        invariants_s: every invariant of ``s`` (the inductive hypothesis).
    """

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.k = spec.sizes
        self.s = E.symbolic_state(spec, "s")
        self.t = E.symbolic_state(spec, "t")
        self.domain_s = E.domain_constraint(spec, self.s)
        self.domain_t = E.domain_constraint(spec, self.t)
        self.invariants_s = [E.as_formula(i.holds(self.s, self.k)) for i in spec.invariants]
        self.invariants_t = [
            (i.name, E.as_formula(i.holds(self.t, self.k))) for i in spec.invariants
        ]
        self.steps_st = [
            (p.name, E.as_formula(p.holds(self.s, self.t, self.k))) for p in spec.step_properties
        ]
        #: one solver under the domains and invariants of ``s``, for the many small
        #: questions asked under them (live guards, overlapping transitions)
        self.under_invariants = E.SharedHypotheses(self.domain_s, *self.invariants_s)
        #: and one under the domains alone (an invariant is falsifiable)
        self.in_domains = E.SharedHypotheses(self.domain_s)

    def instances_of(self, transition: Transition) -> list[Instance]:
        return [i for i in self.spec.instances if i.transition is transition]


# --------------------------------------------------------------------------- counterexamples


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name
    return value


def state_json(state: Any) -> dict[str, Any]:
    """A plain state as JSON (enums by name)."""
    return {name: _plain(getattr(state, name)) for name in state._fields}


def step_lines(before: Any, label: str, after: Any) -> list[str]:
    """``label`` and the fields it changed, one line each."""
    lines = [f"  {label}"]
    for name in before._fields:
        x, y = getattr(before, name), getattr(after, name)
        if x != y:
            lines.append(f"      {name}: {E.show_value(x)} -> {E.show_value(y)}")
    return lines


def _event_json(instance: Instance) -> dict[str, Any]:
    return {
        "event": instance.transition.event,
        "params": {n: _plain(v) for n, v in instance.bindings.as_dict().items()},
    }


# --------------------------------------------------------------------------- initial states


def initial_obligation(ctx: ModelContext, invariant_name: str) -> Obligation:
    inv = ctx.spec.invariant(invariant_name)

    def run() -> Outcome:
        prover = E.Prover()
        s = ctx.s
        check = prover.valid(
            E.as_formula(inv.holds(s, ctx.k)), E.initial_constraint(ctx.spec, s), ctx.domain_s
        )
        outcome = Outcome(_TO_RESULT[check.verdict], check.seconds, check.reason)
        if check.model is not None:
            state = E.read_state(ctx.spec, check.model, s)
            outcome.counterexample = [f"  initial state: {state_json(state)}"]
            outcome.replay = {"initial": state_json(state)}
        return outcome

    return Obligation(
        f"initial_satisfies_{inv.name}",
        "initial",
        describe_sizes(ctx.spec),
        f"Every initial state satisfies {inv.name}.",
        run,
    )


# --------------------------------------------------------------------------- preservation


def preservation_outcome(
    ctx: ModelContext,
    instances: Sequence[Instance],
    transition_name: str,
    timeout_ms: int = E.SAFETY_TIMEOUT_MS,
) -> Outcome:
    """Whether every instance keeps every invariant, the domains and the step properties."""
    spec = ctx.spec
    start = time.perf_counter()
    prover = E.Prover(timeout_ms=timeout_ms)
    prover.assume(ctx.domain_s, *ctx.invariants_s)
    claims = [*ctx.invariants_t, ("domains", ctx.domain_t), *ctx.steps_st]
    everything = E.all_constraints([c for _, c in claims])
    if instances and _every_step_keeps(ctx, prover, instances, everything):
        return Outcome(
            Result.PROVED,
            time.perf_counter() - start,
            f"{len(instances)} parameter choices, {len(claims)} claims",
        )
    # not proved at once (a refutation, or z3's limit): instance by instance, as the
    # obligation's counterexample names the first instance that breaks a claim
    for instance in instances:
        prover.push()
        try:
            prover.assume(E.transition_relation(spec, instance, ctx.s, ctx.t))
            whole = prover.valid(everything)
            if whole.verdict is E.Verdict.PROVED:
                continue
            if whole.verdict is E.Verdict.UNKNOWN:
                return Outcome(
                    Result.UNKNOWN, time.perf_counter() - start, f"{instance.label}: {whole.reason}"
                )
            broken = [n for n, c in claims if prover.valid(c).verdict is not E.Verdict.PROVED]
            assert whole.model is not None
            before = E.read_state(spec, whole.model, ctx.s)
            after = E.read_state(spec, whole.model, ctx.t)
            lines = ["  from the state (which satisfies every invariant):"]
            lines += [f"      {n} = {E.show_value(getattr(before, n))}" for n in before._fields]
            lines += step_lines(before, instance.label, after)
            lines.append(f"  breaks: {', '.join(broken)}")
            return Outcome(
                Result.REFUTED,
                time.perf_counter() - start,
                f"{instance.label} breaks {', '.join(broken)}",
                lines,
                {"state": state_json(before), **_event_json(instance), "breaks": broken},
            )
        finally:
            prover.pop()
    return Outcome(
        Result.PROVED,
        time.perf_counter() - start,
        f"{len(instances)} parameter choices, {len(claims)} claims",
    )


def steps_break(ctx: ModelContext, instances: Sequence[Instance], claim: Any) -> Any:
    """Some instance is enabled in ``s`` and its successor breaks ``claim`` (a formula
    over ``s`` and ``t``): ``OR_i enabled_i(s) and not claim[t := succ_i(s)]``.

    Equivalent to ``OR_i exists t. T_i(s, t) and not claim(s, t)`` (an effect
    determines ``t``), so one query decides every instance of a transition: z3
    bit-blasts the hypotheses (the invariants of ``s``) once instead of once per
    instance, which is most of the work.
    """
    spec = ctx.spec
    return E.E_or(
        [
            E.E_and(
                [
                    E.enabled(spec, i, ctx.s),
                    E.negation(
                        E.substitute_state(spec, claim, ctx.t, E.successor_state(spec, i, ctx.s))
                    ),
                ]
            )
            for i in instances
        ]
    )


def _every_step_keeps(
    ctx: ModelContext, prover: E.Prover, instances: Sequence[Instance], claim: Any
) -> bool:
    """Whether one combined query proves that no instance breaks ``claim`` (false also
    when z3 answers unknown: the caller then checks instance by instance)."""
    check = prover.satisfiable(steps_break(ctx, instances, claim), bitblast=True)
    return check.verdict is E.Verdict.REFUTED


def preservation_obligation(ctx: ModelContext, transition: Transition) -> Obligation:
    instances = ctx.instances_of(transition)
    names = ", ".join(i.name for i in ctx.spec.invariants)

    def run() -> Outcome:
        return preservation_outcome(ctx, instances, transition.name)

    return Obligation(
        f"{transition.name}_preserves_invariants",
        "inductive",
        describe_sizes(ctx.spec),
        f"From any state satisfying every invariant, {transition.name} keeps every invariant "
        f"({names}), every field in its domain, and every step property.",
        run,
    )


# ----------------------------------------------------------------- determinism, live guards


def _overlapping(a: Transition, b: Transition) -> bool:
    return a.component == b.component and bool(set(a.source) & set(b.source))


def determinism_obligation(
    ctx: ModelContext, event: str, transitions: Sequence[Transition]
) -> Obligation:
    def run() -> Outcome:
        start = time.perf_counter()
        by_params: dict[str, list[Instance]] = {}
        for inst in ctx.spec.instances:
            if inst.transition.event == event:
                by_params.setdefault(
                    json.dumps(_event_json(inst)["params"], sort_keys=True), []
                ).append(inst)
        for group in by_params.values():
            for i, a in enumerate(group):
                for b in group[i + 1 :]:
                    if not _overlapping(a.transition, b.transition):
                        continue
                    facts = (E.enabled(ctx.spec, a, ctx.s), E.enabled(ctx.spec, b, ctx.s))
                    both = ctx.under_invariants.satisfiable(*facts)
                    if both.verdict is E.Verdict.PROVED:
                        # the counterexample from a fresh solver, as it always was
                        prover = E.Prover()
                        prover.assume(ctx.domain_s, *ctx.invariants_s)
                        both = prover.satisfiable(*facts)
                    if both.verdict is E.Verdict.PROVED:
                        state = E.read_state(ctx.spec, both.model, ctx.s)
                        return Outcome(
                            Result.REFUTED,
                            time.perf_counter() - start,
                            f"{a.transition.name} and {b.transition.name} both enabled by "
                            f"{a.label}",
                            [
                                f"      {n} = {E.show_value(getattr(state, n))}"
                                for n in state._fields
                            ],
                            {"state": state_json(state), **_event_json(a)},
                        )
                    if both.verdict is E.Verdict.UNKNOWN:
                        return Outcome(Result.UNKNOWN, time.perf_counter() - start, both.reason)
        return Outcome(
            Result.PROVED,
            time.perf_counter() - start,
            f"{len(transitions)} transitions, {len(by_params)} parameter choices",
        )

    return Obligation(
        f"{event}_is_deterministic",
        "determinism",
        describe_sizes(ctx.spec),
        f"In every state satisfying the invariants, at most one transition answers each "
        f"{event} with given parameters ({', '.join(t.name for t in transitions)}).",
        run,
    )


def live_guard_obligation(contexts: Sequence[ModelContext], transition: Transition) -> Obligation:
    def run() -> Outcome:
        seconds = 0.0
        for ctx in contexts:
            t = ctx.spec.transition(transition.name)
            witness = ctx.under_invariants.satisfiable(
                E.E_or([E.enabled(ctx.spec, i, ctx.s) for i in ctx.instances_of(t)])
            )
            seconds += witness.seconds
            if witness.verdict is not E.Verdict.REFUTED:
                detail = (
                    f"enabled in a state satisfying the invariants ({describe_sizes(ctx.spec)})"
                    if witness.verdict is E.Verdict.PROVED
                    else witness.reason
                )
                return Outcome(_TO_RESULT[witness.verdict], seconds, detail)
        return Outcome(
            Result.REFUTED,
            seconds,
            "no state satisfying the invariants enables it in any of the sizes: it is dead",
        )

    return Obligation(
        f"{transition.name}_is_live",
        "live-guard",
        " or ".join(f"({describe_sizes(c.spec)})" for c in contexts),
        f"Some state satisfying every invariant enables {transition.name} (its guard is not dead).",
        run,
    )


def falsifiable_obligation(ctx: ModelContext, invariant_name: str) -> Obligation:
    inv = ctx.spec.invariant(invariant_name)

    def run() -> Outcome:
        witness = ctx.in_domains.satisfiable(E.negation(E.as_formula(inv.holds(ctx.s, ctx.k))))
        return Outcome(
            _TO_RESULT[witness.verdict],
            witness.seconds,
            "a state in the domains violates it"
            if witness.model is not None
            else "it holds in every state: it says nothing",
        )

    return Obligation(
        f"{inv.name}_is_falsifiable",
        "falsifiable",
        describe_sizes(ctx.spec),
        f"{inv.name} is not a tautology: some state of the domains violates it.",
        run,
    )


# --------------------------------------------------------------------------- bounded checks


class Unrolling:
    """The model unrolled functionally: each step picks one instance by a selector,
    and the next state is an ``If`` chain over the instances that change each field.
    Much smaller than a disjunction of transition relations."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.instances = spec.instances

    def step(self, s: Any, selector: Any) -> tuple[Any, Any]:
        spec = self.spec
        ok = E.all_constraints(
            [
                E.u_less(selector, len(self.instances)),
                *(
                    E.implies_(selector == i, E.enabled(spec, inst, s))
                    for i, inst in enumerate(self.instances)
                ),
            ]
        )
        changes = [E.successor(spec, inst, s) for inst in self.instances]
        values = []
        for f in spec.fields:
            current = getattr(s, f.name)
            if f.length is None:
                value = current
                for i, ch in enumerate(changes):
                    if f.name in ch:
                        value = E.choose(selector == i, ch[f.name], value)
                values.append(value)
            else:
                items = []
                for j in range(f.length):
                    value = current[j]
                    for i, ch in enumerate(changes):
                        if f.name in ch:
                            value = E.choose(selector == i, ch[f.name][j], value)
                    items.append(value)
                values.append(tuple(items))
        return ok, spec.State(*values)


def bmc_obligation(
    spec: Spec, depth: int, properties: Sequence[str], name: str, bound: str
) -> Obligation:
    def run() -> Outcome:
        start = time.perf_counter()
        k = spec.sizes
        unroll = Unrolling(spec)
        bmc = E.IncrementalSolver()
        s = E.symbolic_state(spec, "s0")
        bmc.add(E.initial_constraint(spec, s, k.ring_base))
        selectors: list[Any] = []
        invs = [spec.invariant(n) for n in properties]
        for d in range(1, depth + 1):
            selector = E.selector(f"step{d}")
            ok, s = unroll.step(s, selector)
            bmc.add(ok)
            selectors.append(selector)
            bad = E.E_or([E.as_formula(i.holds(s, k)) == False for i in invs])  # noqa: E712
            found = bmc.check_with(bad)
            if found.verdict is E.Verdict.UNKNOWN:
                return Outcome(
                    Result.UNKNOWN, time.perf_counter() - start, f"depth {d}: {found.reason}"
                )
            if found.verdict is E.Verdict.PROVED:
                return _trace_outcome(spec, found.model, selectors, invs, start)
        return Outcome(Result.PROVED, time.perf_counter() - start, f"no violation in {depth} steps")

    return Obligation(
        name,
        "bounded",
        bound,
        f"No run of up to {depth} steps from an initial state violates {', '.join(properties)}.",
        run,
    )


def _trace_outcome(
    spec: Spec, model: Any, selectors: Sequence[Any], invs: Sequence[Any], start: float
) -> Outcome:
    from xbdspec.model.concrete import Stepper

    stepper = Stepper(spec)
    state = stepper.initial()
    lines: list[str] = []
    events = []
    for sel in selectors:
        instance = spec.instances[E.read_number(model, sel)]
        after = stepper.apply(state, instance)
        lines += step_lines(state, instance.label, after)
        events.append(_event_json(instance))
        state = after
    broken = [i.name for i in invs if not i.holds(state, spec.sizes)]
    lines.append(f"  breaks: {', '.join(broken)}")
    return Outcome(
        Result.REFUTED,
        time.perf_counter() - start,
        f"{len(selectors)} steps break {', '.join(broken)}",
        lines,
        {"events": events, "breaks": broken},
    )


def k_induction_obligation(spec: Spec, prop: str, max_k: int, name: str, bound: str) -> Obligation:
    def run() -> Outcome:
        start = time.perf_counter()
        k = spec.sizes
        unroll = Unrolling(spec)
        inv = spec.invariant(prop)
        prover = E.Prover(rlimit=200_000_000)
        s = E.symbolic_state(spec, "k0")
        prover.assume(E.domain_constraint(spec, s))
        for depth in range(1, max_k + 1):
            prover.assume(E.as_formula(inv.holds(s, k)))
            selector = E.selector(f"k{depth}")
            ok, s = unroll.step(s, selector)
            prover.assume(ok, E.domain_constraint(spec, s))
            step_case = prover.valid(E.as_formula(inv.holds(s, k)))
            if step_case.verdict is E.Verdict.PROVED:
                return Outcome(
                    Result.PROVED,
                    time.perf_counter() - start,
                    f"{prop} is {depth}-inductive (base case: the bounded check)",
                )
            if step_case.verdict is E.Verdict.UNKNOWN:
                return Outcome(Result.UNKNOWN, time.perf_counter() - start, step_case.reason)
        return Outcome(
            Result.UNKNOWN,
            time.perf_counter() - start,
            f"not {max_k}-inductive on its own (it is inductive with the auxiliary invariants)",
        )

    return Obligation(
        name,
        "k-induction",
        bound,
        f"{prop} alone (without auxiliary invariants) is k-inductive for some k <= {max_k}.",
        run,
    )


def model_obligations(spec: Spec, liveness_specs: Sequence[Spec] = ()) -> Iterable[Obligation]:
    """Every obligation the declaration gives rise to, for one choice of sizes (and,
    for live guards, further sizes in which a guard may become enabled)."""
    ctx = ModelContext(spec)
    live_contexts = [ctx, *(ModelContext(s) for s in liveness_specs)]
    for inv in spec.invariants:
        yield initial_obligation(ctx, inv.name)
    for t in spec.transitions:
        yield preservation_obligation(ctx, t)
    for event, transitions in spec.events().items():
        if len(transitions) > 1:
            yield determinism_obligation(ctx, event, transitions)
    for t in spec.transitions:
        yield live_guard_obligation(live_contexts, t)
    for inv in spec.invariants:
        yield falsifiable_obligation(ctx, inv.name)
