"""The fast readings give the direct readings' verdicts, exactly.

Three things are checked fast and could be checked directly; each pair must agree on
everything a report shows (verdicts, lines, messages, allowed steps, final states,
counts), on the scenarios of ``tests/protocol/scenarios`` and on generated and mutated
access logs:

* the protocol checker's step table (:class:`xbdspec.traces.protocol.StepTable`)
  against its direct step (``ProtocolChecker(table=False)``), commit by commit, the
  states held included;
* the access-log checker's configuration table (``ProtocolVbdChecker``) against direct
  checking with each life's own protocol checker holding the whole directories;
* the chunked reading (:meth:`VbdChecker.feed_text`, :class:`~xbdspec.traces.check.Chunks`)
  against reading one line at a time (``VbdChecker._feed_each``, ``bounded_lines``);
* the index of the devices' nodes (removals) against comparing a path with every node.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trace_logs import (
    Log,
    backend_connect,
    backend_initwait,
    backend_state,
    create,
    fe_path,
    frontend_publish,
    frontend_state,
    startup,
    unplug,
)

from xbdspec.errors import InputError
from xbdspec.traces.check import (
    Chunks,
    PartialCheck,
    bounded_lines,
    check_file,
    check_oxenstored,
    default_projection,
)
from xbdspec.traces.protocol import (
    Commit,
    ProtocolChecker,
    check_scenario,
    read_commits,
)
from xbdspec.traces.vbd import VbdChecker
from xbdspec.traces.vbd_protocol import ProtocolVbdChecker

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS = sorted((ROOT / "tests" / "protocol" / "scenarios").glob("*.jsonl"))
DATA = Path(__file__).parent / "data"


# --------------------------------------------------------------------------- the step table


def _held(checker: ProtocolChecker) -> list[tuple[Any, list[str]]]:
    return [(state, sorted(used)) for state, used in checker.states.items()]


def _lockstep(commits: list[Commit]) -> None:
    """The table and the direct step, commit by commit: the same answer, the same
    states held (in the same order), the same report."""
    table, direct = ProtocolChecker(), ProtocolChecker(table=False)
    for commit in commits:
        try:
            expected: bool | str = direct.check(commit)
        except InputError as exc:
            expected = f"InputError: {exc}"
        try:
            got: bool | str = table.check(commit)
        except InputError as exc:
            got = f"InputError: {exc}"
        assert got == expected, commit
        assert _held(table) == _held(direct), commit
        assert table.dirs.front == direct.dirs.front and table.dirs.back == direct.dirs.back
        if expected is not True:
            break
    assert table.finish().as_json() == direct.finish().as_json()


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_table_walk_and_the_direct_step_agree_on_every_scenario(path: Path) -> None:
    with path.open() as handle:
        _, commits = read_commits(handle, str(path))
    for _ in range(2):  # the second time, every commit is a walk in the table
        _lockstep(commits)
    _, walked = check_scenario(str(path))
    _, stepped = check_scenario(str(path), table=False)
    assert walked.as_json() == stepped.as_json()


def _mutated(commits: list[Commit], rng: random.Random) -> list[Commit]:
    """The commits with a few dropped, repeated, swapped or given other state values."""
    out = list(commits)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.25 and len(out) > 1:
            del out[i]
        elif roll < 0.5:
            out.insert(i, out[i])
        elif roll < 0.75 and i + 1 < len(out):
            out[i], out[i + 1] = out[i + 1], out[i]
        else:
            c = out[i]
            writes = dict(c.writes)
            key = rng.choice([*writes, "front/state", "back/state"])
            writes[key] = rng.choice(["1", "2", "3", "4", "5", "6", "9", "x", "03", "\u0662"])
            out[i] = Commit(c.by, writes, c.remove, c.where)
    return out


def test_the_table_walk_and_the_direct_step_agree_on_mutated_scenarios() -> None:
    rng = random.Random(15)
    every = []
    for path in SCENARIOS:
        with path.open() as handle:
            every.append(read_commits(handle, str(path))[1])
    for _ in range(300):
        _lockstep(_mutated(rng.choice(every), rng))


def test_a_write_key_must_name_a_key() -> None:
    """``{"front": "3"}`` is refused by name (it was an internal error)."""
    with pytest.raises(InputError, match="names a key under front/ or back/"):
        read_commits(['{"frontend": "x"}', '{"by": "frontend", "writes": {"front": "3"}}'], "t")


# --------------------------------------------------------------------------- access logs


def _result(run: Callable[[], Any]) -> dict[str, Any]:
    """A check's JSON document (its time left out), or the error that stopped it with
    the verdicts reached before."""
    try:
        found: dict[str, Any] = run().as_json()
        stopped = None
    except PartialCheck as exc:
        found = exc.result.as_json()
        stopped = str(exc)
    except InputError as exc:
        return {"error": str(exc)}
    found.pop("seconds")
    found["error"] = stopped
    return found


def _direct(lines: list[str], nb_chars: int, frontend: str) -> Any:
    """The reference reading: one line at a time, every commit by the protocol
    checker's own steps with the whole directories (as ``check_oxenstored`` does)."""
    checker: VbdChecker
    if frontend == "freebsd":
        checker = VbdChecker(default_projection(), "t.log", nb_chars)
    else:
        checker = ProtocolVbdChecker("t.log", nb_chars, table=False)
    try:
        checker._feed_each(lines)
    except InputError as exc:
        partial = checker.finish()
        partial.stopped_at = exc.source
        line = exc.source.rsplit(":", 1)[-1]
        partial.events = int(line) - 1 if line.isdigit() else partial.events
        raise PartialCheck(exc, partial) from None
    return checker.finish()


def _agree(lines: list[str], nb_chars: int, tmp_path: Path | None = None) -> None:
    with_newlines = [line + "\n" for line in lines]
    for frontend in ("any", "freebsd"):
        expected = _result(functools.partial(_direct, lines, nb_chars, frontend))
        for given in (lines, with_newlines):
            fast = _result(
                functools.partial(check_oxenstored, given, "t.log", nb_chars, frontend=frontend)
            )
            assert fast == expected, (frontend, "\n".join(lines))
        if tmp_path is None:
            continue
        path = tmp_path / "t.log"
        path.write_text("".join(with_newlines))
        read = _result(
            functools.partial(check_file, str(path), nb_chars=nb_chars, frontend=frontend)
        )
        text = json.dumps(read).replace(json.dumps(str(path))[1:-1], "t.log")
        assert json.loads(text) == expected, frontend


def _device_log(rng: random.Random, guest: int, devid: int, nb_chars: int) -> Log:
    """One device's life (or two), as the parties write them, sometimes partial."""
    log = Log(nb_chars=nb_chars)
    for _ in range(rng.randint(1, 2)):
        roll = rng.random()
        if roll < 0.5:
            startup(log, guest, devid, order=rng.choice([0, 1, 2]))
        else:
            create(log, guest, devid)
            backend_initwait(log, guest, devid, order=rng.choice([0, 2, 4]))
            if rng.random() < 0.8:
                frontend_publish(
                    log,
                    guest,
                    devid,
                    order=rng.choice([0, 2]),
                    transaction=rng.random() < 0.7,
                    skip_ref=rng.choice([None, None, 1]),
                )
            frontend_state(log, guest, devid, rng.choice([3, 3, 4]))
            if rng.random() < 0.8:
                backend_connect(log, guest, devid)
            frontend_state(log, guest, devid, 4)
        if rng.random() < 0.7:
            unplug(log, guest, devid, closing=rng.random() < 0.5)
        elif rng.random() < 0.3:
            backend_state(log, guest, devid, 5)
            log.rm("A3", f"/local/domain/{guest}")
    return log


def _mutate(lines: list[str], rng: random.Random) -> list[str]:
    out = list(lines)
    for _ in range(rng.randint(0, 6)):
        if not out:
            break
        i = rng.randrange(len(out))
        line = out[i]
        head, _, tail = line.partition("]")
        conn = tail.split()[0] if tail.split() else "D0"
        date = head + "]"
        roll = rng.random()
        if roll < 0.1:
            del out[i]
        elif roll < 0.2:
            out.insert(i, line)
        elif roll < 0.3 and i + 1 < len(out):
            out[i], out[i + 1] = out[i + 1], out[i]
        elif roll < 0.38:  # a cut line (or one that only looks cut)
            cut = rng.randrange(30, max(31, len(line)))
            out[i] = line[:cut] + ".."
        elif roll < 0.46:  # xenstored refuses it
            out.insert(i + 1, f"{date}  {conn:<12} error     EACCES ")
        elif roll < 0.52:
            out[i] = line.replace(" commit    ", " conflict  ")
        elif roll < 0.58:
            out.insert(i + 1, f"{date}  {conn:<12} endconn   ")
        elif roll < 0.64:
            out[i] = line.replace("backend/vbd/", rng.choice(["backend/qdisk/", "backend/vbd3/"]))
        elif roll < 0.7:
            where = rng.choice(["/local/domain/0/backend", "/local/domain/0", "/local", "/"])
            out.insert(i, f"{date}  A3           rm        {where} ")
        elif roll < 0.76:
            out[i] = line.replace(" state ", " state " + rng.choice(["9", "x", "0", "\\"]))
        elif roll < 0.8:
            out.insert(i, "")
        elif roll < 0.82:
            out.insert(i, "not an access-log line")
        elif roll < 0.86:
            out[i] = line.replace(" write ", " coalesce  write ", 1)
        elif roll < 0.9:
            out[i] = line.replace("device/vbd/", "device/vbd/0", 1)
        elif roll < 0.94:
            out[i] = line.rstrip() + "\\n\\t\\\\"
        else:
            out.insert(i, f"{date}  A9           rm        /local/domain/1/data/x ")
    return out


def _random_log(rng: random.Random) -> tuple[list[str], int]:
    nb_chars = rng.choice([180, 180, 0, 100])
    logs = [
        _device_log(rng, guest, rng.choice([768, 51712, 832]), nb_chars)
        for guest in rng.sample(range(1, 30), rng.randint(1, 4))
    ]
    streams = [list(log.lines) for log in logs]
    merged: list[str] = []
    while any(streams):
        stream = rng.choice([s for s in streams if s])
        merged.append(stream.pop(0))
        if rng.random() < 0.1:
            noise = Log(nb_chars=nb_chars)
            noise.noise(rng.randint(1, 30))
            merged += noise.lines
    return _mutate(merged, rng), nb_chars


def test_every_fixture_log_is_checked_alike_both_ways(tmp_path: Path) -> None:
    for path in sorted(DATA.glob("*.log")):
        lines = path.read_text().splitlines()
        for nb_chars in (180, 0, 120):
            _agree(lines, nb_chars, tmp_path)


def test_generated_logs_are_checked_alike_both_ways(tmp_path: Path) -> None:
    rng = random.Random(2026)
    for n in range(250):
        lines, nb_chars = _random_log(rng)
        _agree(lines, nb_chars, tmp_path if n % 10 == 0 else None)


def test_a_long_log_is_mostly_table_walks_and_agrees() -> None:
    """Forty lives of sixteen devices: after the first lives, commits are look-ups."""
    log = Log()
    for cycle in range(40):
        for guest in range(1, 17):
            startup(log, guest, 51712, order=cycle % 3)
            unplug(log, guest, 51712, closing=cycle % 2 == 0)
    checker = ProtocolVbdChecker("t.log", 180)
    checker.feed_lines(log.lines)
    walked = checker.finish().as_json()
    assert checker._edge_count < 200  # the handshake's transitions, whatever the length
    expected = _result(lambda: _direct(log.lines, 180, "any"))
    walked.pop("seconds")
    walked["error"] = None
    assert walked == expected
    assert {d["verdict"] for d in walked["devices"]} == {"conforms"}


def test_the_tables_start_afresh_when_full_and_still_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ProtocolVbdChecker, "MAX_CONFIGS", 5)
    monkeypatch.setattr(ProtocolVbdChecker, "MAX_EDGES", 7)
    rng = random.Random(7)
    for _ in range(40):
        lines, nb_chars = _random_log(rng)
        expected = _result(functools.partial(_direct, lines, nb_chars, "any"))
        assert _result(functools.partial(check_oxenstored, lines, "t.log", nb_chars)) == expected


def test_the_step_table_starts_afresh_when_full_and_still_agrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xbdspec.traces import protocol

    table = protocol.step_table(protocol.DEFAULT_SIZES)
    monkeypatch.setattr(table, "MAX_NODES", len(table.states) + 3)
    monkeypatch.setattr(table, "MAX_EDGES", len(table.edges) + 5)
    for path in SCENARIOS[:6]:
        with path.open() as handle:
            _, commits = read_commits(handle, str(path))
        _lockstep(commits)


# --------------------------------------------------------------------------- removals


def _brute_force(checker: VbdChecker, path: str) -> list[tuple[Any, str, str | None]]:
    """Every device node compared with ``path``, as the checker did before its index."""
    found: list[tuple[Any, str, str | None]] = []
    for key, device in checker.devices.items():
        for side, node in zip(("front", "back"), checker._device_nodes(device), strict=True):
            if node is None:
                continue
            if node == path or node.startswith(path + "/"):
                found.append((key, side, None))
            elif path.startswith(node + "/"):
                found.append((key, side, path[len(node) + 1 :]))
    return found


@pytest.mark.parametrize("frontend", ["any", "freebsd"])
def test_the_node_index_finds_what_comparing_every_node_finds(frontend: str) -> None:
    rng = random.Random(3)
    log = Log()
    for guest in range(1, 12):
        startup(log, guest, rng.choice([768, 51712]))
    log.write("D0", "backend/qdisk/3/768/state", "2")
    log.write("D4", "backend/vbd/9/5632/state", "1")  # a back end in another domain
    checker: VbdChecker = (
        ProtocolVbdChecker("t.log", 180)
        if frontend == "any"
        else VbdChecker(default_projection(), "t.log", 180)
    )
    checker.feed_lines(log.lines)
    nodes = [n for d in checker.devices.values() for n in checker._device_nodes(d) if n]
    probes = ["", "/local", "/local/domain", "/local/domain/0", "/local/domain/0/backend"]
    for node in nodes:
        parts = node.split("/")
        probes += ["/".join(parts[:i]) for i in range(len(parts) + 1)]
        probes += [node + "/state", node + "/queue-0/ring-ref", node + "x", node[:-1]]
    for probe in probes:
        assert checker._touched_by(probe) == _brute_force(checker, probe), probe
        below = [
            k
            for k, d in checker.devices.items()
            if any(n and n.startswith(probe + "/") for n in checker._device_nodes(d))
        ]
        assert checker._device_under(probe) == (below[0] if below else None), probe


def test_removals_cost_the_same_with_many_devices() -> None:
    """A removal is a few look-ups: 2,000 devices' lives, each ending with its two rm
    lines and its domain's destruction; each removal finds the nodes it touches without
    looking at the other devices (the issue's quadratic ``rm`` compared every device
    ever seen).  Counted, not timed (``benchmarks/bench_traces.py`` times it)."""
    log = Log()
    for guest in range(1, 2001):
        create(log, guest, 768)
        log.rm("A12", f"/local/domain/0/backend/vbd/{guest}/768")
        log.rm("A12", fe_path(guest, 768))
        log.rm("A3", f"/local/domain/{guest}")
    checker = ProtocolVbdChecker("t.log", 180)
    calls = 0
    original = checker._touched_by

    def counted(path: str) -> list[tuple[Any, str, str | None]]:
        nonlocal calls
        calls += 1
        found = original(path)
        assert len(found) <= 2, path  # never every device
        return found

    checker._touched_by = counted  # type: ignore[method-assign]
    checker.feed_lines(log.lines)
    assert calls == 3 * 2000
    assert all(d.report.lifecycles == 1 for d in checker.devices.values())


# --------------------------------------------------------------------------- chunked reading


def _chunked(text: str, limit: int, size: int) -> tuple[list[str], bool, str | None]:
    import io

    chunks = Chunks(io.StringIO(text, newline="\n"), "t", limit=limit)
    chunks.CHUNK = size
    out: list[str] = []
    try:
        out.extend(chunks)
    except InputError as exc:
        return out, chunks.truncated, str(exc)
    return out, chunks.truncated, None


def _bounded(text: str, limit: int) -> tuple[list[str], bool, str | None]:
    import io

    out: list[str] = []
    try:
        for line in bounded_lines(io.StringIO(text, newline="\n"), "t", limit):
            out.append(line)
    except InputError as exc:
        return out, False, str(exc)
    return out, bool(out) and not out[-1].endswith("\n"), None


@pytest.mark.parametrize("seed", range(40))
def test_chunks_split_and_refuse_lines_as_bounded_lines_does(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([8, 16, 40])
    lines = ["x" * rng.choice([0, 1, limit - 1, limit, limit + 1, 3]) for _ in range(30)]
    text = "\n".join(lines) + rng.choice(["", "\n", "tail"])
    size = rng.choice([3, 7, limit // 2])
    got_lines, got_truncated, got_error = _chunked(text, limit, size)
    want_lines, want_truncated, want_error = _bounded(text, limit)
    assert got_error == want_error
    if want_error is None:
        assert "".join(got_lines) == "".join(want_lines)
        assert got_truncated == want_truncated
    else:
        # the chunks stop no later than the line refused
        assert "".join(want_lines).startswith("".join(got_lines))


# --------------------------------------------------------------------------- ring steps

#: A harness's protocol trace: the handshake of one single-queue device (the world
#: harness's own first lines), then ring steps.
_HANDSHAKE: list[dict[str, Any]] = [
    {
        "by": "toolstack",
        "writes": {
            "back/frontend": "/local/domain/5/device/vbd/768",
            "back/online": "1",
            "back/state": "1",
            "front/backend": "/local/domain/0/backend/vbd/5/768",
            "front/state": "1",
        },
    },
    {"by": "backend", "writes": {"back/max-ring-page-order": "0"}},
    {"by": "backend", "writes": {"back/state": "2"}},
    {"by": "frontend", "writes": {"front/ring-ref": "8", "front/event-channel": "17"}},
    {"by": "frontend", "writes": {"front/state": "3"}},
    {
        "by": "backend",
        "writes": {
            "back/feature-flush-cache": "1",
            "back/sectors": "64",
            "back/info": "0",
            "back/sector-size": "512",
        },
    },
    {"by": "backend", "writes": {"back/state": "4"}},
    {"by": "frontend", "writes": {"front/state": "4"}},
]


def _line(by: str, steps: list[list[Any]], what: str = "") -> dict[str, Any]:
    return {"by": by, "queue": 0, "steps": steps, "what": what or steps[0][0]}


def ring_cycles(rng: random.Random, cycles: int, ids: int = 8) -> list[dict[str, Any]]:
    """Batches of I/O as a front end and a back end do them: requests written with the
    lowest free ids and pushed (the first push notifies), the back end woken, taking
    them, answering in any order and pushing the answers with a notification, its
    final check, the front end taking every answer and re-arming."""
    out: list[dict[str, Any]] = []
    for _ in range(cycles):
        batch = list(range(rng.randint(1, ids)))
        for n, i in enumerate(batch):
            op = rng.choice(["READ", "WRITE", "FLUSH_DISKCACHE"])
            write = {"id": i, "op": op, "push": False, "notify": False}
            out.append(
                _line(
                    "frontend",
                    [
                        ["frontend_write_request", write],
                        ["frontend_push_requests", {"notify": n == 0}],
                    ],
                )
            )
        out.append(_line("backend", [["backend_wake", {}]]))
        for i in batch:
            out.append(_line("backend", [["backend_consume", {"id": i}]]))
        for i in rng.sample(batch, len(batch)):
            out.append(
                _line("backend", [["backend_respond", {"id": i, "push": False, "notify": False}]])
            )
        out.append(_line("backend", [["backend_push_responses", {"notify": True}]]))
        out.append(_line("backend", [["backend_final_check", {}]]))
        take = [i in batch for i in range(ids)]
        service = {"take": take, "end_grants": False, "rearm": True}
        out.append(_line("frontend", [["frontend_service_ring", service]]))
    return out


def _ring_trace(rng: random.Random, ring_base: int, cycles: int) -> list[str]:
    sizes = {"ids": 8, "ring_slots": 8, "max_order": 1, "max_queues": 1, "ring_base": ring_base}
    header = {"xbdspec_trace": 2, "kind": "protocol", "sizes": sizes}
    body = _HANDSHAKE + ring_cycles(rng, cycles)
    for _ in range(rng.randint(0, 2)):  # a step out of place now and then: a violation
        i = rng.randrange(len(_HANDSHAKE), len(body))
        body.insert(rng.randrange(len(_HANDSHAKE), len(body)), body[i])
    return [json.dumps(obj) + "\n" for obj in [header, *body]]


@pytest.mark.parametrize("ring_base", [0, 0xFFFF_FFFD, 12345])
def test_the_ring_table_and_the_direct_steps_agree(ring_base: int) -> None:
    """Ring steps from the table's sets (the indices moved to where they start) and the
    model's own steps: the same verdicts, messages, states and steps, also when the
    indices wrap around 2**32."""
    import io

    from xbdspec.traces.protocol import _check_stream

    rng = random.Random(ring_base)
    for _ in range(30):
        lines = _ring_trace(rng, ring_base, rng.randint(1, 12))
        _, walked = _check_stream(io.StringIO("".join(lines)), "t")
        _, stepped = _check_stream(io.StringIO("".join(lines)), "t", table=False)
        assert walked.as_json() == stepped.as_json()


def test_ring_steps_do_not_depend_on_where_the_indices_start() -> None:
    """What the table's ring sets rest on: each ring step, from a state and from the
    same state with every index moved by the same amount (modulo 2**32), is allowed
    alike, refused for the same reasons, and leads to states that differ by that
    amount."""
    from xbdspec.model.protocol import ProtocolSizes

    from xbdspec.traces.protocol import RING_STEPS, _step_params, step_table

    sizes = ProtocolSizes(ids=4, ring_slots=4, max_order=1, max_queues=1, ring_base=7)
    table = step_table(sizes)
    rng = random.Random(5)
    checker = ProtocolChecker(sizes, table=False)
    for obj in _HANDSHAKE:
        assert checker.check(Commit(str(obj["by"]), dict(obj["writes"]), (), "h"))
    states = []
    for obj in ring_cycles(rng, 40, ids=4):
        steps = [(name, _step_params(params, "t")) for name, params in obj["steps"]]
        assert checker.take(steps, "t", "w"), checker.report.violation
        states.append(next(iter(checker.states)))
    for state in rng.sample(states, 30):
        for name in sorted(RING_STEPS):
            t = table.transitions[name]
            combos = list(itertools.product(*(p.domain_for(sizes) for p in t.params)))
            for combo in rng.sample(combos, min(5, len(combos))):
                params = {p.name: v for p, v in zip(t.params, combo, strict=True)}
                delta = rng.choice([1, 3, 0xFFFF_FFFF, rng.getrandbits(32)])
                here = ProtocolChecker(sizes, table=False)
                there = ProtocolChecker(sizes, table=False)
                here.states = {state: frozenset()}
                there.states = {table._moved(state, delta): frozenset()}
                allowed = here.take([(name, params)], "t", "w")
                assert there.take([(name, params)], "t", "w") == allowed
                assert here.report.violation == there.report.violation
                if allowed:
                    (after,) = here.states
                    assert there.states == {table._moved(after, delta): frozenset()}


def test_the_reading_caches_start_afresh_when_full_and_still_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xbdspec.traces import vbd

    monkeypatch.setattr(vbd, "_CACHE_LIMIT", 16)
    monkeypatch.setattr(vbd, "_WRITES", 3)
    monkeypatch.setattr(vbd, "_CACHED_KEY", 60)
    rng = random.Random(11)
    for _ in range(40):
        lines, nb_chars = _random_log(rng)
        expected = _result(functools.partial(_direct, lines, nb_chars, "any"))
        assert _result(functools.partial(check_oxenstored, lines, "t.log", nb_chars)) == expected


def test_long_keys_are_not_remembered() -> None:
    """A path or a data field longer than 512 characters is parsed every time, so the
    caches' memory is bounded whatever the lines' lengths (``--nb-chars 0``)."""
    log = Log(nb_chars=0)
    startup(log, 5, 768)
    long = "x" * 5000
    for i in range(20):
        log.write("D5", f"device/vbd/768/{long}{i}", "1")
        log.write("D5", "device/vbd/768/device-type", long + str(i))
    checker = ProtocolVbdChecker("t.log", 0)
    checker.feed_lines(log.lines)
    assert all(len(k) <= 512 for k in checker._paths)
    assert all(len(k) <= 512 for held in checker._writes.values() for k in held)
    assert {d.verdict for d in checker.finish().devices} == {"conforms"}


def test_the_fast_line_pattern_splits_every_line_as_the_line_pattern_does() -> None:
    """The chunked reading's pattern (ASCII digits, possessive repeats) takes every
    line :data:`LINE` takes whose date has ASCII digits, with the same fields, and
    no other; any other line is left to the per-line code."""
    from xbdspec.traces.oxenstored import LINE
    from xbdspec.traces.vbd import _CHUNK_LINE

    rng = random.Random(17)
    lines = [line for p in sorted(DATA.glob("*.log")) for line in p.read_text().splitlines()]
    for _ in range(60):
        lines += _random_log(rng)[0]
    lines += [
        "[2026112\u0663T03:00:00.000Z]  D5           write     device/vbd/768/state 1",
        "[20261126 03:00:00.000]  D5.3  w event   a b",
        "[20261126T03:00:00.000Z]  r(2):D5.3    write     device/vbd/768/state  3",
        "[20261126T03:00:00.000Z]   D5 \tread x",
    ]
    lines.append("[20261126T03:00:00.000Z]  D5           write     device/vbd/768/x caf\u00e9")
    for line in lines:
        m = LINE.match(line)
        ((conn, op, data),) = _CHUNK_LINE.findall(line + "\n")
        if m is None or m.end() != len(line):
            assert (conn, op, data) == ("", "", ""), line
        elif (conn, op, data) != m.groups():
            assert (conn, op, data) == ("", "", ""), line
            assert any(c.isdigit() and not c.isascii() for c in line), line
