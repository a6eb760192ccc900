"""Fuzzing every replay reader: the FreeBSD contract's (:mod:`xbdspec.conformance.replay`),
the explorer's (:mod:`xbdspec.explore.replay`) and the protocol harness's
(:mod:`xbdspec.world.replay`), with valid files mutated (lines deleted, duplicated,
swapped, cut, replaced by hostile lines, values replaced by hostile values) and raw
hostile bytes.

Each reader either reads the file or raises an :class:`~xbdspec.errors.InputError`
whose source names the file (and the line); a replay read is then run, and its run ends
in a verdict or a named error, never another exception; the reader's memory stays
within :data:`MEMORY_BOUND`.  And a replay that cannot be followed to its end is an
error, never a pass (issue 19, item 3): deleting one event of a finding's replay either
still shows a divergence, is refused naming the event, or runs every event it has.
"""

from __future__ import annotations

import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hostile
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xbdspec.cli import main
from xbdspec.conformance import replay as conformance_replay
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import ReplayNotFollowed, run_program
from xbdspec.conformance.reference_adapter import ReferenceImplementation
from xbdspec.errors import InputError, XbdspecError
from xbdspec.explore import replay as explore_replay
from xbdspec.findings.replay import REPLAYS
from xbdspec.world import replay as world_replay
from xbdspec.world.backend import BackendConfig
from xbdspec.world.campaign import START, load_tutorial
from xbdspec.world.harness import run_program as run_world

#: What reading one replay of at most a few MiB may allocate (tracemalloc's peak).
MEMORY_BOUND = 64 << 20
#: Small finding replays (FreeBSD contract, format version 1): the valid files mutated.
FINDINGS = sorted(REPLAYS.glob("*.jsonl"))[:4]
WORK = Path(tempfile.mkdtemp(prefix="xbdspec-fuzz-replays-"))
TUTORIAL = load_tutorial()


def _world_replay() -> bytes:
    program = [
        *START,
        ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 1, "data": "ab" * 256}),
        ("submit", {"id": 2, "op": "read", "sector": 0, "sectors": 1}),
        ("settle", {}),
        ("detach", {}),
    ]
    path = WORK / "world.jsonl"
    world_replay.write(
        path, world_replay.Replay("tutorial", {}, BackendConfig(sectors=64), program)
    )
    return path.read_bytes()


V1_TEXTS = [path.read_bytes() for path in FINDINGS]
WORLD_TEXT = _world_replay()


def _file(data: bytes) -> Path:
    path = WORK / "replay.jsonl"
    path.write_bytes(data)
    return path


def _read_bounded(read: Callable[[Path], Any], path: Path) -> Any:
    """``read(path)``: its value, or the InputError it raised (which must name ``path``);
    its memory's peak within :data:`MEMORY_BOUND`."""
    tracemalloc.start()
    try:
        return read(path)
    except InputError as exc:
        assert exc.source.startswith(str(path)), exc
        return exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MEMORY_BOUND, f"reading took {peak >> 20} MiB"


def _hostile_file(base: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.tuples(st.sampled_from(base), hostile.mutations()).map(lambda t: hostile.mutate(*t)),
        hostile.hostile_lines(),
        st.tuples(st.sampled_from(base), hostile.hostile_lines()).map(
            lambda t: t[0].splitlines()[0] + b"\n" + t[1] + b"\n"
        ),
    )


@hostile.examples(200)
@given(data=_hostile_file(V1_TEXTS))
def test_a_freebsd_replay_is_read_and_run_or_refused_naming_its_line(data: bytes) -> None:
    path = _file(data)
    read = _read_bounded(conformance_replay.read_configuration, path)
    if isinstance(read, InputError):
        return
    configuration, steps = read
    lock = LockStep(ReferenceImplementation(), configuration.sizes)
    try:
        divergence = run_program(lock.impl, lock, steps, source=str(path))
    except ReplayNotFollowed as exc:
        assert str(path) in str(exc) and "cannot be followed" in str(exc)
        return
    except XbdspecError:
        return  # a named error of the implementation under these sizes
    finally:
        lock.impl.close()
    if divergence is None:  # a pass: then every event was applied
        assert len(lock.steps) == len(steps)


@hostile.examples(200)
@given(data=_hostile_file(V1_TEXTS))
def test_an_explorer_replay_is_read_and_replayed_or_refused_naming_its_line(data: bytes) -> None:
    path = _file(data)
    read = _read_bounded(explore_replay.load_replay, path)
    if isinstance(read, InputError):
        return
    try:
        outcome = explore_replay.replay_on_model(read)
    except (InputError, explore_replay.ReplayError) as exc:
        assert str(path) in str(exc), exc
        return
    assert len(outcome.states) == len(read.events) + 1  # followed to its end


@hostile.examples(200)
@given(data=_hostile_file([WORLD_TEXT]))
def test_a_protocol_replay_is_read_and_run_or_refused_naming_its_line(data: bytes) -> None:
    path = _file(data)
    read = _read_bounded(world_replay.read, path)
    if isinstance(read, InputError):
        return
    try:
        world = run_world(TUTORIAL.LinuxStyleFrontend, read.program, read.config)
    except XbdspecError:
        return  # a violation, or a named error of the program
    assert len(world.events) == len(read.program)


def _deletions() -> Iterator[tuple[str, int, bytes]]:
    for path in FINDINGS:
        lines = path.read_bytes().splitlines()
        for index in range(1, len(lines)):
            yield path.stem, index, b"\n".join(lines[:index] + lines[index + 1 :]) + b"\n"


def test_a_finding_replay_missing_a_line_never_passes_silently() -> None:
    """Each event line of each finding's replay deleted in turn: a divergence (the
    seed's behaviour, Fixes() off), an error naming the event that cannot be followed,
    or every event applied.  Before issue 19 the replay stopped at the first event the
    model does not enable, with no divergence: the finding looked fixed."""
    refused = 0
    for name, index, data in _deletions():
        configuration, steps = conformance_replay.loads_configuration(data.decode(), name)
        lock = LockStep(ReferenceImplementation(), configuration.sizes)
        try:
            divergence = run_program(lock.impl, lock, steps, source=f"{name} without line {index}")
        except ReplayNotFollowed:
            refused += 1
            continue
        finally:
            lock.impl.close()
        assert divergence is not None or len(lock.steps) == len(steps), (name, index)
    assert refused > 0  # the error is reached: some deletion leaves an event disabled


def test_difftest_refuses_a_replay_it_cannot_follow(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, data = next((n, i, d) for n, i, d in _deletions() if _not_followed(n, d))
    path = _file(data)
    status = main(
        ["difftest", "--contract", "freebsd", "--impl", "reference", "--replay", str(path)]
    )
    err = capsys.readouterr().err
    assert status == 2, err
    assert str(path) in err and "cannot be followed to its end" in err


def _not_followed(name: str, data: bytes) -> bool:
    configuration, steps = conformance_replay.loads_configuration(data.decode(), name)
    lock = LockStep(ReferenceImplementation(), configuration.sizes)
    try:
        run_program(lock.impl, lock, steps, source=name)
    except ReplayNotFollowed:
        return True
    finally:
        lock.impl.close()
    return False
