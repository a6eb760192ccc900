"""The registry of proof obligations: everything ``xbdspec prove`` discharges.

Built from the declaration (:mod:`xbdspec.proofs.model_obligations`) for the
default sizes, plus bounded checks of the composed handshake and the C-arithmetic
obligations (:mod:`xbdspec.proofs.arithmetic`).  An obligation the seed fails is
expected to be refuted and names the finding it documents.
"""

from __future__ import annotations

import dataclasses
import time

from xbdspec.model.protocol import ProtocolSizes, build_protocol_spec
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

from .arithmetic import ARITHMETIC_OBLIGATIONS, ArithmeticObligation
from .encoding import Verdict
from .model_obligations import (
    bmc_obligation,
    describe_sizes,
    k_induction_obligation,
    model_obligations,
)
from .refinement import refinement_obligations
from .results import Obligation, Outcome, Result

#: Every obligation of the protocol model is named ``protocol.<its name>``: the two
#: models share property names (FeatureSoundness, RingBounds) and mean different states.
PROTOCOL_PREFIX = "protocol."

#: The handshake alone: no commands and no bios, one suspend and one unplug; what
#: the bounded checks unroll (xenstore with coalescing watches, suspend/resume with a
#: new back end, unplug and close).
HANDSHAKE_SIZES = Sizes(
    commands=0,
    bios=0,
    ring_slots=1,
    grants=1,
    grants_per_request=1,
    suspends=1,
    unplugs=1,
    max_users=1,
    dumps=0,
)
BMC_DEPTH = 20
K_INDUCTION_MAX = 4
#: handshake properties that k-induction proves on their own, without the auxiliary
#: invariants the inductive proofs use
K_INDUCTIVE = ("PublishedBeforeInitialised", "IONeedsConnection", "FeatureSoundness")
#: further sizes in which the guards the default sizes cannot enable become live:
#: fewer commands than ring slots (CM_SHORTAGE; the seed reaches it only when its
#: shadow allocation fails part way) and a grant pool one request short
LIVENESS_SIZES = (Sizes(ring_slots=3, grants=2),)


def arithmetic_obligation(spec: ArithmeticObligation) -> Obligation:
    """An arithmetic claim as a registry entry."""

    def run() -> Outcome:
        start = time.perf_counter()
        check, inputs = spec.check()
        result = {
            Verdict.PROVED: Result.PROVED,
            Verdict.REFUTED: Result.REFUTED,
            Verdict.UNKNOWN: Result.UNKNOWN,
        }[check.verdict]
        # the time includes making the counterexample small
        outcome = Outcome(result, time.perf_counter() - start, check.reason)
        if inputs:
            shown = ", ".join(f"{k} = {v}" for k, v in inputs.items())
            outcome.detail = f"counterexample: {shown}"
            outcome.counterexample = [f"  {k} = {v} ({hex(v)})" for k, v in inputs.items()]
            outcome.replay = {"inputs": inputs}
        return outcome

    return Obligation(
        spec.name,
        "arithmetic",
        spec.bound,
        spec.doc,
        run,
        Result.REFUTED if spec.finding else Result.PROVED,
        spec.finding,
    )


def build_registry(sizes: Sizes | None = None) -> list[Obligation]:
    """Every obligation, in the order ``xbdspec prove`` runs them."""
    spec = build_spec(sizes or Sizes())
    extra = tuple(build_spec(k) for k in LIVENESS_SIZES) if sizes is None else ()
    obligations = list(model_obligations(spec, extra))
    handshake = build_spec(HANDSHAKE_SIZES)
    bound = f"depth {BMC_DEPTH}; {describe_sizes(handshake)}"
    visible = [i.name for i in handshake.invariants if not i.auxiliary]
    obligations.append(
        bmc_obligation(handshake, BMC_DEPTH, visible, f"handshake_bmc_depth_{BMC_DEPTH}", bound)
    )
    for prop in K_INDUCTIVE:
        obligations.append(
            k_induction_obligation(
                handshake,
                prop,
                K_INDUCTION_MAX,
                f"handshake_{prop}_k_induction",
                f"k <= {K_INDUCTION_MAX}; {describe_sizes(handshake)}",
            )
        )
    obligations.extend(arithmetic_obligation(a) for a in ARITHMETIC_OBLIGATIONS)
    obligations.extend(protocol_obligations())
    obligations.extend(refinement_obligations(spec))
    return obligations


def protocol_obligations(sizes: ProtocolSizes | None = None) -> list[Obligation]:
    """The protocol model's own obligations (its invariants inductive, its guards live,
    its invariants falsifiable), named ``protocol.*``."""
    return [
        dataclasses.replace(o, name=PROTOCOL_PREFIX + o.name)
        for o in model_obligations(build_protocol_spec(sizes or ProtocolSizes()))
    ]
