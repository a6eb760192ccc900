"""What the reference adapter adds to the abstraction: a spurious interrupt while the
driver is disconnected (the model's ``interrupt_ignored``), and the check that the
request the back end reads is the one its command stands for."""

from __future__ import annotations

from xbdspec.model.vocabulary import BioKind

from xbdspec.conformance import mutation
from xbdspec.conformance.contract import Step
from xbdspec.conformance.harness import LockStep
from xbdspec.conformance.program import run_program
from xbdspec.conformance.reference_adapter import REFERENCE_SIZES, ReferenceImplementation
from xbdspec.conformance.signatures import signature_of

SIZES = REFERENCE_SIZES["command-shortage"]
#: the back end offers InitWait, the front end initialises (the channel is bound)
INITIALISED = [
    Step("backend_publish", {"barrier": False, "flush": False}),
    Step("backend_watch", {}),
]
CONNECTED = [*INITIALISED, Step("frontend_watch", {}), Step("backend_watch", {}), Step("open", {})]


def _mutant(function: str, start: str) -> mutation.Mutant:
    return next(
        m for m in mutation.mutants() if m.function == function and m.description.startswith(start)
    )


def test_a_spurious_interrupt_while_disconnected_is_offered_and_dropped() -> None:
    impl = ReferenceImplementation()
    lock = LockStep(impl, SIZES)
    assert run_program(impl, lock, INITIALISED) is None
    assert lock.enabled("interrupt") == [{}]
    platform = impl.platform
    assert platform is not None
    delivered = platform.evtchn.delivered
    assert lock.step("interrupt", {}) is None
    assert platform.evtchn.delivered == delivered + 1  # xbd_int ran, and returned
    assert lock.coverage.transitions["interrupt_ignored"] == 1


def test_an_early_return_that_keeps_the_lock_is_seen() -> None:
    """The mutant the campaigns could not kill while the model never interrupted a
    disconnected driver: xbd_int's early return without mtx_unlock."""
    with mutation._Installed(_mutant("int_", "drop call mtx_unlock")):
        impl = ReferenceImplementation()
        lock = LockStep(impl, SIZES)
        divergence = run_program(impl, lock, [*INITIALISED, Step("interrupt", {})])
    assert divergence is not None and "io_pc" in divergence.differences


def test_the_back_end_reads_the_commands_request() -> None:
    program = [*CONNECTED, Step("strategy", {"bio": 0, "kind": BioKind.WRITE})]
    program.append(Step("backend_consume", {"cmd": 0}))
    impl = ReferenceImplementation()
    assert run_program(impl, LockStep(impl, SIZES), program) is None
    with mutation._Installed(_mutant("queue_cb", "drop call U8.pack_into(buf, offset + REQ_OP")):
        impl = ReferenceImplementation()
        divergence = run_program(impl, LockStep(impl, SIZES), program)
    assert divergence is not None and divergence.kind == "fault"
    assert signature_of(divergence).fault == "MalformedRequest: xbd_queue_cb"
    assert divergence.last.event == "backend_consume"


def test_an_open_that_fails_where_the_model_lets_it_succeed_is_a_fault() -> None:
    mutant = next(m for m in mutation.mutants() if m.key.startswith("driver.open_#5 0 -> 1"))
    with mutation._Installed(mutant):
        impl = ReferenceImplementation()
        divergence = run_program(impl, LockStep(impl, SIZES), CONNECTED)
    assert divergence is not None and divergence.last.event == "open"
    assert signature_of(divergence).fault == "EntryPointFailed: xbd_open"


def test_a_single_page_ring_is_published_under_ring_ref() -> None:
    """One ring page is ``ring-ref`` (blkif.h); ``ring-ref0`` is what a multi-page ring
    with ``ring-page-order`` uses, and no back end reads it for one page."""
    mutant = next(
        m
        for m in mutation.mutants(("lifecycle",))
        if m.key.startswith("lifecycle.alloc_ring#5 1 -> 2")
    )
    with mutation._Installed(mutant):
        impl = ReferenceImplementation()
        divergence = run_program(impl, LockStep(impl, SIZES), INITIALISED)
    assert divergence is not None and "fe_published" in divergence.differences


def test_a_mutant_of_a_device_method_is_undone_on_the_bus_too() -> None:
    """Running the mutated life-cycle module registers its methods with the bus again
    (DRIVER_MODULE); leaving the mutant puts the seed's methods back there too."""
    from xbdspec.reference import lifecycle, platform

    seed_resume = lifecycle.resume
    mutant = next(m for m in mutation.mutants(("lifecycle",)) if m.function == "resume")
    with mutation._Installed(mutant):
        assert platform.DRIVERS["xbd"].resume is not seed_resume  # the mutant's
    assert platform.DRIVERS["xbd"].resume is seed_resume
    assert platform.DRIVERS["xbd"].otherend_changed is lifecycle.backend_changed
