"""Linux 6.1's xen-blkfront.c with several queues, multi-page rings and indirect
descriptors under the protocol-level harness: every queue's ring is checked with the
protocol model's rules (queue 0 by the model's own state, the others each by a checker
of their own), and a small deterministic random campaign conforms."""

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
from xbdspec.world.ring import ring_size

if not source.available():
    if os.environ.get("CI"):
        pytest.fail("CI is set and linux-source-6.1 cannot be installed", pytrace=False)
    pytest.skip("linux-source-6.1 is not installed", allow_module_level=True)

from xbdspec.linux.adapter import make

Program = list[tuple[str, Mapping[str, Any]]]
START: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
DETACH: Program = [("detach", {}), ("settle", {})]
OFFER = BackendConfig(sectors=4096, max_ring_page_order=4, max_queues=4, max_indirect_segments=32)


def _world(params: dict[str, int], program: Program, config: BackendConfig = OFFER) -> World:
    world = run_program(make(params), program, config)
    for view in world.queues:
        assert view.checker.finish().verdict == Verdict.CONFORMS, view.checker.report.violation
    return world


@pytest.mark.parametrize(("queues", "order"), [(1, 0), (1, 4), (4, 0), (4, 4)])
def test_connected_with_queues_and_pages(queues: int, order: int) -> None:
    data = bytes(range(256)) * 16  # 8 sectors
    io: Program = []
    for i in range(8):
        io.append(
            ("submit", {"id": i, "op": "write", "sector": 8 * i, "sectors": 8, "data": data.hex()})
        )
    io.append(("settle", {}))
    io += [
        ("submit", {"id": 100 + i, "op": "read", "sector": 8 * i, "sectors": 8}) for i in range(8)
    ]
    io.append(("settle", {}))
    world = _world({"max_queues": queues, "max_ring_page_order": order}, START + io + DETACH)
    front = world.store.get(f"{world.backend.front}/multi-queue-num-queues")
    assert (front or "1") == str(queues)
    if order:
        assert world.store.get(f"{world.backend.front}/ring-page-order") == str(order)
    assert all(world.completed[b] == 1 for b in world.bios)
    assert bytes(world.backend.disk[: 64 * 512]) == data * 8
    # every queue carried requests (blk-mq's mapping spreads them), checked by its own state
    for view in world.queues[:queues]:
        names = [s.split("(")[0] for s in view.checker.report.steps]
        assert names.count("frontend_write_request") == 16 // queues
    assert world.backend.state() == 6


def test_sixteen_pages_fill_every_ring() -> None:
    count = 4 * ring_size(4) + 40
    world = _world(
        {"max_queues": 4, "max_ring_page_order": 4},
        [
            *START,
            ("submit_many", {"count": count}),
            ("serve", {}),
            ("interrupt", {}),
            ("settle", {}),
        ],
    )
    assert len(world.completed) == count
    assert all(r.ring.size == 512 for r in world.backend.rings)


def test_indirect_descriptors_carry_a_bio_of_32_pages() -> None:
    data = os.urandom(32 * 4096)
    program: Program = [
        *START,
        ("submit", {"id": 1, "op": "write", "sector": 16, "sectors": 256, "data": data.hex()}),
        ("settle", {}),
        ("submit", {"id": 2, "op": "read", "sector": 16, "sectors": 256}),
        ("settle", {}),
    ]
    world = _world(
        {"max_queues": 4, "max_ring_page_order": 4, "max_indirect_segments": 32}, program
    )
    assert world.completed == {1: 1, 2: 1}
    assert bytes(world.backend.disk[16 * 512 : 272 * 512]) == data
    assert any("indirect descriptors: enabled" in line for line in world.frontend.log)  # type: ignore[attr-defined]


def test_an_indirect_response_echoing_op_indirect_disables_the_device() -> None:
    """blkif.h says a response's operation is "copied from request"; Linux's blkback
    answers an indirect request with its indirect_op, and blkfront (XSA-376's checks)
    accepts only that: a back end copying BLKIF_OP_INDIRECT gets the device disabled and
    the bio never completes."""
    config = BackendConfig(sectors=4096, max_indirect_segments=32, echo_indirect_op=True)
    program: Program = [
        *START,
        ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 128}),
        ("settle", {}),
    ]
    world = World(make({"max_indirect_segments": 32}), config)
    for name, params in program:
        world.run(name, params)
    assert 1 not in world.completed
    assert any("wrong operation (6 instead of 0)" in line for line in world.frontend.log)  # type: ignore[attr-defined]


def test_a_small_campaign_conforms() -> None:
    shape = Shape(events=24, max_sectors=64, sectors=2048)
    report = campaign(
        linux_dimensions(), seed=7, programs=50, shape=shape, config=OFFER, per_program=True
    )
    assert report.programs == 50
    assert not report.findings, report.render()
    assert report.ios > 100
    for rule in (
        "frontend_write_request",
        "frontend_service_ring",
        "backend_respond",
        "frontend_closed",
    ):
        assert report.coverage[rule] > 0
