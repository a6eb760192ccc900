"""Fuzzing the stdio protocols: what a child sends (version 2,
:mod:`xbdspec.world.stdio`; version 1, :mod:`xbdspec.conformance.subprocess_impl` and
:mod:`xbdspec.conformance.protocol`) and how a child behaves.

In process: any line is a checked message or a :class:`MalformedMessage` (v1: an
:class:`InputError` naming the child); any environment request the schema lets through is
served or refused with a protocol error, and the world goes on to a verdict.  With real
children (``children/hostile_child.py``): a hostile line, a hang, grandchildren, a flood
without newline, an exit mid-message, a garbage hello; each is a named failure of the
call (or a refusal of the child), the harness's memory stays within
:data:`MEMORY_BOUND`, and no process of the child's group is left once it is closed.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import hostile
import pytest
from hypothesis import given
from hypothesis import strategies as st
from xbdspec.model.spec import build_spec
from xbdspec.model.state import Sizes

from xbdspec.conformance import protocol
from xbdspec.conformance.contract import ImplementationError
from xbdspec.conformance.subprocess_impl import SubprocessImplementation
from xbdspec.errors import InputError, XbdspecError
from xbdspec.world import stdio
from xbdspec.world.backend import BackendConfig
from xbdspec.world.campaign import START
from xbdspec.world.grants import GrantError
from xbdspec.world.harness import BACK, FRONT, Bio, FrontendEnv, ImplementationFailure, World
from xbdspec.world.stdio import ImplementationRefused, MalformedMessage, StdioImplementation
from xbdspec.world.xenstore import XenstoreError

CHILD = Path(__file__).resolve().parent / "children" / "hostile_child.py"
PROGRAM = [*START, ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 1}), ("settle", {})]
#: What the harness may allocate while one hostile child runs (tracemalloc's peak): the
#: child's line is bounded by stdio.MAX_LINE (1 MiB).
MEMORY_BOUND = 16 << 20
_payloads = itertools.count()


def _payload_file(tmp: Path, payload: bytes) -> Path:
    path = tmp / f"payload-{next(_payloads)}"
    path.write_bytes(payload)
    return path


def _argv(mode: str, payload: Path | None, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-I",
        "-S",
        str(CHILD),
        *extra,
        mode,
        *([str(payload)] if payload else []),
    ]


def _no_survivors(pgids: list[int]) -> None:
    """Every process of these groups is dead (killed processes take a moment to go)."""
    deadline = time.monotonic() + 5
    left = [p for g in pgids for p in hostile.survivors(g)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for g in pgids for p in hostile.survivors(g)]
    assert not left, f"processes outlived their child: {left}"


def _run_v2(argv: list[str], timeout: float = 0.5) -> XbdspecError:
    """Run :data:`PROGRAM` against the child; the failure (or refusal) it ends in, with
    the harness's memory bounded and the child's group gone after it."""
    impl = StdioImplementation(argv, timeout=timeout, start_timeout=10)
    tracemalloc.start()
    try:
        from xbdspec.world.harness import run_program

        run_program(impl.maker(), PROGRAM, BackendConfig(sectors=64))
    except (ImplementationFailure, ImplementationRefused) as exc:
        return exc
    else:
        raise AssertionError("the hostile child ran the program to its end")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        impl.close()
        _no_survivors(impl.started)
        assert peak < MEMORY_BOUND, f"the harness took {peak >> 20} MiB"


# ---------------------------------------------------------------------------- in process
def _valid_child_lines() -> list[bytes]:
    return [
        b'{"type": "hello", "protocol": 2, "name": "x", "calls": ["otherend_changed", '
        b'"interrupt", "submit"], "ops": ["read", "write"]}',
        b'{"type": "done"}',
        b'{"type": "done", "ok": false, "error": "no slot"}',
        b'{"type": "log", "text": "hello"}',
        f'{{"type": "env", "op": "write", "path": "{FRONT}/state", "value": "3"}}'.encode(),
        b'{"type": "env", "op": "grant", "page": 0, "readonly": false}',
        b'{"type": "env", "op": "complete", "bio": 1, "ok": true, "data": "00ff"}',
    ]


@hostile.examples(200)
@given(
    line=st.one_of(
        hostile.hostile_lines(),
        st.tuples(st.sampled_from(_valid_child_lines()), hostile.mutations()).map(
            lambda t: hostile.mutate(*t).rstrip(b"\n")
        ),
    )
)
def test_any_line_of_a_v2_child_is_a_checked_message_or_malformed(line: bytes) -> None:
    impl = StdioImplementation("true")  # never started: only its parser is used
    try:
        message = impl._parse(line)
    except MalformedMessage as exc:
        assert exc.reason and "\n" not in exc.reason
        return
    assert isinstance(message, dict) and message["type"] in ("hello", "done", "env", "log")


class _Passive:
    """A front end that does nothing itself: the fuzzed requests are its only acts."""

    def __init__(self, env: FrontendEnv) -> None:
        self.env = env

    def otherend_changed(self) -> None: ...

    def interrupt(self) -> None: ...

    def submit(self, bio: Bio) -> None: ...

    def shutdown(self) -> None: ...


KEYS = [
    "state",
    "ring-ref",
    "ring-ref0",
    "event-channel",
    "protocol",
    "ring-page-order",
    "multi-queue-num-queues",
    "queue-0/ring-ref",
    "feature-persistent",
    "sectors",
    "",
]
HOSTILE_TEXT = st.one_of(
    st.sampled_from(
        [
            "3",
            "4",
            "6",
            "abc",
            "-1",
            "4294967296",
            "9" * 5000,
            "",
            "\x00",
            " 3",
            "0x10",
            "\u00b2",
            "\u0663",
            "1e3",
            "x" * 70_000,
        ]
    ),
    st.text(max_size=12),
)
#: The nodes either end reads (the child's writes go there first and foremost).
KNOWN_PATHS = st.sampled_from([FRONT, BACK]).flatmap(
    lambda d: st.sampled_from(KEYS).map(lambda k: f"{d}/{k}")
)
PATHS = st.one_of(KNOWN_PATHS, st.text(max_size=20))
NUMBERS = st.one_of(st.integers(-2, 40), st.sampled_from([2**32, 2**63, 2**64 - 1, 10**30]))


def _requests() -> st.SearchStrategy[dict[str, Any]]:
    def env(op: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({"type": st.just("env"), "op": st.just(op), **fields})

    return st.one_of(
        env("read", path=PATHS),
        env("write", path=KNOWN_PATHS, value=HOSTILE_TEXT),
        env("write", path=KNOWN_PATHS, value=HOSTILE_TEXT),
        env("write", path=KNOWN_PATHS, value=HOSTILE_TEXT),
        env("write", path=PATHS, value=HOSTILE_TEXT, tid=NUMBERS),
        env("remove", path=PATHS),
        env("transaction_start"),
        env("transaction_end", tid=NUMBERS, abort=st.booleans()),
        env("alloc_page"),
        env("free_page", page=NUMBERS),
        env("grant", page=NUMBERS, readonly=st.booleans()),
        env("grant_ref", ref=NUMBERS, page=NUMBERS, readonly=st.booleans()),
        env("grant_mapped", ref=NUMBERS),
        env("end_grant", ref=NUMBERS),
        env("alloc_evtchn"),
        env("notify", port=NUMBERS),
        env(
            "complete",
            bio=NUMBERS,
            ok=st.booleans(),
            data=st.sampled_from(["", "00", "0", "zz", "ab" * 600]),
        ),
    )


@hostile.examples(200)
@given(requests=st.lists(_requests(), min_size=1, max_size=8))
def test_any_env_request_is_served_or_refused_and_the_world_goes_on(
    requests: list[dict[str, Any]],
) -> None:
    """What a child may ask of the world (whatever the schema lets through: its paths,
    values, page and grant numbers are the child's) is done or refused with a protocol
    error; then the back end and the harness, reading what the child wrote, reach a
    verdict or a named error -- never a Python exception of theirs."""
    world = World(_Passive, BackendConfig(sectors=64))
    impl = StdioImplementation("true", pages=8)
    impl._open()
    impl._reset_memory()
    env = world.frontend.env  # type: ignore[attr-defined]
    try:
        for event in ("attach", "backend_probe"):
            world.run(event, {})
        for request in requests:
            try:
                stdio.check_message(request, "child")
            except MalformedMessage:
                continue
            # refused (a protocol error), or an error that ends the call: the protocol
            # checker refusing what was written (in a real call, a violation of it)
            with contextlib.suppress(stdio._Refused, XenstoreError, GrantError, XbdspecError):
                impl._serve(env, request)
        for event in ("deliver_back_watch", "serve", "deliver_back_watch", "settle"):
            world.run(event, {})
    except XbdspecError:
        pass  # a violation, or a named error: both say what and where
    finally:
        impl.close()


def _valid_v1() -> list[bytes]:
    return [
        b'{"id": 1, "ok": true, "name": "x", "start": "initial", "events": ["open"], '
        b'"features": {"barrier": true, "flush": false}}',
        b'{"id": 1, "ok": true, "observation": {"fields": {"fe_state": "Initialising", '
        b'"drv_users": 0}, "fault": null, "complete": false}}',
        b'{"id": 1, "ok": false, "error": "no"}',
    ]


@hostile.examples(200)
@given(
    line=st.one_of(
        hostile.hostile_lines(),
        st.tuples(st.sampled_from(_valid_v1()), hostile.mutations()).map(
            lambda t: hostile.mutate(*t).rstrip(b"\n")
        ),
    ),
    op=st.sampled_from(["hello", "reset", "apply", "observe"]),
)
def test_any_line_of_a_v1_child_is_a_checked_response_or_an_error_naming_it(
    line: bytes, op: str
) -> None:
    source = "implementation process 'fuzz', message 1"
    spec = build_spec(Sizes())
    try:
        obj = protocol.parse_line(line, source)
        protocol.check_response(obj, 1, source, op)
        if op == "hello":
            protocol.capabilities(obj, source, frozenset(spec.events()))
        else:
            protocol.observation(obj, source, spec)
    except InputError as exc:
        assert exc.source.startswith(source), exc


# ---------------------------------------------------------------------------- children
@hostile.few(20)
@given(payload=hostile.hostile_lines())
def test_a_child_answering_any_hostile_line_is_a_named_failure_of_its_call(
    tmp_path_factory: pytest.TempPathFactory, payload: bytes
) -> None:
    tmp = tmp_path_factory.mktemp("payload", numbered=True)
    failure = _run_v2(_argv("payload", _payload_file(tmp, payload)))
    assert isinstance(failure, ImplementationFailure), failure
    assert failure.kind in ("malformed", "hang", "failed", "crash"), failure
    assert "call" in failure.rule or "reset" in failure.rule


#: mode, payload -> the failure's kind (None: the child is refused) and what it says
BEHAVIOURS: dict[str, tuple[str, bytes, str | None, str]] = {
    "deep JSON": ("payload", hostile.DEEP, "malformed", "nested too deeply"),
    "an integer of 5000 digits": ("payload", hostile.HUGE_INT, "malformed", "4300 digits"),
    "invalid UTF-8": ("payload", hostile.BAD_UTF8, "malformed", "not UTF-8 text"),
    "NaN": (
        "payload",
        b'{"type": "env", "op": "notify", "port": NaN}',
        "malformed",
        "no finite number",
    ),
    "a hang": ("hang", b"", "hang", "no message within 0.5 s"),
    "grandchildren, then a hang": ("spawn", b"", "hang", "no message within 0.5 s"),
    "a flood without newline": ("flood", b"", "malformed", "a line longer than 1 MiB"),
    "an exit mid-message": ("exit", b"", "crash", "exit status 7"),
    "garbage for its hello": ("hello", b"\x00garbage", None, "its hello is malformed"),
    "deep JSON for its hello": ("hello", hostile.DEEP, None, "nested too deeply"),
}


@pytest.mark.parametrize("name", sorted(BEHAVIOURS))
def test_a_hostile_v2_child_is_a_named_failure_and_leaves_nothing_running(
    tmp_path: Path, name: str
) -> None:
    mode, payload, kind, says = BEHAVIOURS[name]
    timeout = 0.5 if kind == "hang" else 5.0  # short only where it is waited for
    failure = _run_v2(_argv(mode, _payload_file(tmp_path, payload)), timeout)
    if kind is None:
        assert isinstance(failure, ImplementationRefused) and says in str(failure), failure
    else:
        assert isinstance(failure, ImplementationFailure), failure
        assert failure.kind == kind and says in failure.rule + str(failure), failure


V1_BEHAVIOURS: dict[str, tuple[str, bytes, str]] = {
    "deep JSON": ("payload", hostile.DEEP, "nested too deeply"),
    "an integer of 5000 digits": ("payload", hostile.HUGE_INT, "4300 digits"),
    "invalid UTF-8": ("payload", hostile.BAD_UTF8, "not UTF-8"),
    "a hang": ("hang", b"", "no response within 0.5 s"),
    "grandchildren, then a hang": ("spawn", b"", "no response within 0.5 s"),
    "a flood without newline": ("flood", b"", "response longer than"),
    "an exit mid-message": ("exit", b"", "closed its output"),
}


@pytest.mark.parametrize("name", sorted(V1_BEHAVIOURS))
def test_a_hostile_v1_child_is_a_named_error_and_leaves_nothing_running(
    tmp_path: Path, name: str
) -> None:
    mode, payload, says = V1_BEHAVIOURS[name]
    timeout = 0.5 if mode in ("hang", "spawn") else 5.0
    impl = SubprocessImplementation(
        _argv(mode, _payload_file(tmp_path, payload), "--v1"), timeout=timeout
    )
    impl.capabilities()
    assert impl.proc is not None
    pgid = impl.proc.pid
    tracemalloc.start()
    try:
        with pytest.raises(ImplementationError) as caught:
            impl.reset(Sizes())
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        impl.close()
    assert says in str(caught.value) and "implementation process" in str(caught.value)
    assert peak < MEMORY_BOUND, f"the harness took {peak >> 20} MiB"
    _no_survivors([pgid])


def test_the_behaviours_cover_each_named_in_the_issue() -> None:
    """Hang, grandchildren, garbage, deep JSON, huge integers, invalid UTF-8 (issue 19)."""
    named: Mapping[str, Callable[[str], bool]] = {
        "hang": lambda n: "hang" in n,
        "grandchildren": lambda n: "grandchildren" in n,
        "garbage": lambda n: "garbage" in n,
        "deep JSON": lambda n: "deep JSON" in n,
        "huge integers": lambda n: "5000 digits" in n,
        "invalid UTF-8": lambda n: "UTF-8" in n,
    }
    for what, matches in named.items():
        assert any(matches(n) for n in BEHAVIOURS), what
