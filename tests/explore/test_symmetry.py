"""Symmetry reduction: same verdicts, fewer states; the model commutes with permutations."""

from __future__ import annotations

import itertools
from typing import Any

from explore_helpers import SMALL, TINY, model, replace_transition
from xbdspec.model.spec import build_spec
from xbdspec.model.vocabulary import BlkifStatus

from xbdspec.explore.checker import check_model
from xbdspec.explore.fast import FastStepper
from xbdspec.explore.symmetry import CommandSymmetry, Fingerprinter


def _verdicts(report: Any) -> dict[str, tuple[str, int]]:
    return {
        v.counterexample.property: (v.counterexample.kind, len(v.counterexample.steps))
        for v in report.violations
    }


def test_symmetry_gives_the_same_verdicts_with_fewer_states() -> None:
    broken = replace_transition(model(TINY), "startio_done", effect=lambda s, p: {})
    for spec in (model(TINY), broken):
        full = check_model(spec=spec, symmetry=False)
        reduced = check_model(spec=spec, symmetry=True)
        assert reduced.exploration.states < full.exploration.states
        assert set(_verdicts(reduced)) == set(_verdicts(full))
        # shortest traces to invariants and deadlocks have the same length
        for name, (kind, length) in _verdicts(full).items():
            if kind != "progress":
                assert _verdicts(reduced)[name] == (kind, length)


def test_exact_keys_and_fingerprints_count_the_same_states() -> None:
    spec = model(TINY)
    assert (
        check_model(spec=spec, exact=True).exploration.states
        == check_model(spec=spec).exploration.states
    )


def test_successors_commute_with_command_permutations() -> None:
    spec = build_spec(SMALL)
    stepper = FastStepper(spec)
    sym = CommandSymmetry(spec)
    report = check_model(spec=spec, symmetry=False, max_states=3000)
    # re-walk the first states and compare successor classes of a state and its permutations
    frontier: list[Any] = [stepper.initial()]
    seen: set[Any] = set()
    while frontier and len(seen) < 1500:
        state = frontier.pop()
        if state in seen:
            continue
        seen.add(state)
        mine = sorted(map(repr, (sym.canonical(a) for _, a in stepper.successors(state))))
        for order in itertools.permutations(range(spec.sizes.commands)):
            other = sym.permute(state, order)
            theirs = sorted(map(repr, (sym.canonical(a) for _, a in stepper.successors(other))))
            assert theirs == mine
            assert stepper.violated_invariants(other) == stepper.violated_invariants(state)
        frontier.extend(a for _, a in stepper.successors(state))
    assert report.exploration.states == 3000


def test_fingerprints_separate_error_statuses() -> None:
    """``hash(-1) == hash(-2)`` in CPython: BLKIF_RSP_ERROR and EOPNOTSUPP must still differ."""
    spec = build_spec(TINY)
    first = FastStepper(spec).initial()
    fingerprint = Fingerprinter(spec)
    a = first._replace(cmd_status=(BlkifStatus.ERROR, BlkifStatus.OKAY))
    b = first._replace(cmd_status=(BlkifStatus.EOPNOTSUPP, BlkifStatus.OKAY))
    assert hash(a) == hash(b)
    assert fingerprint(a) != fingerprint(b)


def test_the_canonical_shortcut_agrees_with_sorting() -> None:
    """A step that assigns no per-command field is not re-sorted: check it on every
    edge of a small exploration."""
    from collections import deque

    from xbdspec.explore.target import ModelTarget

    target = ModelTarget(build_spec(SMALL))
    first = target.canonical(target.initial())
    seen, queue = {first}, deque([first])
    while queue and len(seen) < 3000:
        state = queue.popleft()
        for _, after, _, _, representative, key in target.expand(state):
            assert representative == target.canonical(after)
            assert key == target.key(after)
            if representative not in seen:
                seen.add(representative)
                queue.append(representative)
