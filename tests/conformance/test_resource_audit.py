"""The reference adapter's resource audit (``check_resources``), the disk as the disk
layer sees it, the ring pages negotiated against the back end's offer, and the findings
audit as a kill criterion of the mutation engine (issue 18)."""

from __future__ import annotations

import dataclasses

import pytest
from xbdspec.model.vocabulary import BioKind, SuspendPc

from xbdspec.conformance import mutation
from xbdspec.conformance.contract import Step
from xbdspec.conformance.findings import classify
from xbdspec.conformance.harness import Divergence, LockStep
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import (
    REFERENCE_SIZES,
    CountingEventChannels,
    ReferenceImplementation,
    ResourceLeak,
    check_resources,
)
from xbdspec.conformance.signatures import signature_of
from xbdspec.conformance.sweep import BackendSetup, negotiated_ring_pages

SIZES = dataclasses.replace(REFERENCE_SIZES["command-shortage"], suspends=1)
CONNECTED = [
    Step("backend_publish", {"barrier": False, "flush": False}),
    Step("backend_watch", {}),
    Step("frontend_watch", {}),
    Step("backend_watch", {}),
    Step("open", {}),
]
RESUMED = [
    *CONNECTED,
    Step("suspend", {}),
    Step("suspend_drained", {}),
    Step("resume", {"cancelled": False}),
]


def _mutant(key: str) -> mutation.Mutant:
    return next(m for m in mutation.mutants(("driver", "lifecycle")) if m.key.startswith(key))


def _run(
    program: list[Step], key: str | None = None, setup: BackendSetup | None = None
) -> Divergence | None:
    with mutation._Installed(None if key is None else _mutant(key)):
        impl = ReferenceImplementation()
        if setup is not None:
            impl.configure(setup)
        return run_program(impl, LockStep(impl, SIZES), program, source="test program")


def test_the_seed_holds_one_transport_through_a_resume() -> None:
    impl = ReferenceImplementation()
    assert run_program(impl, LockStep(impl, SIZES), RESUMED, source="test program") is None
    platform = impl.platform
    assert platform is not None
    channels = platform.evtchn
    assert isinstance(channels, CountingEventChannels) and channels.bound == 1
    check_resources(impl)  # the new connection's ring, nothing of the old one
    sc = platform.softc()
    assert sc.xbd_ring.sring is not None and sc.xbd_ring_pages == 1


@pytest.mark.parametrize(
    "key",
    [
        "lifecycle.free#4 drop call free_ring(sc)",
        "lifecycle.free_ring#5 drop call sc.platform.mem.free(sring.page)",
        "lifecycle.free_ring#4 drop call gnttab.gnttab_end_foreign_access_ref",
        "lifecycle.free#17 drop call platform.evtchn.unbind()",
    ],
)
def test_a_resource_an_old_connection_keeps_is_a_fault(key: str) -> None:
    divergence = _run(RESUMED, key)
    assert divergence is not None
    assert divergence.kind == "fault" and divergence.last.event == "resume"
    assert signature_of(divergence).fault == "ResourceLeak: xbd_free"


def test_a_page_nobody_holds_is_seen() -> None:
    impl = ReferenceImplementation()
    assert run_program(impl, LockStep(impl, SIZES), CONNECTED, source="test program") is None
    assert impl.platform is not None
    impl.platform.mem.alloc(4096)
    with pytest.raises(ResourceLeak, match="pages held"):
        check_resources(impl)


def test_a_disk_forgotten_without_disk_destroy_is_still_there() -> None:
    program = [
        *CONNECTED,
        Step("close", {}),
        Step("unplug", {}),
        Step("frontend_watch", {}),
        Step("backend_offline", {}),
        Step("backend_watch", {}),  # xbd_closing: Closing, the disk destroyed, Closed
    ]
    assert _run(program) is None
    divergence = _run(program, "lifecycle.closing#2 drop call sc.platform.disk_destroy")
    assert divergence is not None and "disk" in divergence.differences


def test_the_ring_pages_follow_the_back_ends_offer() -> None:
    assert negotiated_ring_pages(None, None) == 1
    assert negotiated_ring_pages(2, None) == 4
    assert negotiated_ring_pages(6, None) == 32  # XBD_MAX_RING_PAGES
    assert negotiated_ring_pages(None, 3) == 2  # rounded down to a power of two
    assert negotiated_ring_pages(5, 3) == 2  # the legacy key overrides the order
    assert negotiated_ring_pages(31, None) is None  # the seed's shift finding
    legacy = BackendSetup(max_ring_pages=3)
    assert legacy.ring_pages == 2
    assert _run(CONNECTED, setup=legacy) is None
    divergence = _run(CONNECTED, "lifecycle.initialize#16 1 -> 2", setup=legacy)
    assert divergence is not None
    assert signature_of(divergence).fault == "ResourceLeak: xbd_initialize"


def test_a_mutant_that_fixes_a_known_finding_is_killed_by_the_findings_audit() -> None:
    assert not mutation.findings_kill(None).killed
    verdict = mutation.findings_kill(_mutant("lifecycle.free#1 And -> Or"))
    assert verdict.killed and verdict.how.startswith("findings: resume-loses-ready-write")


def test_a_suspend_that_sleeps_on_after_its_time_out_has_not_returned() -> None:
    """``msleep``'s ``EWOULDBLOCK`` ends ``xbd_suspend``; a mutant that tests ``first``
    instead of ``not first`` sleeps again, and the tool stack is still waiting in
    ``DEVICE_SUSPEND`` (DRAINING), which the suspend-ignores-deferred-mappings finding's
    signature (``drv_state`` alone) does not claim."""
    program = [
        *CONNECTED,
        Step("strategy", {"bio": 0, "kind": BioKind.WRITE}),
        Step("suspend", {}),
        Step("suspend_timeout", {}),
    ]
    assert _run(program) is None
    divergence = _run(program, "lifecycle._suspend_wait#1 not x -> x")
    assert divergence is not None and divergence.last.event == "suspend_timeout"
    assert divergence.differences["susp_pc"] == (int(SuspendPc.RUNNING), int(SuspendPc.DRAINING))
    assert classify(divergence) is None  # new: no finding claims it
