"""The protocol model: well-formed, every rule quoting its header, every obligation
proved, and each obligation refuting a broken variant of the rule it rests on."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from xbdspec.model.declaration import Spec, Transition
from xbdspec.model.expr import all_of
from xbdspec.model.protocol import DEVIATIONS, ProtocolSizes, build_protocol_spec
from xbdspec.model.protocol import quotes as q
from xbdspec.model.protocol.vocabulary import ReqStage
from xbdspec.proofs.model_obligations import ModelContext, preservation_obligation
from xbdspec.proofs.registry import PROTOCOL_PREFIX, protocol_obligations
from xbdspec.proofs.results import Result

SPEC = build_protocol_spec()
HEADERS = Path("/usr/include/xen/io")


def test_every_rule_quotes_its_header_and_states_its_conditions() -> None:
    for t in SPEC.transitions:
        assert t.quote is not None, f"{t.name} quotes no header sentence"
        assert t.conditions is not None, f"{t.name} states no conditions in words"
        assert t.quote.header.startswith("xen/include/public/io/")
        assert t.deviation is None or t.deviation in DEVIATIONS
    for inv in SPEC.invariants:
        assert inv.auxiliary or inv.quote is not None, f"{inv.name} quotes no header sentence"
    for prop in SPEC.step_properties:
        assert prop.quote is not None, f"{prop.name} quotes no header sentence"


def _fold(text: str) -> str:
    text = re.sub(r"^\s*\*", " ", text, flags=re.M)
    text = text.replace("\\\n", " ").replace("/*", " ").replace("*/", " ")
    return " ".join(text.split())


@pytest.mark.skipif(
    not HEADERS.is_dir() and not os.environ.get("CI"),
    reason="Xen's headers are not installed (Debian's libxen-dev; .ci/run installs it)",
)
def test_every_quote_stands_word_for_word_in_the_installed_headers() -> None:
    texts = {
        name: _fold((HEADERS / name).read_text()) for name in ("blkif.h", "ring.h", "xenbus.h")
    }
    for name, quote in q.ALL.items():
        header = texts[quote.header.rsplit("/", 1)[-1]]
        for part in quote.text.split(" ... "):
            assert _fold(part).replace("/* ", "").replace(" */", "") in header.replace(
                "/* ", ""
            ).replace(" */", ""), f"quote {name} is not in {quote.header}: {part!r}"


def test_every_protocol_obligation_is_proved() -> None:
    results = {o.name: o.run() for o in protocol_obligations()}
    assert len(results) > 70
    assert all(n.startswith(PROTOCOL_PREFIX) for n in results)
    bad = {
        n: (r.result.value, r.detail) for n, r in results.items() if r.result is not Result.PROVED
    }
    assert not bad


# --------------------------------------------------------------------------- broken variants


def _variant(
    spec: Spec,
    name: str,
    *,
    drop: str | None = None,
    effect: Callable[[Any, Any], dict[str, Any]] | None = None,
    source: tuple[Any, ...] | None = None,
) -> tuple[Spec, Transition]:
    """``spec`` with transition ``name`` broken: a condition dropped (by the start of its
    text), its effect replaced, or its sources widened."""
    t = spec.transition(name)
    changes: dict[str, Any] = {}
    if drop is not None:
        original = t.conditions
        assert original is not None

        def conditions(s: Any, p: Any) -> list[tuple[str, Any]]:
            return [(text, c) for text, c in original(s, p) if not text.startswith(drop)]

        changes["conditions"] = conditions
        changes["guard"] = lambda s, p: all_of(*(c for _, c in conditions(s, p)))
    if effect is not None:
        changes["effect"] = effect
    if source is not None:
        changes["source"] = source
    broken = dataclasses.replace(t, **changes)
    transitions = tuple(broken if x is t else x for x in spec.transitions)
    new = spec.replace(transitions=transitions)
    return new, new.transition(name)


def _refuted_by(spec: Spec, t: Transition) -> str:
    outcome = preservation_obligation(ModelContext(spec), t).run()
    assert outcome.result is Result.REFUTED, f"the broken {t.name} was not refuted"
    return outcome.detail


def _reconnect_dropping_in_flight(s: Any, p: Any) -> dict[str, Any]:
    stages = tuple(ReqStage.IDLE for _ in s.req_stage)
    changes = SPEC.transition("frontend_reconnect").effect(s, p)
    return {**changes, "req_stage": stages}


BROKEN = [
    ("frontend_write_request", {"drop": "the ring is not RING_FULL"}, "RingBounds"),
    ("frontend_write_request", {"drop": "the back end offered"}, "FeatureSoundness"),
    ("frontend_write_request", {"drop": "a push notifies"}, "NoLostWakeup"),
    ("frontend_push_requests", {"drop": "a push notifies"}, "NoLostWakeup"),
    ("backend_respond", {"drop": "a push notifies"}, "NoLostWakeup"),
    ("frontend_service_ring", {"drop": "the final check"}, "NoLostWakeup"),
    (
        "frontend_end_grant",
        {"drop": "the id's request is not on the ring"},
        "GrantsOutliveRequests",
    ),
    ("frontend_initialised", {"drop": "the transport keys"}, "PublishedBeforeInitialised"),
    ("backend_connect", {"drop": "the front end"}, "BackendConnectedAfterPublish"),
    ("backend_respond", {"drop": "the back end took"}, "AnsweredOnce"),
    ("frontend_reconnect", {"effect": _reconnect_dropping_in_flight}, "NoLostIO"),
]


@pytest.mark.parametrize(
    ("transition", "change", "invariant"), BROKEN, ids=[f"{t}-{i}" for t, _, i in BROKEN]
)
def test_a_broken_rule_is_refuted_by_its_obligation(
    transition: str, change: dict[str, Any], invariant: str
) -> None:
    spec, t = _variant(SPEC, transition, **change)
    assert invariant in _refuted_by(spec, t)


def test_a_transport_rewrite_while_connected_is_refuted() -> None:
    from xbdspec.model.vocabulary import XenbusState as X

    spec, t = _variant(SPEC, "frontend_publish_transport", source=(X.Initialising, X.Connected))
    assert "TransportParamsStable" in _refuted_by(spec, t)


def test_small_and_larger_sizes_give_the_same_verdicts() -> None:
    for sizes in (
        ProtocolSizes(ids=1, ring_slots=1, max_order=0, max_queues=1),
        ProtocolSizes(ids=3, ring_slots=2, max_order=2, max_queues=3),
    ):
        spec = build_protocol_spec(sizes)
        ctx = ModelContext(spec)
        for name in ("frontend_write_request", "frontend_service_ring", "backend_respond"):
            assert preservation_obligation(ctx, spec.transition(name)).run().result is Result.PROVED
