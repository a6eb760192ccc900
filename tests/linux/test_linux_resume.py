"""Linux 6.1's xen-blkfront.c across a save/restore (or migration) under the
protocol-level harness: the tool stack recreates the device, a new back end probes,
``xenbus_dev_resume`` and ``blkfront_resume`` run, and the requests that were in flight
on the old ring are carried (``toolstack_resume``), issued again on the new ring
(``blkif_recover``) and completed with the data the disk holds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from xbdspec.linux import source
from xbdspec.traces.protocol import Verdict
from xbdspec.world.backend import BackendConfig
from xbdspec.world.campaign import Shape, campaign, linux_dimensions
from xbdspec.world.harness import World, run_program

if not source.available():
    if os.environ.get("CI"):
        pytest.fail("CI is set and linux-source-6.1 cannot be installed", pytrace=False)
    pytest.skip("linux-source-6.1 is not installed", allow_module_level=True)

from xbdspec.linux.adapter import make

Program = list[tuple[str, Mapping[str, Any]]]
START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
OFFER = BackendConfig(sectors=4096, max_ring_page_order=4, max_queues=4, max_indirect_segments=32)


def _write(bio: int, sector: int, sectors: int, byte: int) -> tuple[str, dict[str, Any]]:
    data = bytes([byte]) * (sectors * 512)
    return (
        "submit",
        {"id": bio, "op": "write", "sector": sector, "sectors": sectors, "data": data.hex()},
    )


def _world(params: dict[str, int], program: Program) -> World:
    world = run_program(make(params), program, OFFER)
    for view in world.queues:
        assert view.checker.finish().verdict == Verdict.CONFORMS, view.checker.report.violation
    return world


PARAMS = {
    "one queue, one page": {},
    "four queues, 16 pages, indirect": {
        "max_queues": 4,
        "max_ring_page_order": 4,
        "max_indirect_segments": 32,
    },
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_requests_in_flight_at_a_resume_are_issued_again_and_complete(name: str) -> None:
    program: Program = [
        *START,
        _write(1, 8, 16, 0xA1),
        _write(2, 100, 64, 0xB2),
        ("submit", {"id": 3, "op": "flush"}),
        # the back end sees the requests, performs some, and the guest is saved before
        # the front end takes any response
        ("deliver_back_watch", {}),
        ("serve", {"reverse": True}),
        ("resume", {}),
        ("settle", {}),
        ("submit", {"id": 4, "op": "read", "sector": 8, "sectors": 16}),
        ("submit", {"id": 5, "op": "read", "sector": 100, "sectors": 64}),
        ("settle", {}),
    ]
    world = _world(PARAMS[name], program)
    assert world.completed == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    steps = world.checker.report.steps
    assert "toolstack_resume()" in steps
    # the carried requests were issued again on the new ring: more requests read than bios
    assert world.compared["requests read from the ring"] > len(world.bios)
    assert world.compared["read data compared"] == 2


def test_a_resume_with_nothing_in_flight_reconnects() -> None:
    program: Program = [
        *START,
        ("resume", {}),
        ("settle", {}),
        _write(1, 0, 8, 0x11),
        ("settle", {}),
    ]
    world = _world({}, program)
    assert world.completed == {1: 1}
    assert world.store.get(f"{world.backend.back}/state") == "4"


def test_a_campaign_with_resumes_conforms() -> None:
    shape = Shape(events=24, max_sectors=64, sectors=2048, resume=0.5)
    config = BackendConfig(
        sectors=2048, max_ring_page_order=4, max_queues=4, max_indirect_segments=32
    )
    report = campaign(linux_dimensions(), 11, 40, shape, config, per_program=True)
    assert not report.findings, report.render()
    assert report.coverage["toolstack_resume"] > 5
    assert report.ios > 100
