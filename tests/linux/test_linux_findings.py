"""The Linux findings (``docs/findings/linux.md``): each replay shows its rule on the
compiled driver and runs clean with the trigger off; a fault inside the driver is the
driver's failure, reported, and the tool goes on.

``connect-continues-after-setup-indirect-failure`` was an artifact of the shim: its
``blk_mq_alloc_tag_set`` took a tag set of no hardware queue, which block/blk-mq.c refuses
(``-EINVAL``).  With the kernel's check, ``xlvbd_alloc_gendisk`` fails after the failed
``blkfront_setup_indirect`` (``blkif_free`` left ``nr_rings`` 0), ``blkfront_connect``
goes to ``fail``, and the front end stays Closing: no Connected, no freed ring touched.
The sanitized build found it (ASan: a heap-buffer-overflow in the shim's ``run_queue``
over the zero-length hardware contexts).  Until the catalogue drops it, its replay here
is checked to run clean instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from xbdspec.linux import source

if not source.available():
    if os.environ.get("CI"):
        pytest.fail("CI is set and linux-source-6.1 cannot be installed", pytrace=False)
    pytest.skip("linux-source-6.1 is not installed", allow_module_level=True)

from xbdspec.errors import XbdspecError
from xbdspec.findings import linux
from xbdspec.linux.adapter import LinuxBlkfront, make
from xbdspec.world import harness
from xbdspec.world.backend import BackendConfig
from xbdspec.world.harness import World, run_program

Event = tuple[str, Mapping[str, Any]]
Program = list[Event]
#: Findings that the shim's fidelity fixes showed not to be Linux's (see the docstring).
WITHDRAWN = {
    "connect-continues-after-setup-indirect-failure": "the shim's blk_mq_alloc_tag_set took "
    "a tag set of no hardware queue; block/blk-mq.c refuses it (-EINVAL)",
}


@pytest.mark.parametrize("finding", linux.FINDINGS, ids=lambda f: f.name)
def test_each_linux_finding_shows_on_the_driver_and_its_control_is_clean(
    finding: linux.LinuxFinding,
) -> None:
    if finding.name in WITHDRAWN:
        pytest.skip(f"not Linux's: {WITHDRAWN[finding.name]}")
    outcome = linux.audit_finding(finding)
    assert outcome.ok, outcome.problems
    assert outcome.rule is not None and outcome.control_rule is None


def test_the_linux_page_names_every_finding_and_its_replay() -> None:
    page = linux.page()
    for finding in linux.FINDINGS:
        assert f"{{#{finding.name}}}" in page
        assert finding.lines in page


def test_a_failed_setup_indirect_leaves_the_front_end_closing() -> None:
    """The memory for the grant buffers runs out at connect (four 16-page rings with
    persistent grants and 32 indirect segments: 67,584 pages, the guest has 65,535):
    Linux reports it, frees the rings, and its gendisk allocation is refused for want
    of a queue; the front end stays Closing, the back end follows, and no bio can be
    sent to a disk that never existed (the withdrawn finding's replay, and a bio)."""
    params = {
        "max_queues": 4,
        "max_ring_page_order": 4,
        "max_indirect_segments": 32,
        "feature_persistent": 1,
    }
    config = BackendConfig(
        sectors=2048,
        max_ring_page_order=4,
        max_queues=4,
        max_indirect_segments=32,
        feature_persistent=True,
    )
    program = [
        ("attach", {}),
        ("backend_probe", {}),
        ("settle", {}),
        ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 8}),
        ("settle", {}),
    ]
    world = run_program(make(params), program, config)
    front = world.frontend
    assert isinstance(front, LinuxBlkfront)
    assert front.state == 5 and not front.disk_added
    assert world.store.get(f"{world.backend.back}/state") == "5"
    assert any("xlvbd_add" in line for line in front.log), front.log
    assert world.bios == {}  # the block layer had no device to send it to
    steps = [s.split("(")[0] for s in world.checker.report.steps]
    assert "frontend_connected" not in steps
    assert steps[-2:] == ["frontend_closing", "backend_closing"]


def test_a_fault_inside_the_driver_is_its_failure_not_the_tools() -> None:
    """A SIGSEGV inside an entry point (the shim's deliberate one, where the driver's own
    would be) unwinds to the entry point and is reported as the driver's failure; the
    process goes on, and a fresh copy of the driver runs a clean program."""
    start: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
    world = World(make({}))
    for name, params in start:
        world.run(name, params)
    front = world.frontend
    assert isinstance(front, LinuxBlkfront) and not front.sanitized
    with pytest.raises(XbdspecError, match=r"SIGSEGV at address 0x10 inside the driver"):
        front.selftest_fault("segv")
    clean = run_program(
        make({}),
        [*start, ("submit", {"id": 1, "op": "read", "sector": 0, "sectors": 8})],
        BackendConfig(sectors=2048),
    )
    assert clean.completed == {1: 1}


def test_a_resume_after_a_hostile_response_hits_xlvbd_alloc_gendisks_bug_on() -> None:
    """Not yet in the catalogue: a response with the wrong operation (XSA-376's check)
    disables the device (``BLKIF_STATE_ERROR``); a later save/restore or migration runs
    ``blkfront_resume``, whose ``blkif_free(info, connected == CONNECTED)`` leaves it
    DISCONNECTED, so the back end's Connected takes ``blkfront_connect``'s first-connect
    path and ``xlvbd_alloc_gendisk`` hits ``BUG_ON(info->gd != NULL)`` (line 1081): a
    kernel BUG.  Without the hostile response the same resume reconnects."""
    if "wrong-op" not in getattr(harness, "HOSTILE", ()):
        pytest.skip("the harness has no hostile back-end event (backend_hostile)")
    start: Program = [("attach", {}), ("backend_probe", {}), ("settle", {})]
    data = "ab" * 512
    write: Event = ("submit", {"id": 1, "op": "write", "sector": 0, "sectors": 1, "data": data})
    resume: Program = [("resume", {}), ("settle", {})]
    config = BackendConfig(sectors=2048)

    def rules_of(program: Program) -> list[str]:
        world = World(make({}), config)
        rules: list[str] = []
        world._fail = rules.append  # type: ignore[method-assign,assignment]
        for name, params in program:
            world.run(name, params)
        return rules

    hostile = rules_of(
        [*start, write, ("backend_hostile", {"kind": "wrong-op"}), ("settle", {}), *resume]
    )
    assert any("BUG at" in r and "xen-blkfront.c:1081" in r for r in hostile), hostile
    assert rules_of([*start, write, ("settle", {}), *resume]) == []
