"""Every obligation can fail: for each one a deliberately broken variant (a guard
removed, an effect changed, an initial state or a property altered, a seed clamp
dropped) is refuted by the same check that proves the real one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import z3
from xbdspec.model.concrete import Stepper
from xbdspec.model.declaration import Instance, Invariant, Spec, Transition
from xbdspec.model.spec import COMPONENTS, build_spec
from xbdspec.model.state import Sizes, fields
from xbdspec.proofs import arithmetic as A
from xbdspec.proofs.model_obligations import (
    ModelContext,
    bmc_obligation,
    determinism_obligation,
    falsifiable_obligation,
    initial_obligation,
    live_guard_obligation,
    preservation_outcome,
)
from xbdspec.proofs.registry import HANDSHAKE_SIZES, LIVENESS_SIZES, build_registry
from xbdspec.proofs.results import Result

SPEC = build_spec()
CTX = ModelContext(SPEC)
LIVE_CTX = {k: ModelContext(build_spec(k)) for k in LIVENESS_SIZES}

#: transitions whose guard and effect only consume a watch event: no invariant
#: depends on them (losing one is a hang, which the explorer's progress checks find);
#: their broken variant corrupts the effect instead
WATCH_BOOKKEEPING = {"backend_ignores_frontend", "frontend_ignores_backend"}


def respec(base: Spec, **changes: Any) -> Spec:
    args: dict[str, Any] = dict(
        sizes=base.sizes,
        fields=fields(base.sizes),
        components=COMPONENTS,
        transitions=base.transitions,
        initial=base._initial,
        invariants=base.invariants,
        step_properties=base.step_properties,
        progress=base.progress,
    )
    args.update(changes)
    return Spec(**args)


def mutants(ctx: ModelContext, t: Transition) -> Iterator[tuple[str, Transition]]:
    """Broken variants of a transition: its guard removed, then each field its effect
    sets forgotten in turn."""
    yield "guard removed", dataclasses.replace(t, guard=lambda s, p: True)
    keys: set[str] = set()
    for i in ctx.instances_of(t):
        keys |= set(t.effect(ctx.s, i.bindings))
    for key in sorted(keys):

        def forget(s: Any, p: Any, eff: Any = t.effect, key: str = key) -> dict[str, Any]:
            return {k: v for k, v in eff(s, p).items() if k != key}

        yield f"effect forgets {key}", dataclasses.replace(t, effect=forget)


def corrupted(t: Transition) -> Transition:
    def effect(s: Any, p: Any, eff: Any = t.effect) -> dict[str, Any]:
        return {**eff(s, p), "frozen": s.frozen + 1}

    return dataclasses.replace(t, effect=effect)


def refuted(ctx: ModelContext, t: Transition, original: Transition) -> bool:
    instances = [Instance(t, i.bindings) for i in ctx.instances_of(original)]
    return preservation_outcome(ctx, instances, t.name).result is Result.REFUTED


def context_where_live(t: Transition) -> ModelContext:
    for ctx in (CTX, *LIVE_CTX.values()):
        if live_guard_obligation([ctx], ctx.spec.transition(t.name)).run().result is Result.PROVED:
            return ctx
    raise AssertionError(f"{t.name} is live in no proof size")


def test_the_registry_covers_every_transition_and_invariant() -> None:
    names = {o.name for o in build_registry()}
    for t in SPEC.transitions:
        assert f"{t.name}_preserves_invariants" in names
        assert f"{t.name}_is_live" in names
    for inv in SPEC.invariants:
        assert f"initial_satisfies_{inv.name}" in names
        assert f"{inv.name}_is_falsifiable" in names


@pytest.mark.parametrize("name", [t.name for t in SPEC.transitions])
def test_each_preservation_obligation_refutes_a_broken_variant(name: str) -> None:
    ctx = context_where_live(SPEC.transition(name))
    t = ctx.spec.transition(name)
    assert preservation_outcome(ctx, ctx.instances_of(t), name).result is Result.PROVED
    if name in WATCH_BOOKKEEPING:
        assert refuted(ctx, corrupted(t), t)
        return
    tried = []
    for label, mutant in mutants(ctx, t):
        tried.append(label)
        if refuted(ctx, mutant, t):
            return
    raise AssertionError(f"no broken variant of {name} is refuted (tried: {tried})")


def field_changes() -> Iterator[tuple[str, Any]]:
    init = Stepper(SPEC).initial()
    for f in SPEC.fields:
        values = (
            (0, 1, 2**32 - 1, init.req_prod_pvt + 5)
            if f.domain.kind == "u32"
            else f.domain.values()
        )
        for v in values:
            yield f.name, v if f.length is None else (v,) * f.length


def initial_breakers(inv: Invariant) -> Iterator[dict[str, Any]]:
    """Initial states changed in one field (or, failing that, two) that break ``inv``."""
    init = Stepper(SPEC).initial()
    changes = list(field_changes())
    for name, value in changes:
        if not inv.holds(init._replace(**{name: value}), SPEC.sizes):
            yield {name: value}
    for i, (n1, v1) in enumerate(changes):
        for n2, v2 in changes[i + 1 :]:
            if n1 != n2 and not inv.holds(init._replace(**{n1: v1, n2: v2}), SPEC.sizes):
                yield {n1: v1, n2: v2}


@pytest.mark.parametrize("name", [i.name for i in SPEC.invariants])
def test_each_initial_obligation_refutes_a_broken_initial_state(name: str) -> None:
    inv = SPEC.invariant(name)
    change = next(initial_breakers(inv))

    def broken_initial(k: Sizes, base: Any) -> dict[str, Any]:
        return {**SPEC._initial(k, base), **change}

    broken = respec(SPEC, initial=broken_initial)
    assert initial_obligation(ModelContext(broken), name).run().result is Result.REFUTED
    assert initial_obligation(CTX, name).run().result is Result.PROVED


@pytest.mark.parametrize("name", [i.name for i in SPEC.invariants])
def test_each_falsifiable_obligation_refutes_a_tautology(name: str) -> None:
    assert falsifiable_obligation(CTX, name).run().result is Result.PROVED
    tautology = dataclasses.replace(SPEC.invariant(name), holds=lambda s, k: True)
    spec = respec(SPEC, invariants=[tautology if i.name == name else i for i in SPEC.invariants])
    assert falsifiable_obligation(ModelContext(spec), name).run().result is Result.REFUTED


@pytest.mark.parametrize("event", [e for e, ts in SPEC.events().items() if len(ts) > 1])
def test_each_determinism_obligation_refutes_a_twin_transition(event: str) -> None:
    ts = SPEC.events()[event]
    assert determinism_obligation(CTX, event, ts).run().result is Result.PROVED
    twin = dataclasses.replace(ts[0], name=f"{ts[0].name}_twin")
    spec = respec(SPEC, transitions=[*SPEC.transitions, twin])
    result = determinism_obligation(ModelContext(spec), event, [*ts, twin]).run()
    assert result.result is Result.REFUTED


@pytest.mark.parametrize("name", [t.name for t in SPEC.transitions])
def test_each_live_guard_obligation_refutes_a_dead_guard(name: str) -> None:
    dead = dataclasses.replace(SPEC.transition(name), guard=lambda s, p: False)
    spec = respec(SPEC, transitions=[dead if t.name == name else t for t in SPEC.transitions])
    assert live_guard_obligation([ModelContext(spec)], dead).run().result is Result.REFUTED


def test_the_bounded_check_finds_a_broken_guard_and_its_trace_replays() -> None:
    handshake = build_spec(HANDSHAKE_SIZES)
    visible = [i.name for i in handshake.invariants if not i.auxiliary]
    t = handshake.transition("backend_connect")
    broken_t = dataclasses.replace(t, guard=lambda s, p: True)
    broken = respec(
        handshake, transitions=[broken_t if x is t else x for x in handshake.transitions]
    )
    outcome = bmc_obligation(broken, 6, visible, "broken", "").run()
    assert outcome.result is Result.REFUTED
    assert outcome.replay is not None
    events = outcome.replay["events"]
    assert events[-1]["event"] == "frontend_watch"
    stepper = Stepper(broken)
    state = stepper.initial()
    for e in events:
        _, state = stepper.step(state, e["event"], **e["params"])
    assert set(outcome.replay["breaks"]) <= set(stepper.violated_invariants(state))
    assert "BackendConnectedAfterPublish" in outcome.replay["breaks"]


# --------------------------------------------------------------------------- arithmetic


def claim_with(obligation: str) -> A.ArithmeticObligation:
    return next(o for o in A.ARITHMETIC_OBLIGATIONS if o.name == obligation)


def variant(
    name: str, claim: Callable[[], tuple[list[Any], Any, dict[str, Any]]]
) -> A.ArithmeticObligation:
    return A.ArithmeticObligation(name, claim, "", "")


def _event_at_cons() -> tuple[list[Any], Any, dict[str, Any]]:
    hyps, _, inputs = A._push_notifies_sleeper()
    cons, new = inputs["cons"], inputs["new"]
    return hyps, A.push_notify(cons, new, cons), inputs


def _no_full_check() -> tuple[list[Any], Any, dict[str, Any]]:
    size, is_pow2 = A._power_of_two_size()
    pvt, cons = z3.BitVecs("req_prod_pvt rsp_cons", 32)
    # a producer that writes without checking RING_FULL
    return (
        [is_pow2, z3.ULE(pvt - cons, size)],
        z3.ULE((pvt + 1) - cons, size),
        {"size": size, "pvt": pvt, "cons": cons},
    )


def _no_rounding() -> tuple[list[Any], Any, dict[str, Any]]:
    pages = z3.BitVec("max-ring-pages", 32)
    clamped = z3.If(
        z3.UGT(pages, 32), z3.BitVecVal(32, 32), z3.If(z3.ULT(pages, 1), z3.BitVecVal(1, 32), pages)
    )
    return [], (clamped & (clamped - 1)) == 0, {"max-ring-pages": pages}


def _no_clamp_segments() -> tuple[list[Any], Any, dict[str, Any]]:
    advertised = z3.BitVec("feature-max-indirect-segments", 32)
    return (
        [],
        z3.ULE(advertised, A.XBD_SIZE_TO_SEGS_MAXPHYS),
        {"feature-max-indirect-segments": advertised},
    )


def _final_check_without_event() -> tuple[list[Any], Any, dict[str, Any]]:
    hyps, _, inputs = A._final_check_never_loses_a_response()
    cons, new, reread = inputs["rsp_cons"], inputs["new"], inputs["reread"]
    # the consumer forgets to set rsp_event: it stays at an old value
    stale = cons - 5
    return hyps, z3.Or(reread - cons != 0, A.push_notify(cons, new, stale)), inputs


def _loop_without_window() -> tuple[list[Any], Any, dict[str, Any]]:
    size, is_pow2 = A._power_of_two_size()
    cons, rp = z3.BitVecs("rsp_cons rsp_prod", 32)
    return [is_pow2], z3.ULE(rp - cons, size), {"rsp_cons": cons, "rsp_prod": rp}


def _free_without_bound() -> tuple[list[Any], Any, dict[str, Any]]:
    size, is_pow2 = A._power_of_two_size()
    pvt, cons = z3.BitVecs("req_prod_pvt rsp_cons", 32)
    return (
        [is_pow2],
        z3.ULE(A.ring_free_requests(size, pvt, cons), size),
        {"pvt": pvt, "cons": cons},
    )


def _requests_unclamped() -> tuple[list[Any], Any, dict[str, Any]]:
    pages = z3.BitVec("max-ring-pages", 32)
    return [z3.UGE(pages, 1)], z3.ULE(pages, 32), {"max-ring-pages": pages}


def _any_names_distinct() -> tuple[list[Any], Any, dict[str, Any]]:
    a, b = z3.BitVecs("a b", 32)
    ua, na = A.vdevice_to_unit(a)
    ub, nb = A.vdevice_to_unit(b)
    return [a != b], z3.Or(ua != ub, na != nb), {"a": a, "b": b}


#: obligation -> a broken statement of it (for the proved ones) that must be refuted
BROKEN_ARITHMETIC = {
    "ring_free_count_in_range": _free_without_bound,
    "ring_full_prevents_overrun": _no_full_check,
    "push_notifies_sleeping_consumer": _event_at_cons,
    "final_check_never_loses_a_response": _final_check_without_event,
    "response_loop_bounded": _loop_without_window,
    "ring_pages_power_of_two_within_limit": _no_rounding,
    "max_requests_within_limit": _requests_unclamped,
    "segments_within_bounds": _no_clamp_segments,
    "documented_devices_named_distinctly": _any_names_distinct,
}

#: obligation (refuted on the seed) -> the hypothesis a fix adds, under which it is proved
FIXED_ARITHMETIC: dict[str, Callable[[dict[str, Any]], Any]] = {
    "ring_page_order_shift_defined": lambda i: z3.ULT(i["max-ring-page-order"], 31),
    "no_unused_indirect_pages": lambda i: z3.Or(
        z3.Not(i["present"]), z3.Not(i["enabled"]), z3.UGT(i["feature-max-indirect-segments"], 11)
    ),
    "capacity_message_divides_safely": lambda i: z3.ULE(i["sector-size"], 1 << 20),
    "media_size_fits": lambda i: z3.And(
        z3.ULT(i["sectors"], 1 << 40), z3.ULT(i["sector-size"], 1 << 16)
    ),
    "sector_size_checked": lambda i: z3.And(
        z3.UGE(i["sector-size"], 512), (i["sector-size"] & (i["sector-size"] - 1)) == 0
    ),
    "any_device_named_apart_from_documented_ones": lambda i: A.documented_disk(i["vdevice_a"])[0],
}


def test_every_arithmetic_obligation_has_a_broken_or_fixed_variant() -> None:
    names = {o.name for o in A.ARITHMETIC_OBLIGATIONS if o.fixes is None}
    assert names == set(BROKEN_ARITHMETIC) | set(FIXED_ARITHMETIC)
    for o in A.ARITHMETIC_OBLIGATIONS:
        assert (o.finding is not None) == (o.name in FIXED_ARITHMETIC)


@pytest.mark.parametrize("name", [o.name for o in A.ARITHMETIC_OBLIGATIONS if o.fixes is not None])
def test_a_claim_with_a_fix_is_proved_and_its_seed_statement_refuted(name: str) -> None:
    # the broken variant of a claim restated with a fix is the seed's own statement
    fixed = claim_with(name)
    seed = claim_with(name.removesuffix("_with_fix"))
    assert fixed.check()[0].verdict.value == "proved"
    assert seed.finding == fixed.fixes and seed.check()[0].verdict.value == "refuted"


@pytest.mark.parametrize("name", sorted(BROKEN_ARITHMETIC))
def test_a_broken_statement_of_a_proved_arithmetic_obligation_is_refuted(name: str) -> None:
    assert claim_with(name).check()[0].verdict.value == "proved"
    check, inputs = variant(name, BROKEN_ARITHMETIC[name]).check()
    assert check.verdict.value == "refuted" and inputs


@pytest.mark.parametrize("name", sorted(FIXED_ARITHMETIC))
def test_a_refuted_arithmetic_obligation_is_proved_once_the_seed_is_fixed(name: str) -> None:
    original = claim_with(name)
    assert original.check()[0].verdict.value == "refuted"

    def fixed() -> tuple[list[Any], Any, dict[str, Any]]:
        hyps, conclusion, inputs = original.claim()
        return [*hyps, FIXED_ARITHMETIC[name](inputs)], conclusion, inputs

    assert variant(name, fixed).check()[0].verdict.value == "proved"


def test_comparing_raw_indices_instead_of_differences_fails_across_wrap_around() -> None:
    # `for (i = rsp_cons; i < rp; i++)` instead of `i != rp`: at the wrap the loop
    # would not run although responses are waiting
    def raw() -> tuple[list[Any], Any, dict[str, Any]]:
        size, is_pow2 = A._power_of_two_size()
        cons, rp = z3.BitVecs("rsp_cons rsp_prod", 32)
        return (
            [is_pow2, rp != cons, z3.ULE(rp - cons, size)],
            z3.ULT(cons, rp),
            {"rsp_cons": cons, "rsp_prod": rp},
        )

    check, inputs = variant("raw", raw).check()
    assert check.verdict.value == "refuted"
    assert inputs["rsp_prod"] < inputs["rsp_cons"]  # the counterexample is a wrap-around


@pytest.mark.parametrize("name", [o.name for o in A.ARITHMETIC_OBLIGATIONS if o.equivalent])
def test_a_cheaper_conclusion_used_for_small_counterexamples_is_equivalent(name: str) -> None:
    o = claim_with(name)
    assert o.equivalent is not None
    hypotheses, conclusion, inputs = o.claim()

    def same() -> tuple[list[Any], Any, dict[str, Any]]:
        return hypotheses, conclusion == o.equivalent(inputs), inputs  # type: ignore[misc]

    assert variant(name, same).check()[0].verdict.value == "proved"
