"""The stdio protocol version 2: a front end in a child process is tested as an
in-process one is.

The tutorial served over stdio (``examples/stdio_frontend.py``) gives the same campaign
results as the tutorial in-process, and each broken variant is caught with the same
short replay.  A child that crashes, hangs, sends a malformed message or says its call
failed is a divergence of the event (an :class:`ImplementationFailure`), shrunk and
replayable; a child whose hello is not acceptable is refused.  No child process
outlives its test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from xbdspec.world import stdio
from xbdspec.world.campaign import Shape, campaign, load_tutorial
from xbdspec.world.harness import ImplementationFailure, Violation, run_program, shrink
from xbdspec.world.stdio import (
    ImplementationRefused,
    MalformedMessage,
    StdioImplementation,
    check_message,
)

ROOT = Path(__file__).resolve().parents[2]
CHILDREN = Path(__file__).resolve().parent / "children"
EXAMPLE = ROOT / "examples" / "stdio_frontend.py"
TUTORIAL = load_tutorial()
Program = list[tuple[str, Mapping[str, Any]]]

START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
IO: Program = [
    ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 2, "data": "ab" * 1024}),
    ("submit", {"id": 2, "op": "read", "sector": 0, "sectors": 2}),
    ("submit", {"id": 3, "op": "flush"}),
    ("settle", {}),
]
DETACH: Program = [("detach", {}), ("settle", {})]
#: the program each broken variant fails on (tests/world/test_world_harness.py's)
FAILING: Program = START + IO + [("submit_many", {"count": 33})] + [("settle", {})] * 2 + DETACH
RULES = {
    "never-publishes": "was never completed",
    "completes-twice": "twice",
    "connected-too-early": "the back end is Connected",
    "overfills-ring": "RING_FULL",
    "reuses-id": "reused while it is in flight",
    "never-ends-grants": "was never ended",
    "misses-notification": "a push notifies the other end",
    "read-page-read-only": "is read-only; the back end must write the page",
}


def _gone(pgid: int, wait: float = 5.0) -> bool:
    """Whether no process of group ``pgid`` is left (an orphan the child started is
    reaped by init, a moment after it was killed)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@pytest.fixture
def children() -> Iterator[list[StdioImplementation]]:
    """Implementations made by a test; after it, every one is closed and none of the
    children it started has a process left."""
    made: list[StdioImplementation] = []
    yield made
    for impl in made:
        impl.close()
    for impl in made:
        for pgid in impl.started:
            assert _gone(pgid), f"process group {pgid} of {impl.argv} outlived its test"


def _python(
    made: list[StdioImplementation], script: Path, *args: str, **kw: Any
) -> StdioImplementation:
    impl = StdioImplementation([sys.executable, str(script), *args], **kw)
    made.append(impl)
    return impl


# ------------------------------------------------------------------ the tutorial over stdio
def test_the_tutorial_over_stdio_gives_the_in_process_campaign(
    children: list[StdioImplementation], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    original = stdio._Child.send

    def checked(self: Any, message: Mapping[str, Any]) -> None:
        check_message(json.loads(json.dumps(message)), "harness")  # as the child reads it
        sent.append(str(message["type"]))
        original(self, message)

    monkeypatch.setattr(stdio._Child, "send", checked)
    impl = _python(children, EXAMPLE)
    with impl:
        assert impl.calls == ("otherend_changed", "interrupt", "submit", "shutdown", "resume")
        shape = Shape(resume=0.2)  # the tutorial resumes: so do some of its programs
        remote = campaign(impl.maker(), seed=3, programs=50, shape=shape)
    local = campaign(TUTORIAL.LinuxStyleFrontend, seed=3, programs=50, shape=shape)
    assert not remote.findings, remote.render()
    assert remote.ios > 0 and remote.ios == local.ios
    assert remote.coverage == local.coverage
    assert remote.compared == local.compared
    assert remote.coverage["toolstack_resume"] > 0
    assert len(impl.started) == 1  # one child served the whole campaign
    # every kind of harness message was sent, and each was valid against the schema
    assert {"hello", "reset", "call", "result", "bye"} <= set(sent)


@pytest.mark.parametrize("broken", TUTORIAL.BROKEN)
def test_each_broken_variant_is_caught_over_stdio_with_a_short_replay(
    children: list[StdioImplementation], broken: str
) -> None:
    impl = _python(children, EXAMPLE, "--broken", broken)
    with impl:
        maker = impl.maker()
        with pytest.raises(Violation) as caught:
            run_program(maker, FAILING)
        assert not isinstance(caught.value, ImplementationFailure)
        assert RULES[broken] in caught.value.rule
        replay = shrink(maker, FAILING, same=lambda v: RULES[broken] in v.rule)
        assert len(replay) < 10, replay
        with pytest.raises(Violation) as again:
            run_program(maker, replay)
        assert again.value.rule == caught.value.rule or RULES[broken] in again.value.rule
    # the same replay as the tutorial in-process
    local = shrink(
        lambda env: TUTORIAL.LinuxStyleFrontend(env, broken=broken),
        FAILING,
        same=lambda v: RULES[broken] in v.rule,
    )
    assert replay == local


def test_the_harness_option_picks_the_variant_too(children: list[StdioImplementation]) -> None:
    impl = _python(children, EXAMPLE, options={"broken": "reuses-id"})
    with impl, pytest.raises(Violation, match="reused while it is in flight"):
        run_program(impl.maker(), FAILING)


# ------------------------------------------------------------------ failures of the child
PROGRAM: Program = [*START, IO[0], ("settle", {})]
FAILURES = {
    "exit-3": ("crash", "the front end crashed in its submit call: exit status 3"),
    "segv": ("crash", "the front end crashed in its submit call: killed by signal 11 (SIGSEGV)"),
    "not-json": ("malformed", "malformed message in its submit call: not JSON"),
    "schema-invalid": (
        "malformed",
        "malformed message in its submit call: not valid against the schema: "
        "data.page must be integer",
    ),
    "harness-message": ("malformed", "a result message, which only the harness sends"),
    "long-line": ("malformed", "malformed message in its submit call: a line longer than 1 MiB"),
    "fails": ("failed", "the front end failed: no free request slot for bio 17"),
    "hang": ("hang", "the front end hangs in its submit call: no message within 0.3 s"),
}


@pytest.mark.parametrize("mode", sorted(FAILURES))
def test_a_failing_child_is_a_divergence_shrunk_and_replayable(
    children: list[StdioImplementation], mode: str
) -> None:
    kind, rule = FAILURES[mode]
    timeout = 0.3 if mode == "hang" else 10.0  # short only where it is waited for
    impl = _python(children, CHILDREN / "misbehaving.py", mode, timeout=timeout)
    with impl:
        maker = impl.maker()
        with pytest.raises(ImplementationFailure) as caught:
            run_program(maker, PROGRAM)
        failure = caught.value
        assert failure.kind == kind and rule in failure.rule, failure
        assert failure.event == 4 and failure.label.startswith("submit")  # the submit's event
        assert isinstance(failure, Violation)
        if mode not in ("segv", "hang"):
            assert "misbehaving child" in str(failure)  # the end of its stderr
        replay = shrink(maker, PROGRAM)
        assert replay == [IO[0]]
        with pytest.raises(ImplementationFailure) as again:
            run_program(maker, replay)
        assert again.value.rule == failure.rule
        # a fresh child after each failure, and the next program runs on it
        run_program(maker, START)
        assert len(impl.started) >= 3
        assert all(_gone(pgid, wait=0) for pgid in impl.started[:-1])


def test_a_campaign_reports_a_crash_with_its_replay(children: list[StdioImplementation]) -> None:
    impl = _python(children, CHILDREN / "misbehaving.py", "exit-3")
    with impl:
        report = campaign(impl.maker(), seed=5, programs=4, shape=Shape(events=6))
    assert report.findings and all(f.rule == FAILURES["exit-3"][1] for f in report.findings)
    assert len(report.findings[0].replay) == 1


def test_what_the_child_started_dies_with_it(children: list[StdioImplementation]) -> None:
    impl = _python(children, CHILDREN / "misbehaving.py", "spawn")
    with impl:
        with pytest.raises(ImplementationFailure, match="exit status 3"):
            run_program(impl.maker(), PROGRAM)
        (pgid,) = impl.started
        assert _gone(pgid)  # its sleep, left running, was killed with it


def test_closing_stops_a_running_child(children: list[StdioImplementation]) -> None:
    impl = _python(children, CHILDREN / "misbehaving.py", "")
    impl.start()
    run_program(impl.maker(), START)
    (pgid,) = impl.started
    os.killpg(pgid, 0)  # running
    impl.close()
    assert _gone(pgid, wait=0)
    impl.close()  # twice is harmless


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("no-interrupt", "it lacks the call 'interrupt'"),
        ("protocol-1", "it speaks protocol 1; this harness speaks protocol 2"),
    ],
)
def test_a_child_whose_hello_is_not_acceptable_is_refused(
    children: list[StdioImplementation], mode: str, message: str
) -> None:
    impl = _python(children, CHILDREN / "misbehaving.py", mode)
    with pytest.raises(ImplementationRefused) as refused:
        impl.start()
    assert message in str(refused.value)
    assert not isinstance(refused.value, Violation)


def test_a_command_that_does_not_start_is_refused() -> None:
    impl = StdioImplementation("/nonexistent/front-end --flag")
    with pytest.raises(ImplementationRefused, match="cannot start"):
        impl.start()
    impl.close()
    with pytest.raises(ImplementationRefused, match="empty command"):
        StdioImplementation("   ")


# ------------------------------------------------------------------ the same as in-process
def _odd() -> Any:
    spec = importlib.util.spec_from_file_location("odd_frontend", CHILDREN / "odd_frontend.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("mode", "rule"),
    [
        ("end-unknown-grant", "grant 4242 is not granted"),
        ("raises", "the front end failed: RuntimeError: cannot queue bio 1"),
    ],
)
def test_refusals_and_exceptions_are_reported_as_in_process(
    children: list[StdioImplementation], mode: str, rule: str
) -> None:
    odd = _odd()
    with pytest.raises(Violation) as local:
        run_program(lambda env: odd.OddFrontend(env, mode), PROGRAM)
    impl = _python(children, CHILDREN / "odd_frontend.py", mode)
    with impl:
        with pytest.raises(Violation) as remote:
            run_program(impl.maker(), PROGRAM)
        assert remote.value.rule == local.value.rule == rule
        assert remote.value.event == local.value.event == 4
        # the refused grant left the child in step with the harness: no restart
        if mode == "end-unknown-grant":
            run_program(impl.maker(), START)
            assert len(impl.started) == 1


# ------------------------------------------------------------------ the schema
HARNESS_MESSAGES: list[dict[str, Any]] = [
    {
        "type": "hello",
        "protocol": 2,
        "memory": {"path": "/tmp/xbdspec-stdio-x/pages", "pages": 1024, "page_size": 4096},
        "front": "/local/domain/5/device/vbd/768",
        "back": "/local/domain/0/backend/vbd/5/768",
        "options": {"broken": "reuses-id"},
    },
    {"type": "reset"},
    {"type": "call", "call": "otherend_changed"},
    {"type": "call", "call": "interrupt"},
    {"type": "call", "call": "shutdown"},
    {"type": "call", "call": "resume"},
    {
        "type": "call",
        "call": "submit",
        "bio": {"id": 1, "op": "write", "sector": 8, "sectors": 1, "data": "ab" * 512},
    },
    {
        "type": "call",
        "call": "submit",
        "bio": {"id": 2, "op": "flush", "sector": 0, "sectors": 0, "data": ""},
    },
    {"type": "result", "value": None},
    {"type": "result", "value": "2"},
    {"type": "result", "value": 8},
    {"type": "result", "value": True},
    {"type": "result", "error": "EAGAIN", "message": "transaction 3 conflicts"},
    {"type": "bye"},
]
CHILD_MESSAGES: list[dict[str, Any]] = [
    {
        "type": "hello",
        "protocol": 2,
        "name": "my-frontend 0.3",
        "calls": ["otherend_changed", "interrupt", "submit", "shutdown"],
        "ops": ["read", "write", "flush"],
    },
    {"type": "done"},
    {"type": "done", "ok": False, "error": "out of memory"},
    {"type": "log", "text": "connected"},
    {"type": "env", "op": "read", "path": "/local/domain/0/backend/vbd/5/768/state"},
    {"type": "env", "op": "write", "path": "/a/b", "value": "3", "tid": 0},
    {"type": "env", "op": "write", "path": "/a/b", "value": "3"},
    {"type": "env", "op": "remove", "path": "/a/b", "tid": 4},
    {"type": "env", "op": "transaction_start"},
    {"type": "env", "op": "transaction_end", "tid": 4, "abort": False},
    {"type": "env", "op": "alloc_page"},
    {"type": "env", "op": "free_page", "page": 3},
    {"type": "env", "op": "grant", "page": 0, "readonly": False},
    {"type": "env", "op": "grant_ref", "ref": 100, "page": 1, "readonly": True},
    {"type": "env", "op": "grant_mapped", "ref": 100},
    {"type": "env", "op": "end_grant", "ref": 100},
    {"type": "env", "op": "notify", "port": None},
    {"type": "env", "op": "notify", "port": 17},
    {"type": "env", "op": "notify"},
    {"type": "env", "op": "complete", "bio": 2, "ok": True, "data": "00ff" * 256},
]
INVALID_CHILD_MESSAGES: list[tuple[Any, str]] = [
    ([1, 2], "data must be object"),
    ({"op": "read"}, "must contain ['type']"),
    ({"type": "result", "value": 1}, "data.type must be one of"),
    (
        {"type": "env", "op": "grant", "page": "zero", "readonly": False},
        "data.page must be integer",
    ),
    ({"type": "env", "op": "grant", "page": 0}, "must contain"),
    ({"type": "env", "op": "grant", "page": 0, "readonly": False, "extra": 1}, "must not contain"),
    ({"type": "env", "op": "format_disk"}, "data.op must be one of"),
    ({"type": "env", "op": "read", "path": "x" * 4097}, "must be shorter than or equal to 4096"),
    ({"type": "env", "op": "complete", "bio": 1, "ok": True, "data": "abc"}, "must match pattern"),
    ({"type": "env", "op": "complete", "bio": 1, "ok": 1}, "data.ok must be boolean"),
    ({"type": "env", "op": "end_grant", "ref": -1}, "must be bigger than or equal to 0"),
    ({"type": "env", "op": "end_grant", "ref": True}, "data.ref must be integer"),
    ({"type": "done", "ok": "no"}, "data.ok must be boolean"),
    ({"type": "hello", "protocol": 2, "calls": ["submit"]}, "must contain"),
]
INVALID_HARNESS_MESSAGES: list[Any] = [
    {"type": "call", "call": "submit"},  # a submit carries its bio
    {
        "type": "call",
        "call": "interrupt",
        "bio": {"id": 1, "op": "read", "sector": 0, "sectors": 1, "data": ""},
    },
    {"type": "result", "value": 1, "error": "EAGAIN", "message": "both"},
    {"type": "result", "error": "EPERM", "message": "not a code of the protocol"},
    {
        "type": "hello",
        "protocol": 2,
        "memory": {"path": "/x", "pages": 1, "page_size": 512},
        "front": "/f",
        "back": "/b",
    },
    {"type": "done"},  # the child's
]


@pytest.mark.parametrize("message", HARNESS_MESSAGES, ids=lambda m: str(m["type"]))
def test_the_harness_messages_are_valid(message: dict[str, Any]) -> None:
    check_message(message, "harness")
    if message["type"] != "hello":  # every other type is the harness's alone
        with pytest.raises(MalformedMessage):
            check_message(message, "child")


@pytest.mark.parametrize("message", CHILD_MESSAGES, ids=lambda m: str(m.get("op", m["type"])))
def test_the_child_messages_are_valid(message: dict[str, Any]) -> None:
    check_message(message, "child")


@pytest.mark.parametrize(("message", "reason"), INVALID_CHILD_MESSAGES)
def test_invalid_child_messages_are_malformed(message: Any, reason: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        check_message(message, "child")
    assert reason in caught.value.reason


@pytest.mark.parametrize("message", INVALID_HARNESS_MESSAGES)
def test_invalid_harness_messages_are_refused(message: Any) -> None:
    with pytest.raises(MalformedMessage):
        check_message(message, "harness")


def test_the_whole_schema_takes_every_message_of_either_side() -> None:
    validate = fastjsonschema.compile(stdio.schema())
    for message in HARNESS_MESSAGES + CHILD_MESSAGES:
        validate(message)
    for bad in ([1, 2], {"op": "read"}, {"type": "env", "op": "format_disk"}):
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            validate(bad)


def test_the_schema_ships_in_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"xbdspec.world" = ["schema/*.json"]' in pyproject
    assert stdio.schema()["$id"].endswith("stdio-v2.schema.json")
