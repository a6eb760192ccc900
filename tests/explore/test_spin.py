"""SPIN, the declaration's third interpretation: the Promela algebra, parity with the
Python explorer, and SPIN's trails replayed on the concrete model.

The tests that run SPIN are skipped when ``spin`` (or ``cc``) is not installed and the
environment variable ``CI`` is unset; under CI they run, and fail if SPIN is missing
(install it with ``apt-get install -y spin``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from explore_helpers import TINY, model, replace_transition, respec
from xbdspec.model import actions as a
from xbdspec.model.concrete import Stepper
from xbdspec.model.declaration import Spec
from xbdspec.model.expr import SymbolicOperationError, all_of, negate, one_of, u32_add, u32_lt
from xbdspec.model.protocol.spec import build_protocol_spec
from xbdspec.model.protocol.state import ProtocolSizes
from xbdspec.model.requests import has_resources, next_bio, rejected
from xbdspec.model.vocabulary import Dma, DriverState
from xbdspec.model.vocabulary import XenbusState as X

from xbdspec.cli import main
from xbdspec.explore.checker import Report, check_model
from xbdspec.explore.promela import (
    Term,
    freebsd_work_pending,
    generate,
    symbolic_state,
    u32_literal,
)
from xbdspec.explore.replay import ReplayError, load_replay, replay_on_model
from xbdspec.explore.spin import (
    PanRun,
    SpinOptions,
    SpinReport,
    _run,
    check_spin,
    parse_pan_output,
    parse_trail,
    require_spin,
    spin_available,
)
from xbdspec.explore.target import model_work_pending

SPIN_MISSING = not spin_available()
needs_spin = pytest.mark.skipif(
    SPIN_MISSING and not os.environ.get("CI"),
    reason="spin or cc is not installed (apt-get install -y spin); under CI this test fails",
)

#: tiny sizes compile faster than they search: pan.c unoptimised
FAST = SpinOptions(optimize="-O0", timeout=600)


def _python(spec: Spec) -> Report:
    return check_model(spec=spec, symmetry=False)


def _verdicts_python(report: Report, *, progress: bool = True) -> set[tuple[str, str]]:
    return {
        (v.counterexample.kind, v.counterexample.property)
        for v in report.violations
        if progress or v.counterexample.kind != "progress"
    }


def _verdicts_spin(report: SpinReport) -> set[tuple[str, str]]:
    return {(v.counterexample.kind, v.counterexample.property) for v in report.violations}


# --------------------------------------------------------------------------- the algebra (no SPIN)


def test_u32_literals_hold_the_same_32_bits() -> None:
    assert u32_literal(0) == "0"
    assert u32_literal(5) == "5"
    assert u32_literal(0xFFFF_FFFE) == "(-2)"
    assert u32_literal(0x8000_0000) == "XBD_SIGN"
    assert u32_literal(0x7FFF_FFFF) == "2147483647"
    assert u32_literal(1 << 32) == "0"


def test_guards_run_on_promela_terms() -> None:
    spec = model(TINY)
    s = symbolic_state(spec)
    term = all_of(s.be_online, one_of(s.fe_state, (X.Initialised, X.Connected)))
    assert isinstance(term, Term)
    assert term.text() == "(be_online && ((fe_state == 3) || (fe_state == 4)))"
    # ring indices compare unsigned: the sign bit is flipped on both sides
    lt = u32_lt(s.rsp_cons, u32_add(s.req_prod, 1))
    assert lt.text() == "((rsp_cons ^ XBD_SIGN) < ((req_prod + 1) ^ XBD_SIGN))"
    assert negate(negate(s.be_online)) is s.be_online


def test_promela_terms_fail_loudly_outside_the_expression_language() -> None:
    s = symbolic_state(model(TINY))
    with pytest.raises(SymbolicOperationError, match="plain truth value"):
        bool(s.be_online)
    with pytest.raises(SymbolicOperationError, match="u32_add"):
        _ = s.req_prod + 1
    with pytest.raises(SymbolicOperationError, match="neither"):
        all_of(s.be_online, "yes")


def test_the_symbolic_work_pending_is_the_explorers() -> None:
    """:func:`freebsd_work_pending` (which becomes Promela) agrees with
    :func:`model_work_pending` on every reachable state of small sizes."""
    spec = model(dataclasses.replace(TINY, bios=2))
    stepper = Stepper(spec)
    first = stepper.initial()
    seen, queue = {first}, deque([first])
    while queue and len(seen) < 5000:
        state = queue.popleft()
        assert freebsd_work_pending(state, spec.sizes) == model_work_pending(state)
        for _, after in stepper.successors(state):
            if after not in seen:
                seen.add(after)
                queue.append(after)
    assert len(seen) >= 5000


def test_the_model_generates_one_option_per_instance() -> None:
    spec = model(TINY)
    safety = generate(spec)
    never_enabled = safety.text.count(": never enabled */")
    assert len(safety.options) + never_enabled == len(spec.instances)
    for iid in safety.options:
        assert f'printf("xbdspec-step {iid}\\n");' in safety.text
    assert set(safety.invariants) == {inv.name for inv in spec.invariants}
    # a step property no instance can break (its check simplifies to true) has no assertion:
    # at these sizes nothing rewrites the transport while the front end stays Connected
    assert set(safety.step_properties) == {"NoDispatchWhileFrozen"}
    assert safety.deadlock and "timeout &&" in safety.text
    liveness = generate(spec, mode="liveness")
    assert set(liveness.claims.values()) == {p.name for p in spec.progress}
    assert "xbd_last" in liveness.text and "xbd_last" not in safety.text
    multicore = generate(spec, multicore=True)
    assert "\nhidden " not in multicore.text and not multicore.reports_every_property


def test_the_protocol_model_generates() -> None:
    spec = build_protocol_spec(ProtocolSizes(ids=1, ring_slots=1, max_order=0, max_queues=1))
    safety = generate(spec)
    assert not safety.deadlock  # the protocol has legitimate terminal states
    assert set(safety.invariants) == {inv.name for inv in spec.invariants}
    liveness = generate(spec, mode="liveness")
    assert set(liveness.claims.values()) == {p.name for p in spec.progress}


def test_pan_output_and_trails_are_parsed() -> None:
    run = parse_pan_output(
        PanRun("safety", None, [], bitstate=True, hash_functions=3),
        """pan:1: assertion violated inv_FreezeAccounting (at depth 12)
pan: wrote model.pml1.trail
State-vector 84 byte, depth reached 18, errors: 1
     1395 states, stored
     1476 states, matched
     2871 transitions (= stored+matched)
hash factor: 384.9 (best if > 100.)
bits set per state: 3 (-k3)
   54.069	total actual memory usage
pan: elapsed time 0.25 seconds
""",
    )
    assert (run.states, run.matched, run.transitions, run.depth, run.errors) == (
        1395,
        1476,
        2871,
        18,
        1,
    )
    assert run.memory_mb == 54.069 and run.seconds == 0.25 and run.hash_factor == 384.9
    assert run.coverage is not None and 0.9999 < run.coverage < 1.0
    assert run.messages == ["pan:1: assertion violated inv_FreezeAccounting (at depth 12)"]
    big = parse_pan_output(
        PanRun("safety", None, []),
        "cpu0: pan:1: invalid end state (at depth 3)\n"
        "1.7455701e+08 states, stored\n 3.1e+08 states, matched\n",
    )
    assert (big.states, big.matched, big.transitions) == (174_557_010, 310_000_000, 484_557_010)
    assert big.messages == ["cpu0: pan:1: invalid end state (at depth 3)"]
    trail = parse_trail(
        """Never claim moves to line 14	[(1)]
          xbdspec-step 3
          xbdspec-step 7
  <<<<<START OF CYCLE>>>>>
          xbdspec-step 9
          xbdspec-stutter
"""
    )
    assert trail.steps == [3, 7, 9] and trail.cycle_start == 2 and trail.violation is None
    stuck = parse_trail("  xbdspec-step 3\n  <<<<<START OF CYCLE>>>>>\n  xbdspec-stutter\n")
    assert stuck.cycle_start is None and stuck.stutters_at_end


def test_a_multicore_run_cut_by_sigint_counts_every_cores_states() -> None:
    """Stopped by the time-out, multi-core pan prints no totals: the states are each
    core's last count (its "states visited", or its last progress line)."""
    run = parse_pan_output(
        PanRun("safety", None, [], cores=2),
        "cpu0: Depth=      46 States=    4e+06 Transitions= 1.23e+07 Memory=   815.731\n"
        "cpu0: Depth=      46 States= 4.44e+06 Transitions= 1.38e+07 Memory=   829.107\n"
        "cpu1: Depth=      44 States= 4.17e+06 Transitions= 1.42e+07 Memory=   127.357\n"
        "cpu1: Give Up\n"
        "cpu0: elapsed time 60.6 seconds (4.43831e+06 states visited)\n",
    )
    assert run.states == 4_438_310 + 4_170_000 and run.seconds == 60.6


def test_a_trails_violation_is_its_last_mark() -> None:
    """A property reported earlier in pan's search (its first-report flag set there) fires
    again on the way in the guided simulation, where flags start at 0; the trail's own
    violation, where pan's trail ends, is the last mark."""
    trail = parse_trail(
        "  xbdspec-step 3\n      xbdspec-violated step NoDispatchWhileFrozen\n"
        "spin: model.pml:817, Error: assertion violated\n"
        "      xbdspec-violated invariant SingleStepOrdering\n"
        "spin: trail ends after 2 steps\n"
    )
    assert trail.violation == ("invariant", "SingleStepOrdering") and trail.steps == [3]


def test_a_command_past_its_deadline_is_killed_with_its_group(tmp_path: Path) -> None:
    """SIGINT to the group, then SIGKILL: a child that ignores SIGINT goes too."""
    started = time.monotonic()
    command = ["/bin/sh", "-c", "trap '' INT; /bin/sleep 37.25 & /bin/sleep 37.25"]
    done = _run(command, tmp_path, started + 0.5, grace=0.5)
    assert done.timed_out and time.monotonic() - started < 10
    time.sleep(0.2)
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and b"37.25" in _cmdline(p)]
    assert left == []


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""


# --------------------------------------------------------------------------- SPIN


@needs_spin
def test_spin_is_installed() -> None:
    require_spin()


@needs_spin
def test_parity_on_the_unbroken_model() -> None:
    """Same sizes, symmetry off, the same abstraction: the same states, no violation,
    every progress property checked."""
    spec = model(TINY)
    python = _python(spec)
    spin = check_spin(spec=spec, options=FAST)
    assert spin.complete and spin.progress_checked
    assert spin.states == python.exploration.states
    assert spin.safety.transitions == python.exploration.transitions + 1  # pan's first step
    assert spin.violations == [] and python.violations == []


@needs_spin
def test_parity_with_the_dump_path() -> None:
    """The kernel-dump path on: ``dump_result`` is only ever assigned (no guard,
    effect or invariant reads it), and ``spin -a`` hides such a variable from the
    state vector unless given ``-o2``; the states differing only in it must still be
    told apart (10259 states here, 8371 with the variable hidden)."""
    spec = model(dataclasses.replace(TINY, commands=1, ring_slots=1, grants=2, dumps=1))
    python = _python(spec)
    spin = check_spin(spec=spec, options=dataclasses.replace(FAST, progress=False))
    assert spin.complete
    assert spin.states == python.exploration.states
    assert spin.safety.transitions == python.exploration.transitions + 1  # pan's first step
    assert spin.violations == [] and python.violations == []


def _backend_connects_early(s: Any, p: Any) -> Any:
    """backend_connect without the conjuncts that wait for the front end's transport."""
    return all_of(one_of(s.be_state, (X.InitWait, X.Initialised)), s.be_online)


def _ignores_freeze(s: Any, p: Any) -> Any:
    """startio_send_bio's guard with the conjunct ``frozen == 0`` removed."""
    return all_of(
        p.dma != Dma.FAILED,
        s.drv_state == DriverState.CONNECTED,
        negate(a.ring_full(s, p.k)),
        next_bio(s, p.bio),
        negate(rejected(s, p.bio)),
        has_resources(s, p.k, p.cmd),
    )


def _never(spec: Spec, name: str) -> Spec:
    return respec(
        spec,
        transitions=tuple(
            dataclasses.replace(t, guard=lambda s, p: False) if t.name == name else t
            for t in spec.transitions
        ),
    )


BROKEN = {
    "backend connects early": lambda: replace_transition(
        model(TINY), "backend_connect", guard=_backend_connects_early
    ),
    "dispatch while frozen": lambda: replace_transition(
        model(dataclasses.replace(TINY, bios=2)), "startio_send_bio", guard=_ignores_freeze
    ),
    "interrupt takes no response": lambda: replace_transition(
        model(TINY), "interrupt", effect=lambda s, p: {}
    ),
    "back end never answers": lambda: _never(model(TINY), "backend_respond"),
}


@needs_spin
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_parity_on_seeded_broken_models(case: str, tmp_path: Path) -> None:
    """Both engines find the same violated properties; each SPIN trail replays on the
    concrete model and its replay file shows the violation again."""
    spec = BROKEN[case]()
    progress = case != "dispatch while frozen"  # 72k states: its liveness runs are slow
    python = _python(spec)
    spin = check_spin(
        spec=spec, options=dataclasses.replace(FAST, progress=progress), replay_dir=tmp_path
    )
    assert spin.complete
    assert _verdicts_spin(spin) == _verdicts_python(python, progress=progress)
    assert spin.violations
    assert spin.states == python.exploration.states
    for v in spin.violations:
        assert v.reproduced, (v.counterexample.property, v.detail)
        assert v.replay is not None
        outcome = replay_on_model(load_replay(v.replay), spec)
        assert outcome.reproduced, outcome.detail
        # and not on the unbroken model
        assert not _reproduced(v.replay, model(spec.sizes))


def _reproduced(path: Path, spec: Spec) -> bool:
    try:
        return replay_on_model(load_replay(path), spec).reproduced
    except ReplayError:  # an event of the trace is not even allowed there
        return False


@needs_spin
def test_a_lasso_trail_becomes_a_lasso_replay(tmp_path: Path) -> None:
    spec = BROKEN["interrupt takes no response"]()
    spin = check_spin(spec=spec, options=FAST, replay_dir=tmp_path)
    (v,) = spin.violations
    cx = v.counterexample
    assert cx.kind == "progress" and cx.cycle_start is not None and cx.when_at is not None
    assert cx.states[-1] == cx.states[cx.cycle_start]
    assert "interrupt" in {s.instance.transition.event for s in cx.steps[cx.cycle_start :]}


@needs_spin
def test_multicore_and_bitstate_runs_count_the_same_states() -> None:
    spec = model(TINY)
    expected = _python(spec).exploration.states
    cores = check_spin(spec=spec, options=dataclasses.replace(FAST, cores=2, progress=False))
    assert cores.complete and cores.states == expected and cores.safety.cores == 2
    bits = check_spin(
        spec=spec, options=dataclasses.replace(FAST, bitstate=True, hash_bits=24, progress=False)
    )
    assert not bits.complete  # bitstate is never called exhaustive
    assert bits.states == expected
    assert bits.safety.coverage is not None and bits.safety.coverage > 0.999


@needs_spin
def test_the_protocol_model_has_no_assertion_violation_within_a_bounded_depth() -> None:
    """The protocol model's state space is large (offers and features are free
    parameters): every state within 10 steps of the initial state (``-m10`` with
    ``-DREACH``) keeps every invariant and step property."""
    spec = build_protocol_spec(ProtocolSizes(ids=1, ring_slots=1, max_order=0, max_queues=1))
    report = check_spin(
        spec=spec,
        options=dataclasses.replace(FAST, max_depth=10, exact_depth=True, progress=False),
    )
    assert report.safety.errors == 0 and report.violations == []
    assert report.safety.depth_limited and not report.complete
    assert report.states > 10_000


@needs_spin
def test_a_broken_protocol_models_trail_replays_on_it() -> None:
    """The front end writes past RING_FULL (the conjunct removed from
    ``frontend_write_request``'s conditions): SPIN finds RingBounds broken within 14
    steps, and the trail replays on the concrete protocol model."""
    spec = build_protocol_spec(ProtocolSizes(ids=2, ring_slots=1, max_order=0, max_queues=1))

    def without_ring_full(t: Any) -> Any:
        conditions = t.conditions

        def guard(s: Any, p: Any) -> Any:
            return all_of(*(c for what, c in conditions(s, p) if "RING_FULL" not in what))

        return dataclasses.replace(t, guard=guard)

    broken = spec.replace(
        transitions=tuple(
            without_ring_full(t) if t.name == "frontend_write_request" else t
            for t in spec.transitions
        )
    )
    report = check_spin(
        spec=broken, options=dataclasses.replace(FAST, max_depth=14, progress=False)
    )
    found = {v.counterexample.property: v for v in report.violations}
    assert found["RingBounds"].reproduced and found["RingBounds"].counterexample.kind == "invariant"


@needs_spin
def test_explore_engine_spin_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explore", "--commands", "2", "--bios", "1", "--suspends", "0", "--unplugs", "0"]
    argv += ["--quiet", "--json"]
    assert main([*argv, "--no-symmetry"]) == 0
    python = json.loads(capsys.readouterr().out)
    status = main([*argv, "--engine", "spin", "--spin-no-progress", "--replay-dir", str(tmp_path)])
    spin = json.loads(capsys.readouterr().out)
    assert status == 0
    assert spin["engine"] == "spin" and spin["complete"] and not spin["symmetry"]
    for key in ("states", "transitions", "depth", "seconds", "states_per_second", "violations"):
        assert key in spin
    assert spin["states"] == python["states"] and spin["violations"] == []
    assert spin["spin"]["safety"]["exhaustive"]


def test_explore_engine_spin_refuses_the_python_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", "--engine", "spin", "--max-states", "10"]) == 2
    assert "--spin-max-depth" in capsys.readouterr().err
    assert main(["explore", "--engine", "spin", "--target", "reference"]) == 2


def test_skips_only_without_spin_and_outside_ci() -> None:
    """The skip condition: SPIN missing and CI unset (under CI a missing SPIN fails)."""
    if os.environ.get("CI"):
        assert not needs_spin.args[0]
    assert needs_spin.args[0] == (SPIN_MISSING and not os.environ.get("CI"))
    assert (shutil.which("spin") is None or shutil.which("cc") is None) == SPIN_MISSING
