"""The fast readings give the direct readings' verdicts on generated traces (hypothesis).

As ``test_fast_paths.py``, on traces hypothesis draws: protocol traces of random walks
of the ring (the steps a harness records, some out of place), checked with the compiled
steps (:mod:`xbdspec.traces.compiled`) and with the model's own, and access logs of
random devices' lives, mutated, and the fixture logs mutated, read chunk by chunk with
the configuration table and line by line with each life's own protocol checker.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fast_paths import _HANDSHAKE, DATA, _agree, _mutate, _random_log, _ring_trace

from xbdspec.traces.protocol import Commit, ProtocolChecker

#: The protocol model's sizes for the random walks of the ring (small, so the walks
#: meet full rings, wrapped indices and every operation).
_WALK_SIZES = {"ids": 4, "ring_slots": 4, "max_order": 1, "max_queues": 2}


def _walk_trace(rng: random.Random, ring_base: int, lines: int) -> list[str]:
    """A protocol trace as a harness records it: the handshake, then lines of one to
    three ring steps, each a step the protocol allows from where the walk is (on a
    random queue); in two traces of five, one step anywhere is any ring step at all
    (a violation, or not)."""
    from xbdspec.model.protocol import ProtocolSizes

    from xbdspec.traces.protocol import RING_STEPS, step_table

    sizes = {**_WALK_SIZES, "ring_base": ring_base}
    table = step_table(ProtocolSizes(**sizes))
    walkers = []
    for _ in range(sizes["max_queues"]):
        checker = ProtocolChecker(ProtocolSizes(**sizes), table=False)
        for obj in _HANDSHAKE:
            assert checker.check(Commit(str(obj["by"]), dict(obj["writes"]), (), "h"))
        walkers.append(next(iter(checker.states)))
    ring = [i for i in table.spec.instances if i.transition.name in RING_STEPS]
    header = {"xbdspec_trace": 2, "kind": "protocol", "sizes": sizes}
    out = [json.dumps(header), *(json.dumps(obj) for obj in _HANDSHAKE)]
    odd = rng.randrange(lines) if rng.random() < 0.4 else -1
    for event in range(lines):
        queue = rng.randrange(sizes["max_queues"])
        steps = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            state = walkers[queue]
            enabled = [i for i in ring if table.stepper.is_enabled(state, i)]
            pick = rng.choice(ring) if event == odd or not enabled else rng.choice(enabled)
            if table.stepper.is_enabled(state, pick):
                walkers[queue] = table.stepper.apply(state, pick)
            params = {
                k: (v.name if hasattr(v, "name") else list(v) if isinstance(v, tuple) else v)
                for k, v in pick.bindings.as_dict().items()
            }
            steps.append([pick.transition.name, params])
        line = {"by": "frontend", "queue": queue, "steps": steps, "what": "w", "event": event}
        out.append(json.dumps(line))
    return [line + "\n" for line in out]


def _both_ways(lines: list[str]) -> None:
    """The trace checked with the step table and the compiled steps, and with the
    model's own steps only: the same report, to the last step's label."""
    import io

    from xbdspec.traces.protocol import _check_stream

    text = "".join(lines)
    _, fast = _check_stream(io.StringIO(text), "t")
    _, direct = _check_stream(io.StringIO(text), "t", table=False)
    assert fast.as_json() == direct.as_json()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rng=st.randoms(use_true_random=False),
    ring_base=st.sampled_from([0, 0xFFFF_FFFD, 12345]),
    compile_after=st.sampled_from([1, 2, 3]),
)
def test_random_protocol_traces_are_checked_alike_compiled_and_directly(
    rng: random.Random, ring_base: int, compile_after: int
) -> None:
    """Random walks of the ring, with the compiled steps taken from the first time a
    line is met (or the second, or the third): the fast reading's report is the
    model's own."""
    from xbdspec.traces.protocol import StepTable

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StepTable, "COMPILE_AFTER", compile_after)
        _both_ways(_walk_trace(rng, ring_base, rng.randint(1, 120)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), ring_base=st.sampled_from([0, 0xFFFF_FFFD]))
def test_batched_protocol_traces_are_checked_alike_compiled_and_directly(
    rng: random.Random, ring_base: int
) -> None:
    """Batches of I/O as front and back ends do them (``ring_cycles``), with a step out
    of place now and then."""
    from xbdspec.traces.protocol import StepTable

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StepTable, "COMPILE_AFTER", 1)
        _both_ways(_ring_trace(rng, ring_base, rng.randint(1, 10)))


def test_the_compiled_steps_stay_exact_when_their_tables_start_afresh() -> None:
    """A bound of eight compiled steps: the steps' table is emptied again and again
    during one trace, and the report does not change."""
    from xbdspec.traces.protocol import StepTable

    rng = random.Random(8)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StepTable, "COMPILE_AFTER", 1)
        patch.setattr(StepTable, "MAX_COMPILED", 8)
        for _ in range(10):
            _both_ways(_walk_trace(rng, 0, 80))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False))
def test_generated_logs_are_checked_alike_fast_and_directly(rng: random.Random) -> None:
    """Access logs of several devices' lives, interleaved with unrelated traffic, then
    mutated (cut lines, refused writes, conflicts, connections ending, other back-end
    types, removals of ancestors, bad values, blank and malformed lines): the chunked
    reading and the configuration table give the line-by-line direct reading's
    verdicts, against the protocol model and against the FreeBSD model."""
    lines, nb_chars = _random_log(rng)
    _agree(lines, nb_chars)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), cut=st.sampled_from([180, 0, 120]))
def test_fixture_logs_mutated_are_checked_alike_fast_and_directly(
    rng: random.Random, cut: int
) -> None:
    """The hand-written fixture logs, each mutated as the generated ones are."""
    path = rng.choice(sorted(DATA.glob("*.log")))
    _agree(_mutate(path.read_text().splitlines(), rng), cut)
