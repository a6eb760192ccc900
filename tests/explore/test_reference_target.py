"""``xbdspec explore --target reference``: the driver code explored in lock-step with
the model; its departures are the seed's documented findings, each replayable."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from xbdspec.reference.platform import Fixes

from xbdspec.cli import main
from xbdspec.conformance.findings import classify
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import ReferenceImplementation
from xbdspec.conformance.replay import read
from xbdspec.explore.reference import explore_reference


def test_a_bounded_exploration_finds_only_known_findings_and_they_replay(tmp_path: Path) -> None:
    report = explore_reference(max_states=450, replay_dir=tmp_path)
    assert report.states == 450 and not report.complete
    assert report.violations, "the seed's findings should show within these bounds"
    assert report.new == []
    for violation in report.violations.values():
        assert violation.replay is not None
        sizes, steps = read(violation.replay)
        lock = LockStep(ReferenceImplementation(), sizes)
        divergence = run_program(lock.impl, lock, steps)
        assert divergence is not None
        finding = classify(divergence, "reference")
        assert finding is not None and finding.name == violation.property


def test_the_command_reports_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["explore", "--target", "reference", "--max-states", "30", "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out["target"] == "reference" and out["states"] == 30 and out["complete"] is False
    for key in ("transitions", "depth", "seconds", "states_per_second", "violations", "sizes"):
        assert key in out


def test_the_fixed_profile_explores_clean_and_reports_what_it_is(tmp_path: Path) -> None:
    report = explore_reference(max_states=300, replay_dir=tmp_path, fixes=Fixes.all())
    assert report.states == 300 and report.implementation == "reference-fixed"
    assert report.violations == {}
    assert report.as_json()["target"] == "reference-fixed"


def test_a_fixed_profile_divergence_is_never_known(monkeypatch: pytest.MonkeyPatch) -> None:
    # break one fix's code path: the fixed profile's divergence must count as new
    import xbdspec.reference.driver as driver

    real = driver.cm_thaw
    monkeypatch.setattr(driver, "cm_thaw", lambda sc, cm: None)
    report = explore_reference(max_states=200, fixes=Fixes.all())
    assert report.violations and all(not v.known for v in report.violations.values())
    monkeypatch.setattr(driver, "cm_thaw", real)


# --------------------------------------------------------------------------- snapshots


def test_structural_snapshots_explore_exactly_as_deep_copies() -> None:
    """Pickled snapshots with the disk tracked by pages, and load answers counted
    without being run when they would repeat the first answer's run, change nothing
    but the speed: the same states, transitions, depth and violations (with their
    programs) as deep copies running every answer."""
    fast = explore_reference(max_states=250)
    slow = explore_reference(max_states=250, structural=False, reuse_answers=False)
    assert (fast.states, fast.transitions, fast.depth) == (
        slow.states,
        slow.transitions,
        slow.depth,
    )
    assert fast.answers_reused > 0 and slow.answers_reused == 0
    assert {n: [s.label() for s in v.steps] for n, v in fast.violations.items()} == {
        n: [s.label() for s in v.steps] for n, v in slow.violations.items()
    }


def test_a_restore_gives_back_the_disk_and_every_attribute_exactly() -> None:
    """Along a run of writes that goes back to earlier snapshots now and then (so that
    later snapshots are taken on top of a restored one, walking only what changed),
    every structural snapshot restores the back end's RAM disk byte for byte and the
    rest of the implementation as its deep copy has it."""
    from xbdspec.explore.reference import (
        DEFAULT_REFERENCE_SIZES,
        StructuralSnapshots,
        _steps_from,
    )
    from xbdspec.explore.snapshots import PageTrackedBuffer

    impl = ReferenceImplementation()
    lock = LockStep(impl, DEFAULT_REFERENCE_SIZES)
    assert lock.start() is None
    snapshots = StructuralSnapshots(impl)
    taken: list[tuple[object, bytes, object, list[Any]]] = []
    for i in range(24):
        taken.append((snapshots.snapshot(), bytes(_disk(impl)), impl.snapshot(), lock.candidates))
        if i % 3 == 2:  # back to an earlier state, as the search does before each step
            snapshot, _, _, candidates = taken[i // 2]
            snapshots.restore(snapshot)
            lock.candidates = list(candidates)
        options = list(_steps_from(lock))
        if not options:
            break
        event, params, env = options[i % len(options)]
        if lock.step(event, params, env) is not None:
            snapshots.restore(taken[-1][0])
            lock.candidates = list(taken[-1][3])
            continue
        # and some writes of the back end's kind, to pages far apart
        disk = _disk(impl)
        disk[i * 8192 : i * 8192 + 512] = bytes([i]) * 512
    assert isinstance(_disk(impl), PageTrackedBuffer)
    assert any(s.generation > 0 for s, _, _, _ in taken if hasattr(s, "generation"))
    for snapshot, disk_bytes, deep, _ in reversed(taken):
        snapshots.restore(snapshot)
        assert bytes(_disk(impl)) == disk_bytes
        restored = dict(impl.__dict__)
        impl.restore(deep)
        expected = dict(impl.__dict__)
        restored["platform"].backend.disk = expected["platform"].backend.disk = None
        assert _same(restored, expected, set()), "a restore differs from the deep copy"
    assert snapshots.fallbacks == 0


def _disk(impl: ReferenceImplementation) -> bytearray:
    """The back end's RAM disk."""
    assert impl.platform is not None
    return impl.platform.backend.disk


def _same(a: Any, b: Any, seen: set[tuple[int, int]]) -> bool:
    """``a`` and ``b`` are equal object graphs: the same types, equal values, the same
    attributes (``__dict__`` and slots) all the way down (cycles followed once)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (int, float, str, bytes, bytearray, type(None))) or callable(a):
        return bool(a == b)
    if (id(a), id(b)) in seen:
        return True
    seen.add((id(a), id(b)))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], seen) for k in a)
    if isinstance(a, (list, tuple, deque)):
        return len(a) == len(b) and all(_same(x, y, seen) for x, y in zip(a, b, strict=True))
    if isinstance(a, (set, frozenset)):
        return bool(a == b)
    slots = [s for cls in type(a).__mro__ for s in getattr(cls, "__slots__", ())]
    for name in slots:
        if hasattr(a, name) != hasattr(b, name):
            return False
        if hasattr(a, name) and not _same(getattr(a, name), getattr(b, name), seen):
            return False
    if hasattr(a, "__dict__"):
        return _same(vars(a), vars(b), seen)
    return bool(slots) or bool(a == b)


def test_the_page_tracked_buffer_tracks_item_and_slice_writes() -> None:
    from xbdspec.explore.snapshots import PageTrackedBuffer

    buffer = PageTrackedBuffer(5 * 4096)
    buffer[4095:4097] = b"ab"
    buffer[3 * 4096] = 7
    buffer[-1] = 1
    assert buffer.written == {0, 1, 3, 4}
    pages = buffer.pages()
    buffer[2 * 4096 : 2 * 4096 + 3] = b"xyz"
    buffer.load(pages)
    assert buffer.written == {0, 1, 3, 4} and buffer[2 * 4096 : 2 * 4096 + 3] == bytes(3)
    assert buffer[4095:4097] == b"ab" and buffer[3 * 4096] == 7 and buffer[-1] == 1


def test_what_the_walk_cannot_restore_falls_back_to_the_deep_copy() -> None:
    from xbdspec.explore.reference import DEFAULT_REFERENCE_SIZES, StructuralSnapshots

    impl = ReferenceImplementation()
    lock = LockStep(impl, DEFAULT_REFERENCE_SIZES)
    assert lock.start() is None
    snapshots = StructuralSnapshots(impl)
    before = impl.observe().fields
    count = [0]

    def callback() -> None:  # a closure: its cell is state the walk cannot restore
        count[0] += 1

    impl.callback = callback  # type: ignore[attr-defined]
    snapshot = snapshots.snapshot()
    assert snapshots.fallbacks == 1
    lock.step("backend_publish", {"barrier": False, "flush": False})
    assert impl.observe().fields != before
    snapshots.restore(snapshot)
    assert impl.observe().fields == before


# --------------------------------------------------------------------------- the lock step


def test_the_lock_step_counts_each_compared_field_once_an_observation() -> None:
    from xbdspec.explore.reference import DEFAULT_REFERENCE_SIZES, _steps_from

    impl = ReferenceImplementation()
    lock = LockStep(impl, DEFAULT_REFERENCE_SIZES)
    assert lock.start() is None
    observations = 1
    for _ in range(5):
        event, params, env = next(iter(_steps_from(lock)))
        assert lock.step(event, params, env) is None
        observations += 1
    shown = [k for k, v in impl.observe().fields.items() if v is not None]
    compared = lock.compared
    assert set(compared) == {k for k in shown if k in lock.model.field_position}
    assert set(compared.values()) == {observations}


def test_answers_that_cannot_matter_give_the_same_closure() -> None:
    """Where ``answers_matter`` says no answer was read on the way, every answer's
    closure is the first answer's (the shortcut of ``_same_as_default``): over the
    model's quiescent states breadth-first, every environment event from each."""
    from xbdspec.conformance.harness import ModelSide
    from xbdspec.explore.reference import ANSWERS, DEFAULT_REFERENCE_SIZES

    model = ModelSide(DEFAULT_REFERENCE_SIZES)
    first = model.stepper.initial()
    seen, queue = {first}, deque([first])
    checked = mattered = 0
    while queue and len(seen) < 400:
        state = queue.popleft()
        for event in model.environment_events:
            for params in model.parameters(state, event):
                finals = model.closure(state, event, params, ANSWERS[0])
                if model.answers_matter(state, event, params, ANSWERS[0]):
                    mattered += 1
                else:
                    assert all(model.closure(state, event, params, a) == finals for a in ANSWERS)
                    checked += 1
                for after, _ in finals:
                    if after not in seen:
                        seen.add(after)
                        queue.append(after)
    assert checked and mattered
