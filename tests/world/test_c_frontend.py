"""The C queue core as a protocol-level front end (``cimpl/frontend.c``, over the stdio
protocol version 2): the correct build passes a seeded campaign with I/O completed, its
queue core's freezes never wait for the harness, its broken build (``-DBREAK_NOTIFY``)
is caught with a short replay, and malformed harness messages end it with status 2."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from xbdspec.conformance.builtin import CompilerMissing, build_c_frontend
from xbdspec.world.backend import BackendConfig
from xbdspec.world.campaign import START, Shape, campaign, generate
from xbdspec.world.harness import Violation, run_program
from xbdspec.world.stdio import StdioImplementation

Program = list[tuple[str, Mapping[str, Any]]]

#: bios up to what one request's 11 segments carry (88 sectors), on a 1 MiB disk
SHAPE = Shape(events=24, max_sectors=88, sectors=2048)
CONFIG = BackendConfig(sectors=SHAPE.sectors)
NOTIFY_RULE = "a push notifies the other end"


def _build(tmp_path_factory: pytest.TempPathFactory, *defines: str) -> Path:
    try:
        return build_c_frontend(*defines, out_dir=tmp_path_factory.mktemp("cfrontend"))
    except CompilerMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def frontend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cimpl/frontend.c`` built with the system ``cc`` (skipped without one)."""
    return _build(tmp_path_factory)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with ``-DBREAK_NOTIFY``: a push never notifies the back end."""
    return _build(tmp_path_factory, "BREAK_NOTIFY")


@pytest.fixture
def child(frontend: Path) -> Iterator[StdioImplementation]:
    with StdioImplementation([str(frontend)]) as impl:
        yield impl


def test_hello_declares_the_protocol_minimum_and_flush(child: StdioImplementation) -> None:
    assert child.hello["protocol"] == 2
    assert {"otherend_changed", "interrupt", "submit", "shutdown"} <= set(child.calls)
    assert set(child.ops) == {"read", "write", "flush"}


def test_the_correct_build_passes_a_seeded_campaign(child: StdioImplementation) -> None:
    report = campaign(child.maker(), 7, 60, SHAPE, CONFIG)
    assert not report.findings, report.render()
    assert report.programs == 60 and report.ios > 300
    for step in (
        "frontend_publish_transport",
        "frontend_initialised",
        "frontend_connected",
        "frontend_write_request",
        "frontend_push_requests",
        "frontend_service_ring",
        "backend_respond",
        "frontend_closed",
    ):
        assert report.coverage[step] > 0, f"{step} never happened"
    assert len(child.started) == 1  # one child served every world
    # the report counts completions, failed ones too: every bio of these programs lies
    # on the disk, so each must complete ok (and a read with the disk's data: checked)
    # (unless the back end went away in the program: then nothing is owed after it)
    rng = random.Random(7)
    checked = 0
    for _ in range(10):
        world = run_program(child.maker(), generate(rng, SHAPE), CONFIG)
        if world.backend_left:
            continue
        checked += 1
        assert set(world.completed) == set(world.bios)
        assert all(world.completed.values()), world.completed
    assert checked >= 5


WRITE_88 = "".join(f"{i % 251:02x}" for i in range(88 * 512))
IO: Program = [
    # 11 segments each way, then a flush, answered in reverse order
    ("submit", {"id": 1, "op": "write", "sector": 5, "sectors": 88, "data": WRITE_88}),
    ("submit", {"id": 2, "op": "read", "sector": 5, "sectors": 88}),
    ("submit", {"id": 3, "op": "read", "sector": 90, "sectors": 3}),
    ("submit", {"id": 4, "op": "flush"}),
    ("deliver_back_watch", {}),
    ("serve", {"reverse": True}),
    ("interrupt", {}),
    ("submit_many", {"count": 40, "op": "read"}),  # more than the ring's 32 slots
    ("settle", {}),
    ("settle", {}),
    ("detach", {}),
    ("settle", {}),
]


def test_multi_segment_io_a_full_ring_and_detach_conform(child: StdioImplementation) -> None:
    world = run_program(child.maker(), [*START, *IO], CONFIG)
    assert set(world.completed) == set(world.bios) and len(world.bios) == 44
    assert all(world.completed.values())
    assert world.store.get(f"{world.backend.front}/state") == "6"


def test_a_grant_shortage_thaws_without_the_harness(frontend: Path) -> None:
    """With 13 pages (the ring and 12 data pages), two 88-sector bios cannot be in flight
    at once: the queue core freezes on the grant shortage and thaws when a completion
    gives the grants back, inside the front end's own interrupt."""
    with StdioImplementation([str(frontend)], pages=13) as impl:
        program: Program = [
            *START,
            *(
                ("submit", {"id": i, "op": "read", "sector": 88 * i, "sectors": 88})
                for i in range(1, 5)
            ),
            ("settle", {"rounds": 32}),
        ]
        world = run_program(impl.maker(), program, CONFIG)
        assert set(world.completed) == {1, 2, 3, 4}


def test_the_broken_build_is_caught_with_a_short_replay(frontend: Path, broken: Path) -> None:
    with StdioImplementation([str(broken)]) as impl:
        report = campaign(impl.maker(), 7, 20, SHAPE, CONFIG)
        assert report.findings, "the broken build passed"
        finding = report.findings[0]
        assert NOTIFY_RULE in finding.rule
        assert len(finding.replay) < 10, finding.replay
        with pytest.raises(Violation) as again:
            run_program(impl.maker(), finding.replay, CONFIG)
        assert NOTIFY_RULE in again.value.rule
    with StdioImplementation([str(frontend)]) as impl:
        run_program(impl.maker(), finding.replay, CONFIG)  # the correct build passes it


HELLO = {
    "type": "hello",
    "protocol": 2,
    "memory": {"path": "", "pages": 4, "page_size": 4096},
    "front": "/local/domain/5/device/vbd/768",
    "back": "/local/domain/0/backend/vbd/5/768",
    "options": {},
}
HOSTILE = {
    "not JSON": b"garbage\n",
    "a line over 1 MiB": b"{" + b" " * (1 << 20) + b"}\n",
    "nested too deeply": b"[" * 100_000 + b"\n",
    "a call it does not have": b'{"type":"call","call":"frobnicate"}\n',
    "a submit without a bio": b'{"type":"call","call":"submit"}\n',
    "a negative bio id": (
        b'{"type":"call","call":"submit","bio":{"id":-1,"op":"read","sector":0,'
        b'"sectors":1,"data":""}}\n'
    ),
    "a result it never asked for": b'{"type":"result","value":null}\n',
    "a wrong result in a call": (
        b'{"type":"reset"}\n{"type":"call","call":"otherend_changed"}\n'
        b'{"type":"result","value":[1]}\n'
    ),
    "an error code the protocol has not": (
        b'{"type":"reset"}\n{"type":"call","call":"otherend_changed"}\n'
        b'{"type":"result","error":"EPERM","message":"no"}\n'
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_malformed_harness_message_exits_2_with_a_message(
    frontend: Path, tmp_path: Path, name: str
) -> None:
    pages = tmp_path / "pages"
    pages.write_bytes(bytes(4 * 4096))
    hello = json.loads(json.dumps(HELLO))
    hello["memory"]["path"] = str(pages)
    data = json.dumps(hello).encode() + b"\n" + HOSTILE[name]
    result = subprocess.run(
        [str(frontend)], input=data, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert b"malformed harness message" in result.stderr
